//! `data_export`: one row per export of application data (a report, a CSV download, a backup).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One data export, recorded so that the question "who took which data out, and how much" has an
/// answer. Only `download_count` and `last_downloaded_at` change after insertion.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "data_export")]
pub struct Model {
    /// Surrogate key, increasing with insertion order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Actor identifier snapshot (the application's user id, as text).
    pub actor_id: Option<String>,
    /// Actor display name snapshot, kept so attribution survives the user's deletion.
    pub actor_name: Option<String>,
    /// What was exported, in the application's words, e.g. "orders" or "user list".
    pub export_type: String,
    /// File format, e.g. "csv", "xlsx" or "json".
    pub file_format: String,
    /// Number of records in the export.
    pub record_count: i64,
    /// Size of the produced file in bytes; 64-bit because exports can exceed 2 GiB.
    pub file_size: i64,
    /// The filters the export was produced with, so the same data set can be identified later.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub filters: Option<Json>,
    /// Where the file was stored, when it was kept.
    pub file_path: Option<String>,
    /// How many times the file was downloaded; 0 when the row is created.
    pub download_count: i64,
    /// When the file was last downloaded, in UTC.
    pub last_downloaded_at: Option<DateTimeUtc>,
    /// Client IP address; only valid IPv4/IPv6 text is ever stored.
    pub ip_address: Option<String>,
    /// Client user agent, at most 512 characters.
    pub user_agent: Option<String>,
    /// Request id that joins this row to logs and to `audit_log` rows of the same request.
    pub request_id: Option<String>,
    /// When the export was made, in UTC.
    pub created_at: DateTimeUtc,
}

/// `data_export` has no relations: it never references application tables.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
