//! `/api/data-sources/*`: a workspace's connections to REST APIs,
//! GraphQL endpoints and PostgreSQL databases, which forms bind to.
//!
//! Who may do what: owners, admins and editors create, change, test and
//! inspect sources; viewers list them (secrets are never shown to anyone)
//! and execute a source only on behalf of a form that binds it (they name
//! the template). A caller outside the workspace gets 404 on every route,
//! whatever id they try.
//!
//! How calls are made (guard, secrets, cache, figures) is
//! [`crate::datasources`]'s part.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use coform_sources::{Config as SourceConfig, Kind};
use coform_storage::{DataSource, DataSourceQuery, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::access::{require, template_role, workspace_role};
use super::auth::check_name;
use super::extract::{ApiJson, ApiQuery, Authed};
use crate::auth::{now_ms, secret};
use crate::datasources::{DataSources, ExecError};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::server::AppState;

/// Most parameters one call may bind.
const MAX_PARAMS: usize = 50;

/// A data source as every answer shows it: secrets masked.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceView {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    /// `rest`, `graphql` or `database`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The configuration, every secret replaced by a mask.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Whether the configuration holds secrets (kept sealed).
    pub credentials_set: bool,
    /// Bumped by every change of the configuration.
    pub config_version: u64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used: Option<i64>,
    /// `untested`, `active` (the last call succeeded) or `failing`.
    pub status: String,
    pub error_count: u64,
    pub performance: Performance,
    pub monitoring: Monitoring,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Performance {
    /// Average duration of a call, in milliseconds (null before the first).
    pub response_time: Option<f64>,
    /// Share of calls that succeeded, 0 to 1 (null before the first).
    pub success_rate: Option<f64>,
    /// Calls made.
    pub calls: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Monitoring {
    pub last_check: Option<i64>,
    /// `unknown` before the first health check, then `healthy` or
    /// `unhealthy`.
    pub health: String,
    pub alerts: Vec<String>,
}

fn view(source: &DataSource) -> ApiResult<DataSourceView> {
    let stored: Value = serde_json::from_str(&source.config).map_err(ApiError::internal)?;
    let (config, credentials_set) = coform_sources::secrets::masked_config(&stored);
    let calls = source.call_count;
    Ok(DataSourceView {
        id: source.id.clone(),
        workspace_id: source.workspace_id.clone(),
        name: source.name.clone(),
        kind: source.kind.clone(),
        config,
        credentials_set,
        config_version: source.config_version,
        created_by: source.created_by.clone(),
        created_at: source.created_at,
        updated_at: source.updated_at,
        last_used: source.last_used,
        status: source.status.clone(),
        error_count: source.error_count,
        performance: Performance {
            response_time: (calls > 0).then(|| source.total_duration_ms as f64 / calls as f64),
            success_rate: (calls > 0)
                .then(|| (calls - source.error_count.min(calls)) as f64 / calls as f64),
            calls,
        },
        monitoring: Monitoring {
            last_check: source.last_check,
            health: source.health.clone(),
            alerts: source.alerts.clone(),
        },
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// The workspace (required).
    pub workspace_id: String,
    /// Only sources of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Text to find in the name.
    pub search: Option<String>,
    /// 1-based page number.
    #[param(minimum = 1, maximum = 1_000_000, nullable = false)]
    pub page: Option<u64>,
    /// Items per page (1–100, default 20).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub page_size: Option<u64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSourcePage {
    pub items: Vec<DataSourceView>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDataSource {
    pub workspace_id: String,
    pub name: String,
    /// `rest`, `graphql` or `database`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: Kind,
    #[schema(value_type = Object)]
    pub config: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateDataSource {
    pub name: Option<String>,
    /// Changes merged into the configuration key by key (`null` removes
    /// a key). Secrets left out, or sent as the mask, are kept while the
    /// origin and authentication type stay the same.
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

/// `POST /api/data-sources/test`: a create body (name optional) or a
/// saved source with changes, and the parameters to bind.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestDataSource {
    /// A saved source, tested with `config` as changes.
    pub id: Option<String>,
    pub workspace_id: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>)]
    pub kind: Option<Kind>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub params: Option<Map<String, Value>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    pub ok: bool,
    pub duration_ms: u64,
    /// The answer (its first 20 items when it is a list).
    #[schema(value_type = Object)]
    pub sample: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteBody {
    /// Values for the source's `{{name}}` placeholders.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// The template whose form binds this source: required of viewers.
    pub template_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteResult {
    #[schema(value_type = Object)]
    pub data: Value,
    /// Served from the answer cache.
    pub cached: bool,
    pub duration_ms: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidateResult {
    pub valid: bool,
    pub problems: Vec<FieldError>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthResult {
    /// `healthy` or `unhealthy`.
    pub health: String,
    pub checked_at: i64,
    pub duration_ms: u64,
    pub alerts: Vec<String>,
    /// Why the check failed: `{code, message}`.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// `{"invalidate": true}` or `{"enabled", "ttl"}`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheBody {
    pub invalidate: Option<bool>,
    pub enabled: Option<bool>,
    /// Seconds.
    #[serde(default, deserialize_with = "super::extract::whole_u32")]
    pub ttl: Option<u32>,
}

/// The data sources of the service, or 404 when the server runs without.
fn service(state: &AppState) -> &DataSources {
    &state.sources
}

/// A source and the caller's role in its workspace; 404 when either is
/// missing.
async fn source_role(
    state: &AppState,
    id: &str,
    user_id: &str,
) -> Result<(DataSource, Role), ApiError> {
    let source = service(state)
        .store
        .data_source(id)
        .await?
        .ok_or(ApiError::NotFound("data source"))?;
    let role =
        super::access::member_role(state, &source.workspace_id, user_id, "data source").await?;
    Ok((source, role))
}

/// A config from JSON, checked for its kind and, when its host is a
/// literal address, against the guard.
fn read_config(sources: &DataSources, kind: Kind, value: Value) -> ApiResult<SourceConfig> {
    if value.to_string().len() > super::MAX_BODY / 4 {
        return Err(ApiError::field("config", "is too large"));
    }
    let config: SourceConfig =
        serde_json::from_value(value).map_err(|e| ApiError::field("config", e.to_string()))?;
    check_config(sources, kind, &config)?;
    Ok(config)
}

fn check_config(sources: &DataSources, kind: Kind, config: &SourceConfig) -> ApiResult<()> {
    config
        .check(kind)
        .map_err(|e| ApiError::field(&format!("config.{}", e.field), e.message))?;
    sources.check_literal_host(kind, config)?;
    Ok(())
}

fn check_params(params: &Map<String, Value>) -> ApiResult<()> {
    if params.len() > MAX_PARAMS {
        return Err(ApiError::field(
            "params",
            format!("at most {MAX_PARAMS} parameters"),
        ));
    }
    Ok(())
}

fn exec_error(e: ExecError) -> ApiError {
    match e {
        ExecError::Source(e) => e.into(),
        ExecError::Internal(e) => ApiError::Internal(e),
    }
}

/// A workspace's data sources (any member; secrets masked).
#[utoipa::path(get, path = "/api/data-sources", tag = "data-sources", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = DataSourcePage), (status = 401), (status = 404), (status = 422)))]
pub async fn list(
    Authed(state, me): Authed,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<DataSourcePage>> {
    workspace_role(&state, &q.workspace_id, &me.user.id).await?;
    let (page, page_size) = super::paging(q.page, q.page_size)?;
    if let Some(kind) = &q.kind {
        if serde_json::from_value::<Kind>(Value::String(kind.clone())).is_err() {
            return Err(ApiError::field("type", "must be rest, graphql or database"));
        }
    }
    if q.search
        .as_deref()
        .is_some_and(|s| s.chars().any(char::is_control))
    {
        return Err(ApiError::field(
            "search",
            "must not contain control characters",
        ));
    }
    let query = DataSourceQuery {
        workspace_id: q.workspace_id.clone(),
        kind: q.kind.clone(),
        search: q
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(200).collect()),
        page,
        page_size,
    };
    let sources = service(&state);
    let (items, total) = sources.store.list_data_sources(&query).await?;
    Ok(Json(DataSourcePage {
        items: items.iter().map(view).collect::<ApiResult<_>>()?,
        total,
        page,
        page_size,
    }))
}

/// Add a data source to a workspace (editor).
#[utoipa::path(post, path = "/api/data-sources", tag = "data-sources", security(("bearer" = [])), request_body = CreateDataSource,
    responses((status = 201, body = DataSourceView), (status = 401), (status = 403), (status = 404), (status = 409),
              (status = 422, description = "Invalid fields, or `blocked_address`")))]
pub async fn create(
    Authed(state, me): Authed,
    ApiJson(req): ApiJson<CreateDataSource>,
) -> ApiResult<(StatusCode, Json<DataSourceView>)> {
    let (_, role) = workspace_role(&state, &req.workspace_id, &me.user.id).await?;
    require(role, Role::Editor, "adding data sources")?;
    let name = check_name("name", &req.name, 100)?;
    let sources = service(&state);
    let config = read_config(sources, req.kind, req.config)?;
    let now = now_ms();
    let id = secret::new_id();
    let source = DataSource {
        config: sources.seal(&config, &req.workspace_id, &id),
        id,
        workspace_id: req.workspace_id,
        name,
        kind: req.kind.as_str().to_owned(),
        config_version: 1,
        created_by: me.user.id.clone(),
        created_at: now,
        updated_at: now,
        last_used: None,
        call_count: 0,
        error_count: 0,
        total_duration_ms: 0,
        last_error: None,
        status: "untested".into(),
        last_check: None,
        health: "unknown".into(),
        alerts: Vec::new(),
    };
    sources.store.create_data_source(&source).await?;
    Ok((StatusCode::CREATED, Json(view(&source)?)))
}

/// One data source (any member; secrets masked).
#[utoipa::path(get, path = "/api/data-sources/{id}", tag = "data-sources", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = DataSourceView), (status = 401), (status = 404)))]
pub async fn get(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<DataSourceView>> {
    let (source, _) = source_role(&state, &id, &me.user.id).await?;
    Ok(Json(view(&source)?))
}

/// Change a data source's name or configuration (editor). The
/// configuration is merged key by key; stored secrets are kept only
/// while the origin and the authentication type stay the same.
#[utoipa::path(put, path = "/api/data-sources/{id}", tag = "data-sources", security(("bearer" = [])),
    request_body = UpdateDataSource, params(("id" = String, Path)),
    responses((status = 200, body = DataSourceView), (status = 401), (status = 403), (status = 404), (status = 409),
              (status = 422, description = "Invalid fields, `secrets_required` or `blocked_address`")))]
pub async fn update(
    Authed(state, me): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateDataSource>,
) -> ApiResult<Json<DataSourceView>> {
    let (mut source, role) = source_role(&state, &id, &me.user.id).await?;
    require(role, Role::Editor, "changing data sources")?;
    let sources = service(&state);
    if let Some(name) = &req.name {
        source.name = check_name("name", name, 100)?;
    }
    if let Some(changes) = &req.config {
        let config = merged(sources, &source, changes)?;
        source.config = sources.seal(&config, &source.workspace_id, &source.id);
    }
    save(sources, &mut source).await?;
    sources.invalidate(&source).await;
    Ok(Json(view(&source)?))
}

/// The source's clear config with `changes` merged and checked.
fn merged(sources: &DataSources, source: &DataSource, changes: &Value) -> ApiResult<SourceConfig> {
    if !changes.is_object() {
        return Err(ApiError::field("config", "must be an object of changes"));
    }
    let current = sources.open(source).map_err(ApiError::Internal)?;
    let config = coform_sources::secrets::merge_config(&current, changes).map_err(|e| match e {
        coform_sources::secrets::MergeError::SecretsRequired { fields } => {
            ApiError::SecretsRequired(fields)
        }
        other => ApiError::field("config", other.to_string()),
    })?;
    let kind = kind(source)?;
    check_config(sources, kind, &config)?;
    Ok(config)
}

fn kind(source: &DataSource) -> ApiResult<Kind> {
    crate::datasources::kind_of(source).map_err(ApiError::Internal)
}

/// Stores a changed source: the config version is compared and bumped,
/// so that two changes racing cannot both win.
async fn save(sources: &DataSources, source: &mut DataSource) -> ApiResult<()> {
    source.updated_at = now_ms();
    let expected = source.config_version;
    if !sources.store.update_data_source(source, expected).await? {
        return Err(ApiError::new(
            crate::error::Code::Conflict,
            "the data source changed meanwhile; read it again and retry",
        ));
    }
    source.config_version = expected + 1;
    Ok(())
}

/// Delete a data source (editor). Forms that bind it fall back to their
/// own options.
#[utoipa::path(delete, path = "/api/data-sources/{id}", tag = "data-sources", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 401), (status = 403), (status = 404)))]
pub async fn delete(Authed(state, me): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let (source, role) = source_role(&state, &id, &me.user.id).await?;
    require(role, Role::Editor, "deleting data sources")?;
    let sources = service(&state);
    sources.store.delete_data_source(&id).await?;
    sources.invalidate(&source).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Test a configuration before saving it, or a saved source with changes
/// (editor). A database role must be read-only. Answers the first items
/// of the answer; a failure answers its error code.
#[utoipa::path(post, path = "/api/data-sources/test", tag = "data-sources", security(("bearer" = [])),
    request_body = TestDataSource,
    responses((status = 200, body = TestResult), (status = 401), (status = 403), (status = 404), (status = 422),
              (status = 424, description = "The upstream failed: its code says how")))]
pub async fn test(
    Authed(state, me): Authed,
    ApiJson(req): ApiJson<TestDataSource>,
) -> ApiResult<Json<TestResult>> {
    let sources = service(&state);
    let params = req.params.unwrap_or_default();
    check_params(&params)?;
    let (kind, config) = match &req.id {
        Some(id) => {
            if req.workspace_id.is_some() || req.kind.is_some() || req.name.is_some() {
                return Err(ApiError::field(
                    "id",
                    "a saved source is tested with `config` changes only",
                ));
            }
            let (source, role) = source_role(&state, id, &me.user.id).await?;
            require(role, Role::Editor, "testing data sources")?;
            let config = match &req.config {
                Some(changes) => merged(sources, &source, changes)?,
                None => {
                    let config = sources.open(&source).map_err(ApiError::Internal)?;
                    check_config(sources, kind(&source)?, &config)?;
                    config
                }
            };
            (kind(&source)?, config)
        }
        None => {
            let workspace_id = req
                .workspace_id
                .as_deref()
                .ok_or_else(|| ApiError::field("workspaceId", "is required without an id"))?;
            let (_, role) = workspace_role(&state, workspace_id, &me.user.id).await?;
            require(role, Role::Editor, "testing data sources")?;
            if let Some(name) = &req.name {
                check_name("name", name, 100)?;
            }
            let kind = req
                .kind
                .ok_or_else(|| ApiError::field("type", "is required without an id"))?;
            let config = req
                .config
                .ok_or_else(|| ApiError::field("config", "is required without an id"))?;
            (kind, read_config(sources, kind, config)?)
        }
    };
    let (sample, duration_ms) = sources.test(kind, &config, &params).await?;
    Ok(Json(TestResult {
        ok: true,
        duration_ms,
        sample,
    }))
}

/// Run a source with parameters. Editors run any source of their
/// workspace; viewers only one that the named template's form binds.
#[utoipa::path(post, path = "/api/data-sources/{id}/execute", tag = "data-sources", security(("bearer" = [])),
    request_body = ExecuteBody, params(("id" = String, Path)),
    responses((status = 200, body = ExecuteResult), (status = 401), (status = 403), (status = 404), (status = 422),
              (status = 424, description = "The upstream failed: its code says how"), (status = 429)))]
pub async fn execute(
    Authed(state, me): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ExecuteBody>,
) -> ApiResult<Json<ExecuteResult>> {
    let (source, role) = source_role(&state, &id, &me.user.id).await?;
    check_params(&req.params)?;
    if role < Role::Editor {
        let Some(template_id) = &req.template_id else {
            return Err(ApiError::Forbidden(
                "viewers run a data source only for a form that binds it: name the template".into(),
            ));
        };
        let (template, _) = template_role(&state, template_id, &me.user.id).await?;
        let content = super::templates::read_content(&state, template_id).await?;
        if template.workspace_id != source.workspace_id || !binds(&content, &source.id) {
            return Err(ApiError::Forbidden(
                "the template's form does not bind this data source".into(),
            ));
        }
    }
    let answer = service(&state)
        .execute(&source, &req.params)
        .await
        .map_err(exec_error)?;
    Ok(Json(ExecuteResult {
        data: answer.data,
        cached: answer.cached,
        duration_ms: answer.duration_ms,
    }))
}

/// Whether any component of `content` binds `source_id` (its options or
/// its default value).
pub fn binds(content: &Value, source_id: &str) -> bool {
    let Some(components) = content.get("components").and_then(Value::as_object) else {
        return false;
    };
    components.values().any(|component| {
        let properties = component.get("properties");
        ["optionsSource", "defaultSource"].iter().any(|key| {
            properties
                .and_then(|p| p.get(*key))
                .and_then(|b| b.get("dataSourceId"))
                .and_then(Value::as_str)
                == Some(source_id)
        })
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SchemaQuery {
    /// A JSON object of parameters, for a REST source whose sample call
    /// needs them (`?params={"region":"europe"}`, URL-encoded).
    pub params: Option<String>,
}

/// What a source answers with: inferred from a sample (REST), the
/// introspected types (GraphQL), or the tables and columns its role may
/// read (PostgreSQL). Editors.
#[utoipa::path(get, path = "/api/data-sources/{id}/schema", tag = "data-sources", security(("bearer" = [])),
    params(("id" = String, Path), SchemaQuery),
    responses((status = 200, body = Object), (status = 401), (status = 403), (status = 404), (status = 422), (status = 424)))]
pub async fn schema(
    Authed(state, me): Authed,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SchemaQuery>,
) -> ApiResult<Json<Value>> {
    let (source, role) = source_role(&state, &id, &me.user.id).await?;
    require(role, Role::Editor, "reading a data source's schema")?;
    let params = match q.params.as_deref() {
        None | Some("") => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(ApiError::field("params", "must be a JSON object")),
        },
    };
    check_params(&params)?;
    let schema = service(&state)
        .schema(&source, &params)
        .await
        .map_err(exec_error)?;
    Ok(Json(schema))
}

/// Check a saved source's configuration without dialling it: fields,
/// literal addresses against the outbound guard, and its secrets. Editors.
#[utoipa::path(post, path = "/api/data-sources/{id}/validate", tag = "data-sources", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ValidateResult), (status = 401), (status = 403), (status = 404)))]
pub async fn validate(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<ValidateResult>> {
    let (source, role) = source_role(&state, &id, &me.user.id).await?;
    require(role, Role::Editor, "validating data sources")?;
    let sources = service(&state);
    let mut problems = Vec::new();
    match sources.open(&source) {
        Err(e) => {
            tracing::error!(source = %source.id, error = %e, "a data source's secrets do not open");
            problems.push(FieldError::new(
                "config",
                "its secrets cannot be opened with the server's keys: send them again",
            ));
        }
        Ok(config) => {
            if let Err(e) = config.check(kind(&source)?) {
                problems.push(FieldError::new(format!("config.{}", e.field), e.message));
            }
            if let Err(e) = sources.check_literal_host(kind(&source)?, &config) {
                problems.push(FieldError::new(
                    if config.url.is_some() {
                        "config.url"
                    } else {
                        "config.host"
                    },
                    e.to_string(),
                ));
            }
        }
    }
    Ok(Json(ValidateResult {
        valid: problems.is_empty(),
        problems,
    }))
}

/// Check that a source answers (dials it), and record the outcome in its
/// monitoring figures. Editors.
#[utoipa::path(get, path = "/api/data-sources/{id}/health", tag = "data-sources", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = HealthResult), (status = 401), (status = 403), (status = 404)))]
pub async fn health(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<HealthResult>> {
    let (source, role) = source_role(&state, &id, &me.user.id).await?;
    require(role, Role::Editor, "checking data sources")?;
    let health = service(&state).health(&source).await.map_err(exec_error)?;
    Ok(Json(HealthResult {
        health: health.health.into(),
        checked_at: health.checked_at,
        duration_ms: health.duration_ms,
        alerts: health.alerts,
        error: health.error.map(|e| {
            let code = ApiError::from(e);
            serde_json::json!({"code": code.code().as_str(), "message": code.to_string()})
        }),
    }))
}

/// Turn the answer cache on or off, set its TTL, or drop every cached
/// answer of the source (editor).
#[utoipa::path(post, path = "/api/data-sources/{id}/cache", tag = "data-sources", security(("bearer" = [])),
    request_body = CacheBody, params(("id" = String, Path)),
    responses((status = 200, body = DataSourceView), (status = 401), (status = 403), (status = 404), (status = 422)))]
pub async fn cache(
    Authed(state, me): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CacheBody>,
) -> ApiResult<Json<DataSourceView>> {
    let (mut source, role) = source_role(&state, &id, &me.user.id).await?;
    require(role, Role::Editor, "changing a data source's cache")?;
    let sources = service(&state);
    let setting = req.enabled.is_some() || req.ttl.is_some();
    match (req.invalidate, setting) {
        (Some(true), false) => {}
        (None, true) => {
            let mut config = sources.open(&source).map_err(ApiError::Internal)?;
            if let Some(enabled) = req.enabled {
                config.caching.enabled = enabled;
            }
            if let Some(ttl) = req.ttl {
                config.caching.ttl = ttl;
            }
            check_config(sources, kind(&source)?, &config)?;
            source.config = sources.seal(&config, &source.workspace_id, &source.id);
            save(sources, &mut source).await?;
        }
        _ => {
            return Err(ApiError::field(
                "invalidate",
                "send {\"invalidate\": true} or {\"enabled\", \"ttl\"}",
            ))
        }
    }
    sources.invalidate(&source).await;
    Ok(Json(view(&source)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_form_binds_a_source_through_options_or_a_default() {
        let content = json!({"components": {
            "a": {"type": "select", "properties": {"optionsSource": {"dataSourceId": "s1"}}},
            "b": {"type": "text", "properties": {"defaultSource": {"dataSourceId": "s2"}}},
        }});
        assert!(binds(&content, "s1"));
        assert!(binds(&content, "s2"));
        assert!(!binds(&content, "s3"));
        assert!(!binds(&json!({}), "s1"));
    }

    #[test]
    fn every_source_error_answers_with_its_own_code() {
        use coform_sources::SourceError as S;
        let errors = [
            S::TooManyRedirects { limit: 5 },
            S::InsecureRedirect {
                from: "a".into(),
                to: "b".into(),
            },
            S::ParameterRefused {
                name: "x".into(),
                reason: "y".into(),
            },
            S::UpstreamTimeout { limit_ms: 1 },
            S::ResponseTooLarge { limit: 1 },
            S::RowLimit { limit: 1 },
            S::Upstream {
                status: Some(500),
                message: "m".into(),
            },
            S::UnsafeRole { reason: "r".into() },
            S::Busy { limit: 4 },
            S::NoAddress { host: "h".into() },
        ];
        for e in errors {
            let code = e.code();
            assert_eq!(ApiError::from(e).code().as_str(), code);
        }
    }
}
