//! `/api/templates/{id}/problems`: what the model's validator says of a
//! template's live content, for a designer to show each problem at the
//! field it concerns while people edit.

use axum::extract::Path;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::access::template_role;
use super::extract::Authed;
use super::templates::read_content;
use crate::error::ApiResult;

/// One problem: where (`components.<id>.properties.<name>`, `meta.title`,
/// ...) and what.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct Problems {
    /// Empty when the content is valid (at most the validator's limit).
    pub problems: Vec<Problem>,
}

/// Validate a template's content as it is now, live edits included
/// (any member).
#[utoipa::path(get, path = "/api/templates/{id}/problems", tag = "templates", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Problems), (status = 401), (status = 404)))]
pub async fn problems(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Problems>> {
    template_role(&state, &id, &me.user.id).await?;
    let content = read_content(&state, &id).await?;
    let problems = match coform_model::validate(&content) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            .map(|e| Problem {
                path: e.path,
                message: e.message,
            })
            .collect(),
    };
    Ok(Json(Problems { problems }))
}
