//! # sea-orm-audit
//!
//! An audit trail for [SeaORM](https://www.sea-ql.org/SeaORM/): every insert, update
//! and delete of an audited entity writes an `audit_log` row with typed before/after
//! values, through the same connection, so inside a transaction the change and its
//! record commit or roll back together.
//!
//! ```
//! use sea_orm::entity::prelude::*;
//! use sea_orm::ActiveValue::Set;
//! use sea_orm_audit::{Audited, RequestContext};
//!
//! mod article {
//!     use sea_orm::entity::prelude::*;
//!     use sea_orm_audit::Audited;
//!
//!     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
//!     #[sea_orm(table_name = "article")]
//!     #[audited(exclude(body_html), repr = "title")]
//!     pub struct Model {
//!         #[sea_orm(primary_key)]
//!         pub id: i64,
//!         pub title: String,
//!         pub body_html: String,
//!     }
//!
//!     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
//!     pub enum Relation {}
//!     // No `impl ActiveModelBehavior for ActiveModel {}`: the derive provides it.
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), DbErr> {
//! # let db = sea_orm_audit::doc_fixtures::connect().await?;
//! # sea_orm_audit::doc_fixtures::create_table(&db, article::Entity).await?;
//! let ctx = RequestContext::new().actor("42", "Ada").request_id("req-1");
//! let saved = ctx.scope(async {
//!     article::ActiveModel {
//!         title: Set("Hello".into()),
//!         body_html: Set("<p>hi</p>".into()),
//!         ..Default::default()
//!     }
//!     .insert(&db)
//!     .await
//! }).await?;
//!
//! let trail = sea_orm_audit::entity::audit_log::Entity::find().all(&db).await?;
//! assert_eq!(trail.len(), 1);
//! assert_eq!(trail[0].action, "CREATE");
//! assert_eq!(trail[0].actor_name.as_deref(), Some("Ada"));
//! assert_eq!(trail[0].object_repr.as_deref(), Some("Hello"));
//! assert_eq!(trail[0].changes.as_ref().unwrap()["title"]["new"], "Hello");
//! assert!(trail[0].changes.as_ref().unwrap().get("body_html").is_none());
//! # let _ = saved;
//! # Ok(()) }
//! ```
//!
//! ## Beyond the derive
//!
//! - Manual entries: [`log_event`] with an [`AuditEvent`], and [`log_view`].
//! - Sign-ins: [`record_login`], brute-force protection with [`check_login`] (or
//!   [`guarded_login`], which also bounds password checks) and a
//!   [`BruteForcePolicy`], optional [`GeoLocator`].
//! - Exports: [`log_export`] and [`record_download`].
//! - System events: [`log_system_event`], [`system_event!`], [`resolve_event`], a
//!   non-blocking [`spawn_event_writer`] with [`install_panic_hook`], and a `tracing`
//!   layer.
//! - Reading: [`AuditQuery`] (keyset pages), [`object_history`], [`state_at`],
//!   [`restore`] and [`audit_summary`].
//!
//! ## Feature flags
//! - `derive` (default): re-exports `#[derive(Audited)]` from `sea-orm-audit-derive`.
//! - `admin` (off): [`admin::router`], a read-only web console over the audit tables (axum +
//!   askama, no JavaScript), with the application's own authorizer.
//! - `middleware` (off): [`middleware`], tower layers for axum and other tower stacks:
//!   a request-context layer that attributes audited writes to the request's actor,
//!   IP, user agent, session and request id, and a security layer that records
//!   suspicious, slow and failing requests as `system_event` rows.
//! - `tracing` (off): `SystemEventLayer`, a `tracing-subscriber` layer that records events
//!   at or above a level as system events through the background writer.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![deny(unreachable_pub)]

#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
mod atomic;
mod backend;
mod config;
mod context;
mod diff;
pub mod entity;
mod error;
mod events;
mod export;
mod hooks;
mod inline;
mod login;
mod memo;
#[cfg(feature = "middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "middleware")))]
pub mod middleware;
mod model;
mod query;
mod registry;
mod sqlscan;
mod system;
mod text;
#[cfg(feature = "tracing")]
mod tracing_layer;
mod value;
mod wrapper;
mod writer;

pub mod prelude;

pub use atomic::AtomicWrite;
pub use config::{AuditConfig, DEFAULT_SECRET_NAMES};
pub use context::{
    MAX_ACTOR_ID_CHARS, MAX_ACTOR_NAME_CHARS, MAX_REQUEST_ID_CHARS, MAX_USER_AGENT_CHARS,
    RequestContext, Suppression, hash_session, in_current_scope, is_suppressed, migration_guard,
    with_actor, without_audit,
};
pub use diff::{MAX_REPR_CHARS, primary_key_text};
pub use error::{AuditError, ConfigError, ERROR_PREFIX};
pub use events::{
    ACTION_CREATE, ACTION_DELETE, ACTION_EXPORT, ACTION_IMPORT, ACTION_LOGIN, ACTION_LOGIN_FAILED,
    ACTION_LOGOUT, ACTION_RESTORE, ACTION_UPDATE, ACTION_VIEW, AuditEvent, MAX_ACTION_CHARS,
    MAX_MODULE_CHARS, MAX_PK_CHARS, MAX_REASON_CHARS, MAX_TABLE_CHARS, log_event, log_view,
    normalize_action,
};
pub use export::{
    DataExportRecord, MAX_EXPORT_TYPE_CHARS, MAX_FILE_FORMAT_CHARS, MAX_FILE_PATH_CHARS,
    log_export, record_download,
};
pub use hooks::is_transaction;
pub use login::{
    BruteForcePolicy, GeoLocation, GeoLocator, LoginAttempt, LoginCheck, LoginRecord, LoginStatus,
    MAX_FAILURE_REASON_CHARS, MAX_PLACE_CHARS, MAX_USERNAME_CHARS, check_login, check_login_at,
    guarded_login, record_login,
};
pub use model::{AuditBehavior, AuditMeta, AuditedModel};
pub use query::history::{
    ObjectStatus, RestoreKind, Restored, StateAt, object_history, restore, state_at,
};
pub use query::summary::{
    AuditSummary, DayCount, MAX_FILLED_DAYS, MAX_TOP, Ranked, SummaryFilter, audit_summary,
};
pub use query::{AuditQuery, Cursor, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Order, Page};
pub use registry::{is_registered, register};
pub use system::{
    EventSink, EventType, EventWriterHandle, MAX_ERROR_CODE_CHARS, MAX_FILE_CHARS, MAX_NAME_CHARS,
    MAX_REQUEST_PATH_CHARS, MAX_RESOLVED_BY_CHARS, MAX_TITLE_CHARS, SystemEvent, WriterStats,
    install_panic_hook, log_system_event, resolve_event, spawn_event_writer,
};
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub use tracing_layer::{DEFAULT_IGNORED_TARGETS, SystemEventLayer};
pub use value::{base64, base64_decode, to_json as value_to_json};
pub use wrapper::{AuditedConnection, AuditedTransaction, STATEMENT, WrapperOptions};
pub use writer::{AUDIT_LOG_MIGRATION, AuditEntry, write_entries};

/// Re-exported so `impl AuditBehavior` blocks need no direct dependency.
pub use async_trait::async_trait;

#[cfg(feature = "derive")]
pub use sea_orm_audit_derive::Audited;

/// Not public API: what generated code calls. May change in any release.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use sea_orm;

    /// The hook runtime the derived `ActiveModelBehavior` delegates to.
    pub mod hooks {
        pub use crate::hooks::{after_delete, after_save, before_delete, before_save};
    }
}

#[cfg(feature = "derive")]
#[doc(hidden)]
pub mod doc_fixtures;
