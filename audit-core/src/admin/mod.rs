//! A read-only web console over the audit data: an axum [`Router`] to mount anywhere.
//!
//! Server-rendered HTML (askama templates, escaped by default) with a small embedded
//! stylesheet; no JavaScript at all, and a Content-Security-Policy that forbids it.
//!
//! ```
//! use axum::http::request::Parts;
//! use sea_orm_audit::admin::{self, Access, AdminOptions, AdminUser};
//!
//! # async fn app(db: sea_orm::DatabaseConnection) {
//! // The application decides who may look; here a header set by an authenticating proxy.
//! let authorizer = |parts: &Parts| match parts.headers.get("x-staff-role").and_then(|v| v.to_str().ok()) {
//!     Some("admin") => Access::Superuser(AdminUser::new("1", "Ada")),
//!     Some("auditor") => Access::Viewer(AdminUser::new("2", "Grace")),
//!     _ => Access::NoAccess,
//! };
//! let options = AdminOptions::new(*b"a secret of at least sixteen bytes");
//! let app: axum::Router = axum::Router::new().nest("/audit", admin::router(db, authorizer, options));
//! # let _ = app;
//! # }
//! ```
//!
//! Pages (relative to the mount point):
//! - `/`: the dashboard, counts for the last 1, 7 and 30 days;
//! - `/log`, `/log/{id}`: the audit log (filters, search, date drill-down, keyset pages) and
//!   one entry with its changes field by field;
//! - `/history?table=…&pk=…&at=…`: one object's timeline and its state at a time;
//! - `/logins`, `/exports`, `/events` and their `/{id}` detail pages;
//! - `POST /events/{id}/resolve`: resolve a system event (viewer or superuser);
//! - `/prune`, `POST /prune`: delete rows older than a date (superuser only), after a
//!   confirmation page that shows how many rows will go.
//!
//! Both writes need the CSRF token of the page's form and are recorded in `audit_log`
//! (actions `RESOLVE` and `PRUNE`) with the actor the authorizer named.
//!
//! The log's search box (exact primary key, prefix of the object's repr or of the actor's
//! name) reads the indexes that `sea_orm_audit_migration::ADD_AUDIT_LOG_SEARCH_INDEXES`
//! adds. That migration is the one an application may leave out to make every audited
//! write a little cheaper; the search then reads the whole log, with the same answers.

mod auth;
mod handlers;
mod queries;
mod templates;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use sea_orm::DatabaseConnection;

pub use auth::{Access, AccessFuture, AdminUser, Authorizer};

/// Settings of the admin viewer.
///
/// ```
/// use sea_orm_audit::admin::AdminOptions;
///
/// let options = AdminOptions::new("0123456789abcdef0123456789abcdef")
///     .page_size(100)
///     .redirect_no_access("/login");
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct AdminOptions {
    secret: Vec<u8>,
    no_access_redirect: Option<String>,
    page_size: u64,
}

/// Shortest secret accepted, in bytes.
const MIN_SECRET: usize = 16;

impl AdminOptions {
    /// Options with the server secret that keys the CSRF tokens. Use at least 32 random
    /// bytes, kept across restarts (or every open form stops working at a restart).
    ///
    /// # Panics
    /// When `secret` is shorter than 16 bytes: a guessable secret makes the CSRF
    /// protection worthless, and this is a start-up configuration error.
    ///
    /// ```
    /// # use sea_orm_audit::admin::AdminOptions;
    /// let options = AdminOptions::new(vec![7u8; 32]);
    /// # let _ = options;
    /// ```
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        let secret = secret.as_ref().to_vec();
        assert!(
            secret.len() >= MIN_SECRET,
            "sea_orm_audit::admin: the CSRF secret must be at least {MIN_SECRET} bytes"
        );
        Self {
            secret,
            no_access_redirect: None,
            page_size: 50,
        }
    }

    /// Answers requests without access with `303 See Other` to `url` (a login page, say)
    /// instead of `403 Forbidden`.
    ///
    /// ```
    /// # use sea_orm_audit::admin::AdminOptions;
    /// let options = AdminOptions::new([1u8; 32]).redirect_no_access("/login?next=/audit");
    /// # let _ = options;
    /// ```
    pub fn redirect_no_access(mut self, url: impl Into<String>) -> Self {
        self.no_access_redirect = Some(url.into());
        self
    }

    /// Rows per list page, 1 to 500 (default 50).
    ///
    /// ```
    /// # use sea_orm_audit::admin::AdminOptions;
    /// let options = AdminOptions::new([1u8; 32]).page_size(20);
    /// # let _ = options;
    /// ```
    pub fn page_size(mut self, rows: u64) -> Self {
        self.page_size = rows.clamp(1, 500);
        self
    }
}

impl std::fmt::Debug for AdminOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminOptions")
            .field("secret", &"<redacted>")
            .field("no_access_redirect", &self.no_access_redirect)
            .field("page_size", &self.page_size)
            .finish()
    }
}

pub(crate) struct AdminState {
    db: DatabaseConnection,
    authorizer: Box<dyn Authorizer>,
    options: AdminOptions,
}

/// The admin viewer as a router, to `nest` under any prefix (or serve at the root).
///
/// Every request is first given to `authorizer`; [`Access::NoAccess`] gets 403 (or the
/// redirect of [`AdminOptions::redirect_no_access`]). The viewer reads `db` and writes to
/// it only to resolve a system event and to prune, each recorded in `audit_log`.
///
/// ```
/// # use sea_orm_audit::admin::{self, Access, AdminOptions};
/// # fn f(db: sea_orm::DatabaseConnection) {
/// let app: axum::Router = axum::Router::new().nest(
///     "/audit",
///     admin::router(db, |_: &axum::http::request::Parts| Access::NoAccess, AdminOptions::new([9u8; 32])),
/// );
/// # let _ = app;
/// # }
/// ```
pub fn router<A: Authorizer>(
    db: DatabaseConnection,
    authorizer: A,
    options: AdminOptions,
) -> Router {
    let state = Arc::new(AdminState {
        db,
        authorizer: Box::new(authorizer),
        options,
    });
    Router::new()
        .route("/", get(handlers::dashboard))
        .route("/admin.css", get(handlers::css))
        .route("/log", get(handlers::log_list))
        .route("/log/{id}", get(handlers::log_detail))
        .route("/history", get(handlers::history))
        .route("/logins", get(handlers::login_list))
        .route("/logins/{id}", get(handlers::login_detail))
        .route("/exports", get(handlers::export_list))
        .route("/exports/{id}", get(handlers::export_detail))
        .route("/events", get(handlers::event_list))
        .route("/events/{id}", get(handlers::event_detail))
        .route("/events/{id}/resolve", post(handlers::resolve))
        .route("/prune", get(handlers::prune_form).post(handlers::prune))
        // Its own 404 for a path under the viewer, so that it gets the headers below
        // (a nested router without one leaves such paths to the outer router's).
        .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        .with_state(state)
        // Every response, axum's own rejections, 404 and 405 included, carries the
        // security headers.
        .layer(axum::middleware::map_response(
            |resp: axum::response::Response| async move { handlers::harden(resp) },
        ))
}
