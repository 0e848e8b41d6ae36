//! Activity summaries in three statements: one over `audit_log`, one over
//! `login_attempt`, one over `system_event`, each GROUP BY over the rows of the range,
//! read from the `created_at` indexes (or `(actor_id, created_at)` for one actor).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, Value};
use serde::{Deserialize, Serialize};

use crate::backend;
use crate::error::AuditError;
use crate::events::{ACTION_CREATE, ACTION_DELETE, ACTION_EXPORT, ACTION_UPDATE, ACTION_VIEW};

/// Most entries in the top-tables and top-actors lists.
pub const MAX_TOP: u32 = 100;
/// Longest range (in days) for which `per_day` lists days without activity too.
pub const MAX_FILLED_DAYS: i64 = 1000;

/// Which part of the trail [`audit_summary`] counts.
///
/// Time bounds are UTC: `from` inclusive, `to` exclusive (none: up to now and beyond).
/// `actor` restricts `audit_log` and `system_event` counts to one actor id. Login
/// counts come from `login_attempt`, which records the username typed rather than an
/// actor id, so they are restricted by `username` (whole system when unset).
///
/// ```
/// use sea_orm_audit::SummaryFilter;
/// let last_week = SummaryFilter::last_days(7).actor("42").username("ada").top(5);
/// # let _ = last_week;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct SummaryFilter {
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
    actor_id: Option<String>,
    username: Option<String>,
    top: u32,
}

impl SummaryFilter {
    /// The last `days` days up to now (the original's `days=30` default is
    /// `last_days(30)`).
    pub fn last_days(days: u32) -> Self {
        Self::since(
            Utc::now()
                .checked_sub_signed(TimeDelta::days(i64::from(days)))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        )
    }

    /// From `from` (inclusive) on.
    pub fn since(from: DateTime<Utc>) -> Self {
        Self {
            from,
            to: None,
            actor_id: None,
            username: None,
            top: 10,
        }
    }

    /// From `from` (inclusive) to `to` (exclusive).
    pub fn range(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        let mut f = Self::since(from);
        f.to = Some(to);
        f
    }

    /// Only this actor's `audit_log` and `system_event` rows.
    pub fn actor(mut self, actor_id: impl Into<String>) -> Self {
        self.actor_id = Some(actor_id.into());
        self
    }

    /// Only this username's `login_attempt` rows.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Length of the top-tables and top-actors lists (1 to [`MAX_TOP`], default 10).
    pub fn top(mut self, n: u32) -> Self {
        self.top = n.clamp(1, MAX_TOP);
        self
    }
}

/// A table or actor and its row count.
///
/// ```
/// use sea_orm_audit::Ranked;
/// let r = Ranked { key: "42".into(), label: Some("Ada".into()), count: 7 };
/// assert_eq!(serde_json::to_value(&r).unwrap()["count"], 7);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranked {
    /// Table name or actor id.
    pub key: String,
    /// The actor's display name on their most recent row, for actors.
    pub label: Option<String>,
    /// Rows in the range.
    pub count: i64,
}

/// Rows written on one UTC day.
///
/// ```
/// use sea_orm_audit::DayCount;
/// let d = DayCount { day: chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(), count: 3 };
/// assert_eq!(serde_json::to_value(&d).unwrap()["day"], "2026-11-27");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    /// The UTC date.
    pub day: NaiveDate,
    /// `audit_log` rows that day.
    pub count: i64,
}

/// What [`audit_summary`] returns: the Django original's keys plus more.
///
/// `total_actions` and the action counters come from `audit_log` (`exports` is its
/// EXPORT rows); `logins`, `failed_logins`, `blocked_logins` and `logouts` from
/// `login_attempt`; `system_errors` (ERROR events) and `unresolved_events` (events of
/// any type still unresolved) from `system_event`, all within the range.
///
/// ```
/// use sea_orm_audit::AuditSummary;
/// let empty = AuditSummary::default();
/// let json = serde_json::to_string(&empty).unwrap();
/// assert_eq!(serde_json::from_str::<AuditSummary>(&json).unwrap(), empty);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditSummary {
    /// Start of the range (UTC, inclusive).
    pub from: DateTime<Utc>,
    /// End of the range (UTC, exclusive), if bounded.
    pub to: Option<DateTime<Utc>>,
    /// The actor filter, if any.
    pub actor_id: Option<String>,
    /// All `audit_log` rows.
    pub total_actions: i64,
    /// CREATE rows.
    pub creates: i64,
    /// UPDATE rows.
    pub updates: i64,
    /// DELETE rows.
    pub deletes: i64,
    /// VIEW rows.
    pub views: i64,
    /// EXPORT rows.
    pub exports: i64,
    /// SUCCESS login attempts.
    pub logins: i64,
    /// FAILED login attempts.
    pub failed_logins: i64,
    /// BLOCKED login attempts.
    pub blocked_logins: i64,
    /// LOGOUT login attempts.
    pub logouts: i64,
    /// ERROR system events.
    pub system_errors: i64,
    /// System events not yet resolved.
    pub unresolved_events: i64,
    /// Count of every action word.
    pub actions: BTreeMap<String, i64>,
    /// Count of every system event type.
    pub events_by_type: BTreeMap<String, i64>,
    /// Busiest tables, most rows first.
    pub top_tables: Vec<Ranked>,
    /// Busiest actors, most rows first.
    pub top_actors: Vec<Ranked>,
    /// `audit_log` rows per UTC day, oldest first; days without rows are listed with
    /// 0 when the range is bounded by at most [`MAX_FILLED_DAYS`] days.
    pub per_day: Vec<DayCount>,
}

struct Where {
    sql: String,
    values: Vec<Value>,
}

fn window(
    backend: sea_orm::DbBackend,
    f: &SummaryFilter,
    who: Option<(&str, &Option<String>)>,
) -> Where {
    let mut sql = String::from("created_at >= ?");
    let mut values = vec![Value::from(backend::clamp_ts(backend, f.from))];
    if let Some(to) = f.to {
        sql.push_str(" AND created_at < ?");
        values.push(Value::from(backend::clamp_ts(backend, to)));
    }
    if let Some((col, Some(v))) = who {
        sql.push_str(&format!(" AND {col} = ?"));
        values.push(Value::from(v.clone()));
    }
    Where { sql, values }
}

/// Counts activity in three statements (see [`AuditSummary`] for what each number is).
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{AuditEvent, SummaryFilter, audit_summary, log_event};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = connect_all().await?;
/// log_event(&db, AuditEvent::new("VIEW")?.object_key("invoice", "7")).await?;
/// let s = audit_summary(&db, &SummaryFilter::last_days(30)).await?;
/// assert_eq!((s.total_actions, s.views), (1, 1));
/// assert_eq!(s.top_tables[0].key, "invoice");
/// println!("{}", serde_json::to_string(&s).unwrap());
/// # Ok(()) }
/// ```
pub async fn audit_summary<C: ConnectionTrait>(
    db: &C,
    filter: &SummaryFilter,
) -> Result<AuditSummary, AuditError> {
    let backend = db.get_database_backend();
    let mut out = AuditSummary {
        from: filter.from,
        to: filter.to,
        actor_id: filter.actor_id.clone(),
        ..AuditSummary::default()
    };

    // 1. audit_log as one UNION ALL of three GROUP BYs: by action and day (one scan
    //    gives both the action counts and the per-day counts), top tables, and top
    //    actors. The actors' names are looked up only for the top N, through the
    //    (actor_id, created_at) index, so the GROUP BY itself stays index-only.
    let w = window(backend, filter, Some(("actor_id", &filter.actor_id)));
    let top = filter.top.clamp(1, MAX_TOP);
    let day = backend::utc_day(backend, "created_at");
    let c = &w.sql;
    let sql = format!(
        "SELECT grp, k, label, n FROM (SELECT 'action' AS grp, action AS k, {day} AS label, COUNT(*) AS n \
           FROM audit_log WHERE {c} GROUP BY action, {day}) s1 \
         UNION ALL SELECT grp, k, label, n FROM (SELECT 'table' AS grp, table_name AS k, NULL AS label, COUNT(*) AS n \
           FROM audit_log WHERE {c} AND table_name IS NOT NULL GROUP BY table_name ORDER BY n DESC, k LIMIT {top}) s2 \
         UNION ALL SELECT 'actor' AS grp, s3.k, (SELECT x.actor_name FROM audit_log x WHERE x.actor_id = s3.k \
           ORDER BY x.created_at DESC, x.id DESC LIMIT 1) AS label, s3.n \
           FROM (SELECT actor_id AS k, COUNT(*) AS n FROM audit_log WHERE {c} AND actor_id IS NOT NULL \
           GROUP BY actor_id ORDER BY n DESC, k LIMIT {top}) s3"
    );
    let mut values = Vec::with_capacity(w.values.len() * 3);
    for _ in 0..3 {
        values.extend(w.values.iter().cloned());
    }
    let rows = db
        .query_all_raw(backend::statement(backend, &sql, values))
        .await
        .map_err(crate::writer::classify)?;
    let mut days = BTreeMap::new();
    for row in rows {
        let grp: String = row.try_get("", "grp")?;
        let key: Option<String> = row.try_get("", "k")?;
        let label: Option<String> = row.try_get("", "label")?;
        let n: i64 = row.try_get("", "n")?;
        let key = key.unwrap_or_default();
        match grp.as_str() {
            "action" => {
                out.total_actions += n;
                *out.actions.entry(key).or_default() += n;
                let day = label.as_deref().unwrap_or_default();
                if let Ok(d) = NaiveDate::parse_from_str(day, "%Y-%m-%d") {
                    *days.entry(d).or_insert(0) += n;
                }
            }
            "table" => out.top_tables.push(Ranked {
                key,
                label: None,
                count: n,
            }),
            _ => out.top_actors.push(Ranked {
                key,
                label,
                count: n,
            }),
        }
    }
    let count = |a: &str| out.actions.get(a).copied().unwrap_or(0);
    (
        out.creates,
        out.updates,
        out.deletes,
        out.views,
        out.exports,
    ) = (
        count(ACTION_CREATE),
        count(ACTION_UPDATE),
        count(ACTION_DELETE),
        count(ACTION_VIEW),
        count(ACTION_EXPORT),
    );
    let rank = |a: &Ranked, b: &Ranked| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key));
    out.top_tables.sort_by(rank);
    out.top_actors.sort_by(rank);
    out.per_day = fill_days(filter, days);

    // 2. login_attempt by status.
    let w = window(backend, filter, Some(("username", &filter.username)));
    let sql = format!(
        "SELECT status AS k, COUNT(*) AS n FROM login_attempt WHERE {} GROUP BY status",
        w.sql
    );
    let rows = db
        .query_all_raw(backend::statement(backend, &sql, w.values))
        .await
        .map_err(|e| crate::events::classify(e, "login_attempt"))?;
    for row in rows {
        let k: String = row.try_get("", "k")?;
        let n: i64 = row.try_get("", "n")?;
        match k.as_str() {
            "SUCCESS" => out.logins += n,
            "FAILED" => out.failed_logins += n,
            "BLOCKED" => out.blocked_logins += n,
            "LOGOUT" => out.logouts += n,
            _ => {}
        }
    }

    // 3. system_event by type and resolution.
    let w = window(backend, filter, Some(("actor_id", &filter.actor_id)));
    let sql = format!(
        "SELECT event_type AS k, resolved AS r, COUNT(*) AS n FROM system_event WHERE {} GROUP BY event_type, resolved",
        w.sql
    );
    let rows = db
        .query_all_raw(backend::statement(backend, &sql, w.values))
        .await
        .map_err(|e| crate::events::classify(e, "system_event"))?;
    for row in rows {
        let k: String = row.try_get("", "k")?;
        let resolved: bool = row.try_get("", "r")?;
        let n: i64 = row.try_get("", "n")?;
        if k == "ERROR" {
            out.system_errors += n;
        }
        if !resolved {
            out.unresolved_events += n;
        }
        *out.events_by_type.entry(k).or_default() += n;
    }
    Ok(out)
}

fn fill_days(filter: &SummaryFilter, days: BTreeMap<NaiveDate, i64>) -> Vec<DayCount> {
    let first = filter.from.date_naive();
    let end = filter.to.unwrap_or_else(Utc::now);
    // `to` is exclusive: a range ending exactly at midnight does not include that day.
    let last = end
        .checked_sub_signed(TimeDelta::microseconds(1))
        .unwrap_or(end)
        .date_naive();
    let span = (last - first).num_days();
    if !(0..=MAX_FILLED_DAYS).contains(&span) {
        return days
            .into_iter()
            .map(|(day, count)| DayCount { day, count })
            .collect();
    }
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|day| DayCount {
            day,
            count: days.get(&day).copied().unwrap_or(0),
        })
        .collect()
}
