//! The REST API under `/api`: accounts, workspaces, templates, data
//! sources.
//!
//! Every route is declared with `utoipa` so the OpenAPI 3.1 document at
//! `/api/openapi.json` is generated from the same code that serves it.
//!
//! # Layout
//!
//! - [`extract`]: request extractors: JSON bodies with our error shape,
//!   the authenticated user, the client's address.
//! - [`openapi`]: what the document says beyond the route declarations:
//!   unique operation ids, the 400 of malformed requests, links.
//! - [`auth`]: `/api/auth/*`, one module per job: [`auth::account`]
//!   (sign-up, profile, password change, deletion), [`auth::session`]
//!   (login, refresh, logout, sessions), [`auth::verify`] (e-mail
//!   verification and address changes), [`auth::reset`] (forgotten
//!   passwords), [`auth::links`] (mailed tokens), [`auth::checks`]
//!   (field checks shared with the other routes).
//! - [`workspaces`]: `/api/workspaces/*`: workspaces, members and roles,
//!   invitations of unverified addresses, analytics, backup and restore.
//! - [`templates`]: `/api/templates/*`: template listings and content,
//!   and document tokens for the WebSocket.
//! - [`versions`]: `/api/templates/{id}/versions/*`: saved versions,
//!   restore as a forward edit, diffs.
//! - [`transfer`]: template files: export, import into a template or as
//!   a new one (format in `docs/TEMPLATE_FORMAT.md`).
//! - [`preview`]: a template as an accessible, script-free HTML page, for
//!   members, and for anyone when the template is public.
//! - [`datasources`]: `/api/data-sources/*`: a workspace's connections to
//!   REST, GraphQL and PostgreSQL, tested, executed and inspected.
//! - [`schema`]: the form model's JSON Schema and component catalog.
//! - [`stats`]: per-template usage figures (views, edits, editors).
//! - [`access`]: who may do what: membership lookups that answer 404
//!   outside one's workspaces, and live access changes on open sockets.

pub mod access;
pub mod auth;
pub mod datasources;
pub mod extract;
pub mod openapi;
pub mod preview;
pub mod problems;
pub mod schema;
pub mod stats;
pub mod templates;
pub mod transfer;
pub mod versions;
pub mod workspaces;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::AppState;

/// Most items one page of a listing holds.
pub const MAX_PAGE_SIZE: u64 = 100;

/// The page and page size of a listing (defaults 1 and 20), or 422 naming
/// the one out of range.
pub fn paging(
    page: Option<u64>,
    page_size: Option<u64>,
) -> Result<(u64, u64), crate::error::ApiError> {
    use crate::error::ApiError;
    let page = page.unwrap_or(1);
    let page_size = page_size.unwrap_or(20);
    if page == 0 || page > 1_000_000 {
        return Err(ApiError::field("page", "must be between 1 and 1000000"));
    }
    if page_size == 0 || page_size > MAX_PAGE_SIZE {
        return Err(ApiError::field(
            "pageSize",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    Ok((page, page_size))
}

/// Largest JSON body accepted by most routes.
pub const MAX_BODY: usize = 1 << 20;
/// Largest workspace backup accepted by restore.
pub const MAX_BACKUP_BODY: usize = 64 << 20;

#[derive(OpenApi)]
#[openapi(
    info(title = "Coform API", description = "Accounts, workspaces and form templates of a Coform server."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts, tokens and sessions"),
        (name = "workspaces", description = "Workspaces and their members"),
        (name = "templates", description = "Form templates"),
        (name = "data-sources", description = "Connections to REST APIs, GraphQL endpoints and PostgreSQL databases that forms bind to"),
        (name = "schema", description = "The form model: JSON Schema and component catalog")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The `/api` routes and their OpenAPI document.
pub fn router(state: AppState) -> Router {
    let (restore, restore_api) = OpenApiRouter::new()
        .routes(routes!(workspaces::restore))
        .layer(DefaultBodyLimit::max(MAX_BACKUP_BODY))
        .split_for_parts();
    let (router, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::account::register))
        .routes(routes!(auth::session::login))
        .routes(routes!(auth::session::refresh))
        .routes(routes!(auth::session::logout))
        .routes(routes!(auth::reset::forgot_password))
        .routes(routes!(auth::reset::reset_password))
        .routes(routes!(auth::verify::verify_email))
        .routes(routes!(auth::verify::resend_verification))
        .routes(routes!(
            auth::account::me,
            auth::account::update_me,
            auth::account::delete_me
        ))
        .routes(routes!(auth::account::change_password))
        .routes(routes!(
            auth::session::list_sessions,
            auth::session::revoke_all_sessions
        ))
        .routes(routes!(auth::session::revoke_session))
        .routes(routes!(workspaces::list, workspaces::create))
        .routes(routes!(
            workspaces::get,
            workspaces::update,
            workspaces::delete
        ))
        .routes(routes!(workspaces::add_member))
        .routes(routes!(workspaces::list_invitations))
        .routes(routes!(workspaces::cancel_invitation))
        .routes(routes!(
            workspaces::update_member,
            workspaces::remove_member
        ))
        .routes(routes!(workspaces::analytics))
        .routes(routes!(workspaces::backup))
        .routes(routes!(templates::list, templates::create))
        .routes(routes!(
            templates::get,
            templates::update,
            templates::delete
        ))
        .routes(routes!(templates::session))
        .routes(routes!(problems::problems))
        .routes(routes!(versions::list, versions::create))
        .routes(routes!(versions::get))
        .routes(routes!(versions::restore))
        .routes(routes!(versions::diff))
        .routes(routes!(transfer::export))
        .routes(routes!(transfer::import_into))
        .routes(routes!(transfer::import_new))
        .routes(routes!(preview::preview))
        .routes(routes!(preview::public_preview))
        .routes(routes!(stats::analytics))
        .routes(routes!(datasources::list, datasources::create))
        .routes(routes!(datasources::test))
        .routes(routes!(
            datasources::get,
            datasources::update,
            datasources::delete
        ))
        .routes(routes!(datasources::execute))
        .routes(routes!(datasources::schema))
        .routes(routes!(datasources::validate))
        .routes(routes!(datasources::health))
        .routes(routes!(datasources::cache))
        .routes(routes!(schema::template))
        .routes(routes!(schema::components))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .split_for_parts();
    api.merge(restore_api);
    let mut doc = serde_json::to_value(&api).expect("the OpenAPI document serializes");
    openapi::complete(&mut doc);
    let doc = std::sync::Arc::new(doc);
    router
        .merge(restore)
        .route(
            "/api/openapi.json",
            get(move || async move { Json(doc.as_ref().clone()) }),
        )
        .with_state(state)
}
