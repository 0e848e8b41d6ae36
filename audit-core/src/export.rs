//! Data exports: who took which data out, how much, and how often it was downloaded.

use chrono::Utc;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Value as Json, json};

use crate::context::RequestContext;
use crate::entity::data_export;
use crate::error::AuditError;
use crate::events::{self, ACTION_EXPORT, AuditEvent};
use crate::text;

/// Longest export type kept, in characters.
pub const MAX_EXPORT_TYPE_CHARS: usize = 255;
/// Longest file format kept, in characters.
pub const MAX_FILE_FORMAT_CHARS: usize = 32;
/// Longest file path kept, in characters. A longer path is refused rather than cut,
/// because a cut path names another file.
pub const MAX_FILE_PATH_CHARS: usize = 1024;

/// One export to record with [`log_export`].
///
/// The actor, IP, user agent and request id come from the request context (or
/// [`context`](Self::context)); an export with no actor (a scheduled job, an anonymous
/// download link) is recorded with a null actor.
///
/// ```
/// use sea_orm_audit::DataExportRecord;
/// use serde_json::json;
/// let rec = DataExportRecord::new("orders", "csv")
///     .record_count(1200)
///     .file_size(5_000_000_000)
///     .filters(json!({"status": "paid"}))
///     .file_path("/exports/orders-2026-11.csv");
/// # let _ = rec;
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct DataExportRecord {
    export_type: String,
    file_format: String,
    record_count: i64,
    file_size: i64,
    filters: Option<Json>,
    file_path: Option<String>,
    context: Option<RequestContext>,
}

impl DataExportRecord {
    /// An export of `export_type` ("orders", "user list") in `file_format` ("csv").
    pub fn new(export_type: &str, file_format: &str) -> Self {
        Self {
            export_type: text::bounded(
                &text::strip_control(export_type.trim()),
                MAX_EXPORT_TYPE_CHARS,
            ),
            file_format: text::bounded(
                &text::strip_control(file_format.trim()),
                MAX_FILE_FORMAT_CHARS,
            ),
            record_count: 0,
            file_size: 0,
            filters: None,
            file_path: None,
            context: None,
        }
    }

    /// Number of records exported (must not be negative).
    pub fn record_count(mut self, n: i64) -> Self {
        self.record_count = n;
        self
    }

    /// File size in bytes, 64-bit (must not be negative).
    pub fn file_size(mut self, bytes: i64) -> Self {
        self.file_size = bytes;
        self
    }

    /// The filters the export was produced with.
    pub fn filters(mut self, filters: Json) -> Self {
        self.filters = Some(filters);
        self
    }

    /// Where the file was stored.
    pub fn file_path(mut self, path: &str) -> Self {
        self.file_path = Some(path.to_owned());
        self
    }

    /// Uses this context instead of [`RequestContext::current`].
    pub fn context(mut self, ctx: RequestContext) -> Self {
        self.context = Some(ctx);
        self
    }
}

/// Records an export: a `data_export` row and an EXPORT `audit_log` row (unless EXPORT
/// is a skipped action), and returns the export's id.
///
/// Pass a transaction to make the two rows atomic.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{DataExportRecord, log_export, record_download};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = connect_all().await?;
/// let id = log_export(&db, DataExportRecord::new("orders", "csv").record_count(10).file_size(2048)).await?;
/// let row = record_download(&db, id).await?;
/// assert_eq!(row.download_count, 1);
/// # Ok(()) }
/// ```
pub async fn log_export<C: ConnectionTrait>(
    db: &C,
    record: DataExportRecord,
) -> Result<i64, AuditError> {
    let invalid = |field, reason: &str| AuditError::InvalidInput {
        field,
        reason: reason.to_owned(),
    };
    if record.export_type.is_empty() {
        return Err(invalid("export_type", "must not be empty"));
    }
    if record.file_format.is_empty() {
        return Err(invalid("file_format", "must not be empty"));
    }
    if record.record_count < 0 {
        return Err(invalid("record_count", "must not be negative"));
    }
    if record.file_size < 0 {
        return Err(invalid("file_size", "must not be negative"));
    }
    if let Some(p) = &record.file_path
        && (p.chars().count() > MAX_FILE_PATH_CHARS || p.chars().any(char::is_control))
    {
        return Err(invalid(
            "file_path",
            "longer than 1024 characters or contains control characters",
        ));
    }
    let ctx = events::resolve_context(record.context);
    let c = ctx.as_deref();
    let row = data_export::ActiveModel {
        id: NotSet,
        actor_id: Set(c.and_then(|c| c.actor_id().map(str::to_owned))),
        actor_name: Set(c.and_then(|c| c.actor_name().map(str::to_owned))),
        export_type: Set(record.export_type.clone()),
        file_format: Set(record.file_format.clone()),
        record_count: Set(record.record_count),
        file_size: Set(record.file_size),
        filters: Set(record.filters.clone()),
        file_path: Set(record.file_path.clone()),
        download_count: Set(0),
        last_downloaded_at: Set(None),
        ip_address: Set(c.and_then(|c| c.ip_address().map(|ip| ip.to_string()))),
        user_agent: Set(c.and_then(|c| c.user_agent_str().map(str::to_owned))),
        request_id: Set(c.and_then(|c| c.request_id_str().map(str::to_owned))),
        created_at: Set(Utc::now()),
    };
    let id = data_export::Entity::insert(row)
        .exec(db)
        .await
        .map_err(|e| events::classify(e, "data_export"))?
        .last_insert_id;
    if !events::is_skipped(ACTION_EXPORT) {
        let event = AuditEvent::new(ACTION_EXPORT)?
            .object_key("data_export", id.to_string())
            .repr(&format!("{} ({})", record.export_type, record.file_format))
            .changes(json!({
                "export_type": record.export_type,
                "file_format": record.file_format,
                "record_count": record.record_count,
                "file_size": record.file_size,
                "filters": record.filters,
                "file_path": record.file_path,
            }))
            .module(module_path!());
        events::insert_entry(db, event, c).await?;
    }
    Ok(id)
}

/// Records one download of export `export_id`: `download_count = download_count + 1`
/// in a single UPDATE (so concurrent downloads never lose a count) and
/// `last_downloaded_at = now`. Returns the row as it is afterwards.
///
/// An unknown id is [`AuditError::NotFound`].
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{AuditError, record_download};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = connect_all().await?;
/// assert!(matches!(record_download(&db, 404).await, Err(AuditError::NotFound { .. })));
/// # Ok(()) }
/// ```
pub async fn record_download<C: ConnectionTrait>(
    db: &C,
    export_id: i64,
) -> Result<data_export::Model, AuditError> {
    let res = data_export::Entity::update_many()
        .col_expr(
            data_export::Column::DownloadCount,
            Expr::col(data_export::Column::DownloadCount).add(1),
        )
        .col_expr(data_export::Column::LastDownloadedAt, Expr::val(Utc::now()))
        .filter(data_export::Column::Id.eq(export_id))
        .exec(db)
        .await
        .map_err(|e| events::classify(e, "data_export"))?;
    let not_found = || AuditError::NotFound {
        table: "data_export",
        id: export_id,
    };
    if res.rows_affected == 0 {
        return Err(not_found());
    }
    data_export::Entity::find_by_id(export_id)
        .one(db)
        .await?
        .ok_or_else(not_found)
}
