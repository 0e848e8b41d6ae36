//! Reading the trail: a filter builder over `audit_log` with keyset pagination, object
//! history and time travel ([`history`]), and summaries ([`summary`]).
//!
//! Pages are ordered by `(created_at, id)` and continue from a [`Cursor`], never
//! from an offset: a page costs the same at the end of a long trail as at its start,
//! and rows written while someone pages through are neither skipped nor repeated.

pub(crate) mod decode;
pub(crate) mod history;
pub(crate) mod summary;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Cond, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PrimaryKeyTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use crate::entity::audit_log;
use crate::error::AuditError;
use crate::events::normalize_action;
use crate::value::to_json;

/// Most rows one page returns.
pub const MAX_PAGE_SIZE: u64 = 1000;
/// Rows per page unless [`AuditQuery::limit`] says otherwise.
pub const DEFAULT_PAGE_SIZE: u64 = 50;

/// Where the next page starts: the `(created_at, id)` of the last row of the previous
/// page. Its text form (`Display`/`FromStr`) is safe to put in a URL.
///
/// ```
/// use sea_orm_audit::Cursor;
/// let c: Cursor = "1764279000.123456789_42".parse().unwrap();
/// assert_eq!(c.id(), 42);
/// assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
/// assert!("42".parse::<Cursor>().is_err());
/// assert!("1764279000.5_42".parse::<Cursor>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cursor {
    at: DateTime<Utc>,
    id: i64,
}

impl Cursor {
    /// The cursor of the row created at `at` with id `id`.
    #[cfg(feature = "admin")]
    pub(crate) fn new(at: DateTime<Utc>, id: i64) -> Self {
        Self { at, id }
    }

    /// The cursor just after (or before, newest-first) `entry`.
    pub fn after_entry(entry: &audit_log::Model) -> Self {
        Self {
            at: entry.created_at,
            id: entry.id,
        }
    }

    /// The id of the row the cursor points at.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The time of the row the cursor points at.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.at
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Seconds and nanoseconds: SQLite keeps the nanoseconds of `created_at`, and a
        // cursor that dropped them would repeat or skip rows of the same microsecond.
        write!(
            f,
            "{}.{:09}_{}",
            self.at.timestamp(),
            self.at.timestamp_subsec_nanos(),
            self.id
        )
    }
}

impl FromStr for Cursor {
    type Err = AuditError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || AuditError::InvalidInput {
            field: "cursor",
            reason: "not a cursor produced by this crate".to_owned(),
        };
        let (time, id) = s.split_once('_').ok_or_else(bad)?;
        let (secs, nanos) = time.split_once('.').ok_or_else(bad)?;
        if nanos.len() != 9 {
            return Err(bad());
        }
        let secs: i64 = secs.parse().map_err(|_| bad())?;
        let nanos: u32 = nanos.parse().map_err(|_| bad())?;
        let id: i64 = id.parse().map_err(|_| bad())?;
        let at = DateTime::from_timestamp(secs, nanos).ok_or_else(bad)?;
        Ok(Self { at, id })
    }
}

/// Row order of a query.
///
/// ```
/// use sea_orm_audit::{AuditQuery, Order};
/// assert_eq!(Order::default(), Order::NewestFirst);
/// let replay = AuditQuery::new().oldest_first();
/// # let _ = replay;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Newest first (the default: what a viewer shows).
    #[default]
    NewestFirst,
    /// Oldest first (what a replay needs).
    OldestFirst,
}

/// One page of audit rows and the cursor of the next page (`None` on the last page).
///
/// ```
/// # use sea_orm_audit::doc_fixtures::setup;
/// use sea_orm_audit::AuditQuery;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = setup().await?;
/// let page = AuditQuery::new().fetch(&db).await?;
/// assert!(page.entries.is_empty() && page.next.is_none());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Page {
    /// The rows, in the query's order.
    pub entries: Vec<audit_log::Model>,
    /// Pass to [`AuditQuery::after`] for the next page.
    pub next: Option<Cursor>,
}

/// A filter over `audit_log` with keyset pagination.
///
/// Every filter is optional and they combine with AND. Time bounds are UTC, `since`
/// inclusive and `until` exclusive, so consecutive ranges never count a row twice.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::setup;
/// use sea_orm_audit::{AuditEvent, AuditQuery, log_event};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = setup().await?;
/// for n in 0..5 {
///     log_event(&db, AuditEvent::new("PING")?.object_key("host", n.to_string())).await?;
/// }
/// let query = AuditQuery::new().action("ping").limit(2);
/// let first = query.clone().fetch(&db).await?;
/// assert_eq!(first.entries.len(), 2);
/// let second = query.after(first.next).fetch(&db).await?;
/// assert_eq!(second.entries.len(), 2);
/// assert!(second.entries[0].id < first.entries[1].id); // newest first
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use]
pub struct AuditQuery {
    table: Option<String>,
    pk: Option<String>,
    actor_id: Option<String>,
    actions: Vec<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    request_id: Option<String>,
    order: Order,
    limit: Option<u64>,
    after: Option<Cursor>,
    error: Option<String>,
}

impl AuditQuery {
    /// Every row, newest first, [`DEFAULT_PAGE_SIZE`] per page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows about objects of `table`.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }

    /// Rows about one object, by table and primary-key text.
    pub fn object(mut self, table: impl Into<String>, pk: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self.pk = Some(pk.into());
        self
    }

    /// Rows about one object of entity `E`, by its primary-key value.
    pub fn object_of<E: EntityTrait>(
        self,
        pk: <E::PrimaryKey as PrimaryKeyTrait>::ValueType,
    ) -> Self {
        let table = E::default().table_name().to_owned();
        self.object(table, pk_text::<E>(pk))
    }

    /// Rows written by actor `actor_id`.
    pub fn actor(mut self, actor_id: impl Into<String>) -> Self {
        self.actor_id = Some(actor_id.into());
        self
    }

    /// Rows with this action (normalised like [`AuditEvent::new`](crate::AuditEvent::new));
    /// call again to allow several.
    pub fn action(mut self, action: &str) -> Self {
        match normalize_action(action) {
            Ok(a) => self.actions.push(a),
            Err(e) => self.error = Some(e.to_string()),
        }
        self
    }

    /// Rows written at or after `t` (UTC).
    pub fn since(mut self, t: DateTime<Utc>) -> Self {
        self.since = Some(t);
        self
    }

    /// Rows written before `t` (UTC).
    pub fn until(mut self, t: DateTime<Utc>) -> Self {
        self.until = Some(t);
        self
    }

    /// Rows of one request.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Oldest rows first.
    pub fn oldest_first(mut self) -> Self {
        self.order = Order::OldestFirst;
        self
    }

    /// Newest rows first (the default).
    pub fn newest_first(mut self) -> Self {
        self.order = Order::NewestFirst;
        self
    }

    /// Rows per page, 1 to [`MAX_PAGE_SIZE`].
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n.clamp(1, MAX_PAGE_SIZE));
        self
    }

    /// Continues after the page that returned `cursor` (`None`: the first page).
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.after = cursor;
        self
    }

    /// The SELECT with filters, order and cursor applied, without a limit, for
    /// callers that want to add their own clauses or stream. Time bounds are bound as
    /// given; [`fetch`](Self::fetch) also clamps them to what the backend can compare.
    pub fn select(&self) -> Select<audit_log::Entity> {
        self.select_with(|t| t)
    }

    /// [`select`](Self::select) with time bounds clamped for `backend`.
    pub(crate) fn select_for(&self, backend: sea_orm::DbBackend) -> Select<audit_log::Entity> {
        self.select_with(|t| crate::backend::clamp_ts(backend, t))
    }

    fn select_with(
        &self,
        clamp: impl Fn(DateTime<Utc>) -> DateTime<Utc>,
    ) -> Select<audit_log::Entity> {
        use audit_log::Column as C;
        let mut q = audit_log::Entity::find();
        if let Some(t) = &self.table {
            q = q.filter(C::TableName.eq(t.as_str()));
        }
        if let Some(pk) = &self.pk {
            q = q.filter(C::ObjectPk.eq(pk.as_str()));
        }
        if let Some(a) = &self.actor_id {
            q = q.filter(C::ActorId.eq(a.as_str()));
        }
        if !self.actions.is_empty() {
            q = q.filter(C::Action.is_in(self.actions.iter().map(String::as_str)));
        }
        if let Some(t) = self.since {
            q = q.filter(C::CreatedAt.gte(clamp(t)));
        }
        if let Some(t) = self.until {
            q = q.filter(C::CreatedAt.lt(clamp(t)));
        }
        if let Some(r) = &self.request_id {
            q = q.filter(C::RequestId.eq(r.as_str()));
        }
        let newest = self.order == Order::NewestFirst;
        if let Some(c) = self.after {
            let (t, id) = (sea_orm::sea_query::Expr::col(C::CreatedAt), c.id);
            let at = clamp(c.at);
            let cond = if newest {
                Cond::any()
                    .add(t.clone().lt(at))
                    .add(t.eq(at).and(sea_orm::sea_query::Expr::col(C::Id).lt(id)))
            } else {
                Cond::any()
                    .add(t.clone().gt(at))
                    .add(t.eq(at).and(sea_orm::sea_query::Expr::col(C::Id).gt(id)))
            };
            q = q.filter(cond);
        }
        if newest {
            q.order_by_desc(C::CreatedAt).order_by_desc(C::Id)
        } else {
            q.order_by_asc(C::CreatedAt).order_by_asc(C::Id)
        }
    }

    /// Runs the query: one page and the cursor of the next.
    pub async fn fetch<C: ConnectionTrait>(self, db: &C) -> Result<Page, AuditError> {
        if let Some(reason) = &self.error {
            return Err(AuditError::InvalidInput {
                field: "action",
                reason: reason.clone(),
            });
        }
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        let mut entries = self
            .select_for(db.get_database_backend())
            .limit(limit + 1)
            .all(db)
            .await
            .map_err(crate::writer::classify)?;
        let more = entries.len() as u64 > limit;
        entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more {
            entries.last().map(Cursor::after_entry)
        } else {
            None
        };
        Ok(Page { entries, next })
    }
}

/// The primary-key text of a key value, as the derive writes it (see
/// [`primary_key_text`](crate::primary_key_text)).
pub(crate) fn pk_text<E: EntityTrait>(pk: <E::PrimaryKey as PrimaryKeyTrait>::ValueType) -> String {
    let mut parts: Vec<serde_json::Value> = pk
        .into_value_tuple()
        .into_iter()
        .map(|v| to_json(&v))
        .collect();
    if parts.len() == 1 {
        match parts.pop() {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        }
    } else {
        serde_json::Value::Array(parts).to_string()
    }
}

use sea_orm::sea_query::IntoValueTuple as _;
