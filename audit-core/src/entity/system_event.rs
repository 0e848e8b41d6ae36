//! `system_event`: errors, warnings and other operational events worth keeping next to the trail.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One system event. Only the `resolved*` columns change after insertion, when someone marks the
/// event as dealt with.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "system_event")]
pub struct Model {
    /// Surrogate key, increasing with insertion order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// ERROR, WARNING, INFO, SECURITY, PERFORMANCE or MAINTENANCE.
    pub event_type: String,
    /// One-line summary, at most 500 characters.
    pub title: String,
    /// Longer explanation, unbounded.
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// Rust module (or other component name) where the event arose.
    pub module: Option<String>,
    /// Function where the event arose.
    pub function: Option<String>,
    /// Source file where the event arose.
    pub file: Option<String>,
    /// Line in `file`.
    pub line: Option<i32>,
    /// Application or database error code, when there is one.
    pub error_code: Option<String>,
    /// Backtrace or error chain, unbounded.
    #[sea_orm(column_type = "Text", nullable)]
    pub stack_trace: Option<String>,
    /// Identifier snapshot of the actor whose request raised the event.
    pub actor_id: Option<String>,
    /// Display name snapshot of that actor, kept so attribution survives the user's deletion.
    pub actor_name: Option<String>,
    /// Client IP address; only valid IPv4/IPv6 text is ever stored.
    pub ip_address: Option<String>,
    /// Path of the request that raised the event, at most 2048 characters.
    pub request_path: Option<String>,
    /// Request id that joins this row to logs and to `audit_log` rows of the same request.
    pub request_id: Option<String>,
    /// Whether someone has dealt with the event; `false` when the row is created.
    pub resolved: bool,
    /// When the event was marked resolved, in UTC.
    pub resolved_at: Option<DateTimeUtc>,
    /// Who marked the event resolved (a display name snapshot).
    pub resolved_by: Option<String>,
    /// What was done about the event, unbounded.
    #[sea_orm(column_type = "Text", nullable)]
    pub resolution_notes: Option<String>,
    /// When the event happened, in UTC.
    pub created_at: DateTimeUtc,
}

/// `system_event` has no relations: it never references application tables.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
