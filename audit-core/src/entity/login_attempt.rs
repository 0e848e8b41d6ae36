//! `login_attempt`: one row per sign-in, failed sign-in, blocked attempt or sign-out.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One authentication event. Kept apart from `audit_log` because it is queried by username and IP
/// address (brute-force detection) rather than by object.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "login_attempt")]
pub struct Model {
    /// Surrogate key, increasing with insertion order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Username as typed, at most 255 characters; it may name no existing account.
    pub username: String,
    /// SUCCESS, FAILED, BLOCKED or LOGOUT.
    pub status: String,
    /// Client IP address; only valid IPv4/IPv6 text is ever stored.
    pub ip_address: Option<String>,
    /// Client user agent, at most 512 characters.
    pub user_agent: Option<String>,
    /// Why a FAILED or BLOCKED attempt was refused, e.g. "bad password" or "account locked".
    pub failure_reason: Option<String>,
    /// Country resolved from the IP address, when the application resolves it.
    pub country: Option<String>,
    /// City resolved from the IP address, when the application resolves it.
    pub city: Option<String>,
    /// Request id that joins this row to logs and to `audit_log` rows of the same request.
    pub request_id: Option<String>,
    /// When the attempt happened, in UTC.
    pub created_at: DateTimeUtc,
}

/// `login_attempt` has no relations: `username` is a snapshot, not a reference to a user table.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
