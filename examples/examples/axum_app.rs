//! An axum service with both audit layers: every write is attributed to the request's
//! user, IP, user agent, session and request id, and hostile, slow or failing requests
//! become `system_event` rows.
//!
//! Run with `cargo run -p sea-orm-audit-examples --example axum_app` (SQLite in memory;
//! set `DATABASE_URL=postgres://…` for PostgreSQL, `PORT` for another port than 3000,
//! `TRUSTED_PROXIES=10.0.0.0/8,…` when it runs behind a proxy). The README's section "The
//! example service" has curl calls to try.
//!
//! Authentication is FAKE: the `X-User` header (or, for browsers, the `demo_user` cookie
//! that the form at `/admin-login` sets) is believed as it is. A real service puts its own
//! authentication layer where `fake_auth` is; the context layer and the admin viewer only
//! read the `CurrentUser` extension that layer leaves behind.
//!
//! The admin viewer (feature `admin`) is mounted at `/admin`: open
//! <http://127.0.0.1:3000/admin-login>, sign in as `admin` (superuser) or any other name
//! (viewer). Set `ADMIN_SECRET` (at least 16 bytes) to key its CSRF tokens.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectOptions, Database, IntoActiveModel, QueryOrder, QuerySelect, Schema};
use sea_orm_audit::admin::{self, Access, AdminOptions, AdminUser};
use sea_orm_audit::entity::{audit_log, system_event};
use sea_orm_audit::middleware::{AuditContextLayer, ClientIp, SecurityLayer};
use sea_orm_audit::{
    AtomicWrite, BruteForcePolicy, DataExportRecord, LoginCheck, LoginStatus, guarded_login,
    log_export,
};
use sea_orm_audit_migration::Migrator;
use sea_orm_migration::MigratorTrait;
use serde::Deserialize;
use serde_json::json;

mod project {
    use sea_orm::entity::prelude::*;
    use sea_orm_audit::Audited;
    use serde::Serialize;

    /// A project: audited, described in the trail by its name.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited, Serialize)]
    #[sea_orm(table_name = "project")]
    #[audited(repr = "name")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub name: String,
        pub description: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}
}

mod task {
    use sea_orm::entity::prelude::*;
    use sea_orm_audit::Audited;
    use serde::Serialize;

    /// A task of a project: audited, described by its title.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited, Serialize)]
    #[sea_orm(table_name = "task")]
    #[audited(repr = "title")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub project_id: i64,
        pub title: String,
        pub done: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}
}

/// Who the fake authentication says is calling.
#[derive(Clone, Debug)]
struct CurrentUser(String);

/// FAKE authentication: believes `X-User`. Replace with real authentication.
async fn fake_auth(mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let cookie = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("demo_user="));
    let user = headers
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .or(cookie)
        .filter(|v| !v.is_empty())
        .map(|v| CurrentUser(v.to_owned()));
    if let Some(user) = user {
        req.extensions_mut().insert(user);
    }
    next.run(req).await
}

type ApiResult = Result<Response, ApiError>;

struct ApiError(StatusCode, String);

impl From<DbErr> for ApiError {
    fn from(e: DbErr) -> Self {
        match e {
            DbErr::RecordNotFound(what) => ApiError(StatusCode::NOT_FOUND, what),
            other => ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn not_found(what: &str) -> DbErr {
    DbErr::RecordNotFound(what.to_owned())
}

#[derive(Deserialize)]
struct ProjectIn {
    name: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct TaskIn {
    title: Option<String>,
    done: Option<bool>,
}

// Each write goes through `*_atomic`, so the row and its audit entry commit together.

async fn list_projects(State(db): State<DatabaseConnection>) -> ApiResult {
    let all = project::Entity::find()
        .order_by_asc(project::Column::Id)
        .all(&db)
        .await?;
    Ok(Json(all).into_response())
}

async fn create_project(
    State(db): State<DatabaseConnection>,
    Json(p): Json<ProjectIn>,
) -> ApiResult {
    let name = p
        .name
        .ok_or(ApiError(StatusCode::BAD_REQUEST, "name is required".into()))?;
    let created = project::ActiveModel {
        name: Set(name),
        description: Set(p.description),
        ..Default::default()
    }
    .insert_atomic(&db)
    .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn get_project(State(db): State<DatabaseConnection>, Path(id): Path<i64>) -> ApiResult {
    let p = project::Entity::find_by_id(id)
        .one(&db)
        .await?
        .ok_or_else(|| not_found("project"))?;
    let tasks = task::Entity::find()
        .filter(task::Column::ProjectId.eq(id))
        .order_by_asc(task::Column::Id)
        .all(&db)
        .await?;
    Ok(Json(json!({ "project": p, "tasks": tasks })).into_response())
}

async fn update_project(
    State(db): State<DatabaseConnection>,
    Path(id): Path<i64>,
    Json(p): Json<ProjectIn>,
) -> ApiResult {
    let mut am = project::Entity::find_by_id(id)
        .one(&db)
        .await?
        .ok_or_else(|| not_found("project"))?
        .into_active_model();
    if let Some(name) = p.name {
        am.name = Set(name);
    }
    if let Some(d) = p.description {
        am.description = Set(Some(d));
    }
    Ok(Json(am.update_atomic(&db).await?).into_response())
}

async fn delete_project(State(db): State<DatabaseConnection>, Path(id): Path<i64>) -> ApiResult {
    let p = project::Entity::find_by_id(id)
        .one(&db)
        .await?
        .ok_or_else(|| not_found("project"))?;
    for t in task::Entity::find()
        .filter(task::Column::ProjectId.eq(id))
        .all(&db)
        .await?
    {
        t.into_active_model().delete_atomic(&db).await?;
    }
    p.into_active_model().delete_atomic(&db).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_task(
    State(db): State<DatabaseConnection>,
    Path(project_id): Path<i64>,
    Json(t): Json<TaskIn>,
) -> ApiResult {
    project::Entity::find_by_id(project_id)
        .one(&db)
        .await?
        .ok_or_else(|| not_found("project"))?;
    let title = t.title.ok_or(ApiError(
        StatusCode::BAD_REQUEST,
        "title is required".into(),
    ))?;
    let created = task::ActiveModel {
        project_id: Set(project_id),
        title: Set(title),
        done: Set(t.done.unwrap_or(false)),
        ..Default::default()
    }
    .insert_atomic(&db)
    .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn update_task(
    State(db): State<DatabaseConnection>,
    Path(id): Path<i64>,
    Json(t): Json<TaskIn>,
) -> ApiResult {
    let mut am = task::Entity::find_by_id(id)
        .one(&db)
        .await?
        .ok_or_else(|| not_found("task"))?
        .into_active_model();
    if let Some(title) = t.title {
        am.title = Set(title);
    }
    if let Some(done) = t.done {
        am.done = Set(done);
    }
    Ok(Json(am.update_atomic(&db).await?).into_response())
}

async fn delete_task(State(db): State<DatabaseConnection>, Path(id): Path<i64>) -> ApiResult {
    let t = task::Entity::find_by_id(id)
        .one(&db)
        .await?
        .ok_or_else(|| not_found("task"))?;
    t.into_active_model().delete_atomic(&db).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The last 50 audit rows, newest first.
async fn audit_trail(State(db): State<DatabaseConnection>) -> ApiResult {
    let rows = audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Id)
        .limit(50)
        .all(&db)
        .await?;
    Ok(Json(rows).into_response())
}

/// The last 50 system events (security findings, slow requests, errors), newest first.
async fn system_events(State(db): State<DatabaseConnection>) -> ApiResult {
    let rows = system_event::Entity::find()
        .order_by_desc(system_event::Column::Id)
        .limit(50)
        .all(&db)
        .await?;
    Ok(Json(rows).into_response())
}

#[derive(Deserialize)]
struct LoginIn {
    username: String,
    password: String,
}

/// POST /login: a FAKE password check ("secret" for every user) behind the brute-force
/// guard. Every attempt becomes a `login_attempt` row and a LOGIN / LOGIN_FAILED
/// `audit_log` row; within 15 minutes, after 5 failures for the username or 20 from the
/// IP, further attempts are refused with 429 and a `Retry-After` header until the lock ends.
async fn login(State(db): State<DatabaseConnection>, Json(body): Json<LoginIn>) -> ApiResult {
    let policy = BruteForcePolicy::default();
    let password = body.password;
    let rec = guarded_login(&db, &body.username, &policy, || async move {
        if password == "secret" {
            Ok(())
        } else {
            Err("wrong password".to_owned())
        }
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(match (rec.status, rec.check) {
        (LoginStatus::Success, _) => {
            Json(json!({ "ok": true, "user": body.username })).into_response()
        }
        (_, LoginCheck::Blocked { retry_after, .. }) => {
            let secs = (retry_after - chrono::Utc::now()).num_seconds().max(1);
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(axum::http::header::RETRY_AFTER, secs.to_string())],
                Json(json!({ "error": "too many failed attempts", "retry_after": retry_after })),
            )
                .into_response()
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "wrong username or password" })),
        )
            .into_response(),
    })
}

/// GET /export: the projects as CSV, logged as a data export (a `data_export` row and an
/// EXPORT `audit_log` row) before the file is returned.
async fn export(State(db): State<DatabaseConnection>) -> ApiResult {
    let projects = project::Entity::find()
        .order_by_asc(project::Column::Id)
        .all(&db)
        .await?;
    let mut csv = String::from("id,name\n");
    for p in &projects {
        csv.push_str(&format!("{},\"{}\"\n", p.id, p.name.replace('"', "\"\"")));
    }
    let id = log_export(
        &db,
        DataExportRecord::new("projects", "csv")
            .record_count(projects.len() as i64)
            .file_size(csv.len() as i64)
            .filters(json!({})),
    )
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv".to_owned()),
            (
                axum::http::HeaderName::from_static("x-export-id"),
                id.to_string(),
            ),
        ],
        csv,
    )
        .into_response())
}

/// Sleeps for the given number of milliseconds (capped at 10 s): a slow request.
async fn slow(Path(ms): Path<u64>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms.min(10_000))).await;
    "slow but done\n"
}

/// Panics: the security layer records it and the client gets a plain 500.
async fn boom() -> &'static str {
    panic!("the /boom handler panicked on purpose")
}

// === the admin viewer ===

/// Who may use the admin viewer: the FAKE user named `admin` is a superuser, any other
/// signed-in user a viewer, nobody else gets in. A real service decides from its own roles.
fn admin_access(parts: &axum::http::request::Parts) -> Access {
    match parts.extensions.get::<CurrentUser>() {
        Some(CurrentUser(name)) if name == "admin" => {
            Access::Superuser(AdminUser::new(name.as_str(), name.as_str()).session(name.as_str()))
        }
        Some(CurrentUser(name)) => {
            Access::Viewer(AdminUser::new(name.as_str(), name.as_str()).session(name.as_str()))
        }
        None => Access::NoAccess,
    }
}

const LOGIN_FORM: &str = r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body><h1>Sign in (FAKE)</h1><form method="post" action="/admin-login">
<label>User name <input name="user" required></label> <button type="submit">Sign in</button>
</form><p>"admin" is a superuser, any other name a viewer.</p></body></html>"#;

#[derive(serde::Deserialize)]
struct LoginForm {
    user: String,
}

/// FAKE sign-in for browsers: puts the name in a cookie that `fake_auth` believes.
async fn admin_login(axum::extract::Form(form): axum::extract::Form<LoginForm>) -> Response {
    let user: String = form
        .user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    let cookie = format!("demo_user={user}; Path=/; HttpOnly; SameSite=Lax");
    (
        StatusCode::SEE_OTHER,
        [
            (axum::http::header::SET_COOKIE, cookie),
            (axum::http::header::LOCATION, "/admin".to_owned()),
        ],
    )
        .into_response()
}

/// The whole service; `pub(crate)` because the admin browser test
/// (`tests/it/admin_e2e.rs`) includes this file as a module and serves it.
pub(crate) fn app(db: DatabaseConnection, security: SecurityLayer, client_ip: ClientIp) -> Router {
    let context = AuditContextLayer::new()
        .actor(|parts: &axum::http::request::Parts| {
            let user = parts.extensions.get::<CurrentUser>()?;
            Some((user.0.clone(), user.0.clone()))
        })
        .client_ip(client_ip);
    Router::new()
        .route("/projects", get(list_projects).post(create_project))
        .route(
            "/projects/{id}",
            get(get_project)
                .patch(update_project)
                .delete(delete_project),
        )
        .route("/projects/{id}/tasks", axum::routing::post(create_task))
        .route(
            "/tasks/{id}",
            axum::routing::patch(update_task).delete(delete_task),
        )
        .route("/audit", get(audit_trail))
        .route("/events", get(system_events))
        .route("/login", axum::routing::post(login))
        .route("/export", get(export))
        .route("/slow/{ms}", get(slow))
        .route("/boom", get(boom))
        .route(
            "/admin-login",
            get(|| async { axum::response::Html(LOGIN_FORM) }).post(admin_login),
        )
        .with_state(db.clone())
        .nest("/admin", admin::router(db, admin_access, admin_options()))
        // Layers added last run first: fake_auth, then the context, then security.
        .layer(security)
        .layer(context)
        .layer(middleware::from_fn(fake_auth))
}

fn admin_options() -> AdminOptions {
    let secret = std::env::var("ADMIN_SECRET")
        .unwrap_or_else(|_| "demo secret, set ADMIN_SECRET instead".to_owned());
    AdminOptions::new(secret).redirect_no_access("/admin-login")
}

/// The audit tables and the example's own.
pub(crate) async fn create_tables(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await?;
    let schema = Schema::new(db.get_database_backend());
    for stmt in [
        schema
            .create_table_from_entity(project::Entity)
            .if_not_exists()
            .to_owned(),
        schema
            .create_table_from_entity(task::Entity)
            .if_not_exists()
            .to_owned(),
    ] {
        db.execute(&stmt).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite::memory:".to_owned());
    let mut opts = ConnectOptions::new(url.clone());
    if url.starts_with("sqlite") {
        // One connection: an in-memory SQLite database exists per connection.
        opts.max_connections(1);
    }
    opts.sqlx_logging(false);
    let db = Database::connect(opts).await?;
    create_tables(&db).await?;

    let mut client_ip = ClientIp::new()
        .peer_addr_with(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip()));
    if let Ok(list) = std::env::var("TRUSTED_PROXIES") {
        client_ip = client_ip.trust_proxies(list.split(',').filter(|s| !s.trim().is_empty()))?;
    }
    let security = SecurityLayer::new(db.clone()).slow_threshold(Some(Duration::from_secs(1)));

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "axum_app listening on http://{} ({})",
        listener.local_addr()?,
        if url.starts_with("sqlite::memory") {
            "SQLite in memory"
        } else {
            url.split(':').next().unwrap_or("db")
        }
    );
    axum::serve(
        listener,
        app(db, security, client_ip).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
