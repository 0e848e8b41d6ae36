//! `audit_log`: one row per recorded change or user action.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One audit entry. Rows are only ever appended; nothing in this crate updates them.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Surrogate key, increasing with insertion order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// CREATE, UPDATE, DELETE, VIEW, LOGIN, LOGOUT, LOGIN_FAILED, EXPORT, IMPORT, RESTORE,
    /// STATEMENT, LINK, UNLINK, RESOLVE, PRUNE or a custom word.
    pub action: String,
    /// Table of the audited entity (`None` for entries tied to no object).
    pub table_name: Option<String>,
    /// Primary key as text: the value itself for a single key, a JSON array for a composite key.
    pub object_pk: Option<String>,
    /// Short description of the object, at most 200 characters.
    pub object_repr: Option<String>,
    /// `{"field": {"old": ..., "new": ...}}`; `old` is absent on CREATE and `new` on DELETE.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub changes: Option<Json>,
    /// Actor identifier snapshot (the application's user id, as text).
    pub actor_id: Option<String>,
    /// Actor display name snapshot, kept so attribution survives the user's deletion.
    pub actor_name: Option<String>,
    /// Client IP address; only valid IPv4/IPv6 text is ever stored.
    pub ip_address: Option<String>,
    /// Client user agent, at most 512 characters.
    pub user_agent: Option<String>,
    /// SHA-256 (hex) of the session identifier; never the session secret itself.
    pub session_hash: Option<String>,
    /// Request id that joins this row to logs and to the other rows of the same request.
    pub request_id: Option<String>,
    /// Why the change was made, when the caller said.
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    /// Rust module of the audited entity, or the caller's module for manual entries.
    pub module: Option<String>,
    /// Free-form metadata from the request context or the caller.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    /// When the row was written, in UTC.
    pub created_at: DateTimeUtc,
}

/// `audit_log` has no relations: it never references application tables.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
