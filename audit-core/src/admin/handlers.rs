//! The page handlers: parse the query, call `queries`, fill a template.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, FromRequestParts, OriginalUri, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;

use super::AdminState;
use super::auth::{Access, AdminUser, csrf_token, csrf_valid};
use super::queries::{self, ResolveOutcome, SearchIn, TimeRange};
use super::templates::*;
use crate::Cursor;
use crate::entity::{audit_log, data_export, login_attempt, system_event};
use crate::{ObjectStatus, RequestContext};

type St = State<Arc<AdminState>>;

// === responses ===

/// Every admin response carries these. The CSP forbids every script, inline or not: the
/// pages need none, and should an escaping bug ever let markup through, it still cannot
/// run. `no-store` keeps audit data out of shared caches and the back-button cache.
pub(crate) fn harden(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => harden(
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response(),
        ),
        Err(e) => harden(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("template error: {e}"),
            )
                .into_response(),
        ),
    }
}

fn message(chrome: &Chrome, status: StatusCode, title: &str, msg: &str) -> Response {
    html(
        status,
        &MessagePage {
            chrome: chrome.clone(),
            title: title.into(),
            message: msg.into(),
            link: None,
        },
    )
}

fn db_error(chrome: &Chrome, e: impl std::fmt::Display) -> Response {
    message(
        chrome,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Database error",
        &format!("The query failed: {e}"),
    )
}

fn not_found(chrome: &Chrome) -> Response {
    message(chrome, StatusCode::NOT_FOUND, "Not found", "No such row.")
}

fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    harden(resp)
}

pub(crate) async fn css() -> Response {
    harden(
        (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            CSS,
        )
            .into_response(),
    )
}

// === who is asking ===

/// A request the authorizer let in, with what every page needs.
pub(crate) struct Viewer {
    user: AdminUser,
    superuser: bool,
    chrome: Chrome,
}

/// Where the router is mounted: the original path less the path the router saw.
fn base_path(parts: &Parts) -> String {
    let inner = parts.uri.path();
    let original = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(inner, |o| o.0.path());
    let base = original.strip_suffix(inner).unwrap_or(original);
    base.trim_end_matches('/').to_owned()
}

fn home(base: &str) -> String {
    if base.is_empty() {
        "/".into()
    } else {
        base.into()
    }
}

impl FromRequestParts<Arc<AdminState>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AdminState>,
    ) -> Result<Self, Self::Rejection> {
        let base = base_path(parts);
        let access = state.authorizer.authorize(parts).await;
        let superuser = access.is_superuser();
        let Some(user) = access.user().cloned() else {
            return Err(match &state.options.no_access_redirect {
                Some(to) => redirect(to),
                None => message(
                    &Chrome {
                        home: home(&base),
                        base,
                        ..Chrome::default()
                    },
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "You do not have access to the audit viewer.",
                ),
            });
        };
        debug_assert!(!matches!(access, Access::NoAccess));
        let chrome = Chrome {
            home: home(&base),
            base,
            user: user.name.clone(),
            superuser,
            csrf: csrf_token(&state.options.secret, &user),
            notices: Vec::new(),
        };
        Ok(Self {
            user,
            superuser,
            chrome,
        })
    }
}

impl Viewer {
    fn url(&self, path: &str, params: &[(&str, String)]) -> String {
        let kept: Vec<(&str, &str)> = params
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let query = serde_urlencoded::to_string(&kept).unwrap_or_default();
        if query.is_empty() {
            format!("{}{path}", self.chrome.base)
        } else {
            format!("{}{path}?{query}", self.chrome.base)
        }
    }

    /// The request context a write through the viewer is recorded with: the one the
    /// application's middleware put in scope (IP, request id...), with the actor the
    /// authorizer named.
    fn context(&self) -> RequestContext {
        RequestContext::current()
            .map(|c| (*c).clone())
            .unwrap_or_default()
            .actor(self.user.id.as_str(), self.user.name.as_str())
    }

    fn csrf_ok(&self, state: &AdminState, token: &str) -> bool {
        csrf_valid(&state.options.secret, &self.user, token)
    }

    fn forbidden(&self, msg: &str) -> Response {
        message(&self.chrome, StatusCode::FORBIDDEN, "Forbidden", msg)
    }
}

// === parsing ===

fn some(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The name of month `m` (1 to 12), `?` for any other number from a query string.
fn month_name(m: u32) -> &'static str {
    (m as usize)
        .checked_sub(1)
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("?")
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

fn parse_date(v: &Option<String>) -> Result<Option<NaiveDate>, String> {
    match some(v) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("Ignored date {s:?}: expected YYYY-MM-DD.")),
    }
}

/// `from` and `to` as whole UTC days, `to` inclusive.
fn date_range(from: &Option<String>, to: &Option<String>, notices: &mut Vec<String>) -> TimeRange {
    let mut range = TimeRange::default();
    match parse_date(from) {
        Ok(d) => range.from = d.map(day_start),
        Err(e) => notices.push(e),
    }
    match parse_date(to) {
        // The last representable day has no next day: no upper bound then.
        Ok(d) => range.to = d.and_then(|d| day_start(d).checked_add_signed(Duration::days(1))),
        Err(e) => notices.push(e),
    }
    range
}

fn cursor(after: &Option<String>, notices: &mut Vec<String>) -> Option<Cursor> {
    let s = some(after)?;
    let c = s.parse::<Cursor>().ok();
    if c.is_none() {
        notices.push("Ignored an invalid page position; showing the newest rows.".into());
    }
    c
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn actor_label(id: Option<&str>, name: Option<&str>) -> String {
    match (name, id) {
        (Some(n), Some(i)) if n != i => format!("{n} ({i})"),
        (Some(n), _) => n.to_owned(),
        (None, Some(i)) => i.to_owned(),
        (None, None) => String::new(),
    }
}

// === dashboard ===

pub(crate) async fn dashboard(State(state): St, v: Viewer) -> Response {
    let d = match queries::dashboard(&state.db).await {
        Ok(d) => d,
        Err(e) => return db_error(&v.chrome, e),
    };
    let section = |title,
                   key_label,
                   path: &'static str,
                   param: &'static str,
                   rows: Vec<queries::Windowed>| {
        let total = rows
            .iter()
            .fold((0, 0, 0), |t, r| (t.0 + r.day, t.1 + r.week, t.2 + r.month));
        Section {
            title,
            key_label,
            rows: rows
                .into_iter()
                .map(|r| SummaryRow {
                    href: v.url(path, &[(param, r.key.clone())]),
                    key: r.key,
                    day: r.day,
                    week: r.week,
                    month: r.month,
                })
                .collect(),
            total,
        }
    };
    let sections = vec![
        section("Audit log", "Action", "/log", "action", d.actions),
        section("Login attempts", "Status", "/logins", "status", d.logins),
        section("Data exports", "Type", "/exports", "type", d.exports),
        section(
            "System events",
            "Event type",
            "/events",
            "event_type",
            d.events,
        ),
    ];
    html(
        StatusCode::OK,
        &DashboardPage {
            chrome: v.chrome.clone(),
            title: "Dashboard".into(),
            unresolved: d.unresolved,
            sections,
        },
    )
}

// === audit log ===

const ACTIONS: &[(&str, &str)] = &[
    ("CREATE", "CREATE"),
    ("UPDATE", "UPDATE"),
    ("DELETE", "DELETE"),
    ("VIEW", "VIEW"),
    ("LOGIN", "LOGIN"),
    ("LOGOUT", "LOGOUT"),
    ("LOGIN_FAILED", "LOGIN_FAILED"),
    ("EXPORT", "EXPORT"),
    ("IMPORT", "IMPORT"),
    ("RESOLVE", "RESOLVE"),
    ("PRUNE", "PRUNE"),
];

/// The audit-log list's query string.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LogQuery {
    action: Option<String>,
    table: Option<String>,
    actor: Option<String>,
    request_id: Option<String>,
    q: Option<String>,
    #[serde(rename = "in")]
    search_in: Option<String>,
    from: Option<String>,
    to: Option<String>,
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
    after: Option<String>,
}

impl LogQuery {
    /// The filters as query parameters, without the page position and the drill-down.
    fn params(&self) -> Vec<(&'static str, String)> {
        let s = |v: &Option<String>| some(v).unwrap_or_default();
        vec![
            ("action", s(&self.action)),
            ("table", s(&self.table)),
            ("actor", s(&self.actor)),
            ("request_id", s(&self.request_id)),
            ("q", s(&self.q)),
            (
                "in",
                if some(&self.q).is_some() {
                    s(&self.search_in)
                } else {
                    String::new()
                },
            ),
            ("from", s(&self.from)),
            ("to", s(&self.to)),
        ]
    }

    fn drill_params(&self) -> Vec<(&'static str, String)> {
        let n = |v: Option<String>| v.unwrap_or_default();
        vec![
            ("year", n(self.year.map(|y| y.to_string()))),
            ("month", n(self.year.and(self.month).map(|m| m.to_string()))),
            (
                "day",
                n(self
                    .year
                    .and(self.month)
                    .and(self.day)
                    .map(|d| d.to_string())),
            ),
        ]
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The drill-down's range: a year, a month of it or a day of that; `None` when invalid.
fn drill_range(year: Option<i32>, month: Option<u32>, day: Option<u32>) -> Option<TimeRange> {
    let Some(y) = year else {
        return Some(TimeRange::default());
    };
    let (from, to) = match (month, day) {
        (None, _) => (
            NaiveDate::from_ymd_opt(y, 1, 1)?,
            NaiveDate::from_ymd_opt(y + 1, 1, 1)?,
        ),
        (Some(m), None) => {
            let from = NaiveDate::from_ymd_opt(y, m, 1)?;
            (from, from.checked_add_months(chrono::Months::new(1))?)
        }
        (Some(m), Some(d)) => {
            let from = NaiveDate::from_ymd_opt(y, m, d)?;
            (from, from.succ_opt()?)
        }
    };
    Some(TimeRange {
        from: Some(day_start(from)),
        to: Some(day_start(to)),
    })
}

fn intersect(a: TimeRange, b: TimeRange) -> TimeRange {
    TimeRange {
        from: a.from.max(b.from),
        to: match (a.to, b.to) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        },
    }
}

async fn drill_cells(state: &AdminState, v: &Viewer, q: &LogQuery) -> Vec<Cell> {
    let base = q.params();
    let link = |text: String, extra: &[(&'static str, String)]| {
        let mut p = base.clone();
        p.extend_from_slice(extra);
        Cell::link(text, v.url("/log", &p))
    };
    let current = |text: String| Cell {
        text,
        href: None,
        class: "current",
    };
    let mut cells = Vec::new();
    match (q.year, q.month, q.day) {
        (None, _, _) => {
            // Two index lookups for the span; every year between is listed, even an
            // empty one, rather than scanning for the distinct years.
            if let Ok(Some((first, last))) = queries::log_span(&state.db).await {
                cells.push(current("Years:".into()));
                for y in (first.year()..=last.year()).rev().take(30) {
                    cells.push(link(y.to_string(), &[("year", y.to_string())]));
                }
            }
        }
        (Some(y), None, _) => {
            cells.push(link("‹ All years".into(), &[]));
            cells.push(current(y.to_string()));
            for (i, m) in MONTHS.iter().enumerate() {
                cells.push(link(
                    (*m).into(),
                    &[("year", y.to_string()), ("month", (i + 1).to_string())],
                ));
            }
        }
        (Some(y), Some(m), None) => {
            cells.push(link(y.to_string(), &[("year", y.to_string())]));
            let name = month_name(m);
            cells.push(current(format!("{name} {y}")));
            let days = NaiveDate::from_ymd_opt(y, m, 1)
                .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
                .and_then(|d| d.pred_opt())
                .map_or(0, |d| d.day());
            for d in 1..=days {
                cells.push(link(
                    d.to_string(),
                    &[
                        ("year", y.to_string()),
                        ("month", m.to_string()),
                        ("day", d.to_string()),
                    ],
                ));
            }
        }
        (Some(y), Some(m), Some(d)) => {
            let name = month_name(m);
            cells.push(link(
                format!("‹ {name} {y}"),
                &[("year", y.to_string()), ("month", m.to_string())],
            ));
            cells.push(current(format!("{d} {name} {y}")));
        }
    }
    cells
}

fn changes_summary(changes: Option<&serde_json::Value>) -> String {
    match changes.and_then(|c| c.as_object()).map(|o| o.len()) {
        None | Some(0) => "No changes".into(),
        Some(1) => "1 field changed".into(),
        Some(n) => format!("{n} fields changed"),
    }
}

pub(crate) async fn log_list(
    State(state): St,
    mut v: Viewer,
    Query(q): Query<LogQuery>,
) -> Response {
    let mut notices = Vec::new();
    let range = date_range(&q.from, &q.to, &mut notices);
    let drill = drill_range(q.year, q.month, q.day).unwrap_or_else(|| {
        notices.push("Ignored an invalid date in the drill-down.".into());
        TimeRange::default()
    });
    let search_in = match q.search_in.as_deref() {
        Some("actor") => SearchIn::Actor,
        Some("repr") => SearchIn::Repr,
        _ => SearchIn::Pk,
    };
    let filter = queries::LogFilter {
        action: some(&q.action),
        table: some(&q.table),
        actor: some(&q.actor),
        request_id: some(&q.request_id),
        search: some(&q.q).map(|s| (search_in, s)),
        range: intersect(range, drill),
    };
    let after = cursor(&q.after, &mut notices);
    let page = match queries::log_page(&state.db, &filter, after, state.options.page_size).await {
        Ok(p) => p,
        Err(e) => return db_error(&v.chrome, e),
    };
    v.chrome.notices = notices;
    let rows = page
        .rows
        .iter()
        .map(|r| {
            let object = r.object_repr.as_deref().or(r.object_pk.as_deref());
            let object = match (&r.table_name, &r.object_pk) {
                (Some(t), Some(pk)) => Cell::link(
                    Cell::text(object).text,
                    v.url("/history", &[("table", t.clone()), ("pk", pk.clone())]),
                ),
                _ => Cell::text(object),
            };
            vec![
                Cell::link(when(r.created_at), v.url(&format!("/log/{}", r.id), &[])),
                Cell::text(Some(&r.action)).class("action"),
                Cell::text(r.table_name.as_deref()),
                object,
                Cell::text(Some(&actor_label(
                    r.actor_id.as_deref(),
                    r.actor_name.as_deref(),
                ))),
                Cell::text(r.ip_address.as_deref()),
                Cell::text(Some(&changes_summary(r.changes.as_ref()))),
                match &r.request_id {
                    Some(id) => Cell::link(
                        Cell::text(Some(id)).text,
                        v.url("/log", &[("request_id", id.clone())]),
                    ),
                    None => Cell::default(),
                },
            ]
        })
        .collect();
    let mut current = q.params();
    current.extend(q.drill_params());
    let search_choices = [
        ("pk", "object primary key"),
        ("actor", "actor"),
        ("repr", "object repr (prefix)"),
    ];
    let mut in_field = Field::select("in", "Search in", &q.search_in, &search_choices);
    if let FieldKind::Select(opts) = &mut in_field.kind {
        // "primary key" is the default: drop the "any" option.
        opts.remove(0);
        if !opts.iter().any(|o| o.selected) {
            opts[0].selected = true;
        }
    }
    let mut list = list_page(
        &v,
        "Audit log",
        "/log",
        vec![
            Field::text("q", "Search", &q.q),
            in_field,
            Field::select("action", "Action", &q.action, ACTIONS),
            Field::text("table", "Table", &q.table),
            Field::text("actor", "Actor id", &q.actor),
            Field::text("request_id", "Request id", &q.request_id),
            Field::date("from", "From", &q.from),
            Field::date("to", "To", &q.to),
        ],
        vec![
            "Time", "Action", "Table", "Object", "Actor", "IP", "Changes", "Request",
        ],
        rows,
        current,
        after,
        page.next,
    );
    list.drill = drill_cells(&state, &v, &q).await;
    html(StatusCode::OK, &list)
}

pub(crate) async fn log_detail(State(state): St, v: Viewer, Path(id): Path<i64>) -> Response {
    let r = match queries::log_entry(&state.db, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(&v.chrome),
        Err(e) => return db_error(&v.chrome, e),
    };
    let mut links = vec![("« Audit log".to_owned(), v.url("/log", &[]))];
    if let (Some(t), Some(pk)) = (&r.table_name, &r.object_pk) {
        links.push((
            "History of this object".into(),
            v.url("/history", &[("table", t.clone()), ("pk", pk.clone())]),
        ));
    }
    if let Some(rid) = &r.request_id {
        links.push((
            "Every row of this request".into(),
            v.url("/log", &[("request_id", rid.clone())]),
        ));
    }
    let fields = log_fields(&v, &r);
    html(
        StatusCode::OK,
        &DetailPage {
            chrome: v.chrome.clone(),
            title: format!("Audit entry #{}", r.id),
            links,
            fields,
            changes: Some(change_rows(r.changes.as_ref())),
            resolve: None,
        },
    )
}

fn log_fields(v: &Viewer, r: &audit_log::Model) -> Vec<(&'static str, Val)> {
    vec![
        ("ID", Val::Text(r.id.to_string())),
        ("Time", Val::Text(when(r.created_at))),
        ("Action", Val::text(&r.action)),
        ("Table", Val::opt(r.table_name.as_deref())),
        ("Object primary key", Val::opt(r.object_pk.as_deref())),
        ("Object repr", Val::opt(r.object_repr.as_deref())),
        ("Actor id", Val::opt(r.actor_id.as_deref())),
        ("Actor name", Val::opt(r.actor_name.as_deref())),
        ("IP address", Val::opt(r.ip_address.as_deref())),
        ("User agent", Val::opt(r.user_agent.as_deref())),
        ("Session hash", Val::opt(r.session_hash.as_deref())),
        (
            "Request id",
            match &r.request_id {
                Some(id) => Val::Link(id.clone(), v.url("/log", &[("request_id", id.clone())])),
                None => Val::Null,
            },
        ),
        ("Reason", Val::opt(r.reason.as_deref())),
        ("Module", Val::opt(r.module.as_deref())),
        ("Metadata", Val::json(r.metadata.as_ref())),
    ]
}

// === object history ===

/// The history page's query string.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct HistoryQuery {
    table: Option<String>,
    pk: Option<String>,
    at: Option<String>,
}

fn parse_at(s: &str) -> Option<DateTime<Utc>> {
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(23, 59, 59))
    })
    .map(|t| Utc.from_utc_datetime(&t))
}

pub(crate) async fn history(
    State(state): St,
    mut v: Viewer,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let (Some(table), Some(pk)) = (some(&q.table), some(&q.pk)) else {
        return message(
            &v.chrome,
            StatusCode::BAD_REQUEST,
            "Object history",
            "Choose an object: a table and a primary key.",
        );
    };
    let now = Utc::now();
    let at = match some(&q.at) {
        None => now,
        Some(s) => parse_at(&s).unwrap_or_else(|| {
            v.chrome
                .notices
                .push(format!("Ignored time {s:?}: expected YYYY-MM-DDTHH:MM:SS."));
            now
        }),
    };
    let rows = match queries::history(&state.db, &table, &pk).await {
        Ok(r) => r,
        Err(e) => return db_error(&v.chrome, e),
    };
    let state = queries::state_at(&rows, at);
    let mut fields: Vec<(String, Val)> = state
        .fields
        .iter()
        .map(|(k, val)| (k.clone(), Val::json(Some(val))))
        .chain(state.masked.iter().map(|k| (k.clone(), Val::Masked)))
        .collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let truncated = rows.len() as u64 >= queries::HISTORY_LIMIT;
    let timeline = rows
        .iter()
        .map(|r| TimelineEntry {
            when: when(r.created_at),
            href: v.url(&format!("/log/{}", r.id), &[]),
            action: r.action.clone(),
            actor: {
                let a = actor_label(r.actor_id.as_deref(), r.actor_name.as_deref());
                if a.is_empty() { "nobody".into() } else { a }
            },
            summary: changes_summary(r.changes.as_ref()),
        })
        .collect();
    let repr = rows
        .iter()
        .rev()
        .find_map(|r| r.object_repr.clone())
        .unwrap_or_else(|| pk.clone());
    html(
        StatusCode::OK,
        &HistoryPage {
            chrome: v.chrome.clone(),
            title: format!("History of {table} {repr}"),
            action: v.url("/history", &[]),
            at: at.format("%Y-%m-%dT%H:%M:%S").to_string(),
            at_label: when(at),
            table,
            pk,
            recorded: state.status != ObjectStatus::NotRecorded,
            deleted: state.status == ObjectStatus::Deleted,
            fields,
            timeline,
            truncated,
        },
    )
}

// === login attempts ===

/// The login-attempt list's query string.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoginQuery {
    status: Option<String>,
    username: Option<String>,
    ip: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

pub(crate) async fn login_list(
    State(state): St,
    mut v: Viewer,
    Query(q): Query<LoginQuery>,
) -> Response {
    let mut notices = Vec::new();
    let filter = queries::LoginFilter {
        status: some(&q.status),
        username: some(&q.username),
        ip: some(&q.ip),
        range: date_range(&q.from, &q.to, &mut notices),
    };
    let after = cursor(&q.after, &mut notices);
    let page = match queries::login_page(&state.db, &filter, after, state.options.page_size).await {
        Ok(p) => p,
        Err(e) => return db_error(&v.chrome, e),
    };
    v.chrome.notices = notices;
    let rows = page
        .rows
        .iter()
        .map(|r| {
            let class = if r.status == "SUCCESS" || r.status == "LOGOUT" {
                "ok"
            } else {
                "bad"
            };
            vec![
                Cell::link(when(r.created_at), v.url(&format!("/logins/{}", r.id), &[])),
                Cell::text(Some(&r.username)),
                Cell::text(Some(&r.status)).class(class),
                Cell::text(r.ip_address.as_deref()),
                Cell::text(r.country.as_deref()),
                Cell::text(r.city.as_deref()),
                Cell::text(r.failure_reason.as_deref()),
            ]
        })
        .collect();
    let s = |o: &Option<String>| some(o).unwrap_or_default();
    let current = vec![
        ("status", s(&q.status)),
        ("username", s(&q.username)),
        ("ip", s(&q.ip)),
        ("from", s(&q.from)),
        ("to", s(&q.to)),
    ];
    html(
        StatusCode::OK,
        &list_page(
            &v,
            "Login attempts",
            "/logins",
            vec![
                Field::select(
                    "status",
                    "Status",
                    &q.status,
                    &[
                        ("SUCCESS", "SUCCESS"),
                        ("FAILED", "FAILED"),
                        ("BLOCKED", "BLOCKED"),
                        ("LOGOUT", "LOGOUT"),
                    ],
                ),
                Field::text("username", "Username", &q.username),
                Field::text("ip", "IP address", &q.ip),
                Field::date("from", "From", &q.from),
                Field::date("to", "To", &q.to),
            ],
            vec![
                "Time",
                "Username",
                "Status",
                "IP",
                "Country",
                "City",
                "Failure reason",
            ],
            rows,
            current,
            after,
            page.next,
        ),
    )
}

/// The detail pages' link to the audit rows written in the same request.
fn request_link(v: &Viewer, request_id: &Option<String>) -> Option<(String, String)> {
    request_id.as_ref().map(|rid| {
        (
            "Audit rows of this request".to_owned(),
            v.url("/log", &[("request_id", rid.clone())]),
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn list_page(
    v: &Viewer,
    title: &str,
    path: &str,
    filters: Vec<Field>,
    headers: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
    current: Vec<(&'static str, String)>,
    after: Option<Cursor>,
    next: Option<Cursor>,
) -> ListPage {
    let next = next.map(|c| {
        let mut p = current.clone();
        p.push(("after", c.to_string()));
        v.url(path, &p)
    });
    ListPage {
        chrome: v.chrome.clone(),
        title: title.into(),
        action: v.url(path, &[]),
        filters,
        drill: Vec::new(),
        headers,
        rows,
        first: after.map(|_| v.url(path, &current)),
        next,
    }
}

pub(crate) async fn login_detail(State(state): St, v: Viewer, Path(id): Path<i64>) -> Response {
    let r: login_attempt::Model = match queries::login(&state.db, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(&v.chrome),
        Err(e) => return db_error(&v.chrome, e),
    };
    let mut links = vec![("« Login attempts".to_owned(), v.url("/logins", &[]))];
    links.push((
        "Attempts for this username".into(),
        v.url("/logins", &[("username", r.username.clone())]),
    ));
    links.extend(request_link(&v, &r.request_id));
    let fields = vec![
        ("ID", Val::Text(r.id.to_string())),
        ("Time", Val::Text(when(r.created_at))),
        ("Username", Val::text(&r.username)),
        ("Status", Val::text(&r.status)),
        ("Failure reason", Val::opt(r.failure_reason.as_deref())),
        ("IP address", Val::opt(r.ip_address.as_deref())),
        ("User agent", Val::opt(r.user_agent.as_deref())),
        ("Country", Val::opt(r.country.as_deref())),
        ("City", Val::opt(r.city.as_deref())),
        ("Request id", Val::opt(r.request_id.as_deref())),
    ];
    html(
        StatusCode::OK,
        &DetailPage {
            chrome: v.chrome.clone(),
            title: format!("Login attempt #{}", r.id),
            links,
            fields,
            changes: None,
            resolve: None,
        },
    )
}

// === data exports ===

/// The data-export list's query string.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ExportQuery {
    #[serde(rename = "type")]
    export_type: Option<String>,
    format: Option<String>,
    actor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

pub(crate) async fn export_list(
    State(state): St,
    mut v: Viewer,
    Query(q): Query<ExportQuery>,
) -> Response {
    let mut notices = Vec::new();
    let filter = queries::ExportFilter {
        export_type: some(&q.export_type),
        format: some(&q.format),
        actor: some(&q.actor),
        range: date_range(&q.from, &q.to, &mut notices),
    };
    let after = cursor(&q.after, &mut notices);
    let page = match queries::export_page(&state.db, &filter, after, state.options.page_size).await
    {
        Ok(p) => p,
        Err(e) => return db_error(&v.chrome, e),
    };
    v.chrome.notices = notices;
    let rows = page
        .rows
        .iter()
        .map(|r| {
            vec![
                Cell::link(
                    when(r.created_at),
                    v.url(&format!("/exports/{}", r.id), &[]),
                ),
                Cell::text(Some(&actor_label(
                    r.actor_id.as_deref(),
                    r.actor_name.as_deref(),
                ))),
                Cell::text(Some(&r.export_type)),
                Cell::text(Some(&r.file_format)),
                Cell::text(Some(&r.record_count.to_string())).class("num"),
                Cell::text(Some(&human_size(r.file_size))).class("num"),
                Cell::text(Some(&r.download_count.to_string())).class("num"),
            ]
        })
        .collect();
    let s = |o: &Option<String>| some(o).unwrap_or_default();
    let current = vec![
        ("type", s(&q.export_type)),
        ("format", s(&q.format)),
        ("actor", s(&q.actor)),
        ("from", s(&q.from)),
        ("to", s(&q.to)),
    ];
    html(
        StatusCode::OK,
        &list_page(
            &v,
            "Data exports",
            "/exports",
            vec![
                Field::text("type", "Export type", &q.export_type),
                Field::text("format", "Format", &q.format),
                Field::text("actor", "Actor id", &q.actor),
                Field::date("from", "From", &q.from),
                Field::date("to", "To", &q.to),
            ],
            vec![
                "Time",
                "Actor",
                "Type",
                "Format",
                "Records",
                "Size",
                "Downloads",
            ],
            rows,
            current,
            after,
            page.next,
        ),
    )
}

pub(crate) async fn export_detail(State(state): St, v: Viewer, Path(id): Path<i64>) -> Response {
    let r: data_export::Model = match queries::export(&state.db, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(&v.chrome),
        Err(e) => return db_error(&v.chrome, e),
    };
    let mut links = vec![("« Data exports".to_owned(), v.url("/exports", &[]))];
    links.extend(request_link(&v, &r.request_id));
    let fields = vec![
        ("ID", Val::Text(r.id.to_string())),
        ("Time", Val::Text(when(r.created_at))),
        ("Actor id", Val::opt(r.actor_id.as_deref())),
        ("Actor name", Val::opt(r.actor_name.as_deref())),
        ("Export type", Val::text(&r.export_type)),
        ("Format", Val::text(&r.file_format)),
        ("Records", Val::Text(r.record_count.to_string())),
        (
            "File size",
            Val::Text(format!(
                "{} ({} bytes)",
                human_size(r.file_size),
                r.file_size
            )),
        ),
        ("Filters", Val::json(r.filters.as_ref())),
        ("File path", Val::opt(r.file_path.as_deref())),
        ("Downloads", Val::Text(r.download_count.to_string())),
        (
            "Last downloaded",
            r.last_downloaded_at
                .map_or(Val::Null, |t| Val::Text(when(t))),
        ),
        ("IP address", Val::opt(r.ip_address.as_deref())),
        ("User agent", Val::opt(r.user_agent.as_deref())),
        ("Request id", Val::opt(r.request_id.as_deref())),
    ];
    html(
        StatusCode::OK,
        &DetailPage {
            chrome: v.chrome.clone(),
            title: format!("Data export #{}", r.id),
            links,
            fields,
            changes: None,
            resolve: None,
        },
    )
}

// === system events ===

/// The system-event list's query string.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EventQuery {
    event_type: Option<String>,
    resolved: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

pub(crate) async fn event_list(
    State(state): St,
    mut v: Viewer,
    Query(q): Query<EventQuery>,
) -> Response {
    let mut notices = Vec::new();
    let filter = queries::EventFilter {
        event_type: some(&q.event_type),
        resolved: match some(&q.resolved).as_deref() {
            Some("yes") => Some(true),
            Some("no") => Some(false),
            _ => None,
        },
        range: date_range(&q.from, &q.to, &mut notices),
    };
    let after = cursor(&q.after, &mut notices);
    let page = match queries::event_page(&state.db, &filter, after, state.options.page_size).await {
        Ok(p) => p,
        Err(e) => return db_error(&v.chrome, e),
    };
    v.chrome.notices = notices;
    let rows = page
        .rows
        .iter()
        .map(|r| {
            vec![
                Cell::link(when(r.created_at), v.url(&format!("/events/{}", r.id), &[])),
                Cell::text(Some(&r.event_type)),
                Cell::text(Some(&r.title)),
                Cell::text(r.module.as_deref()),
                Cell::text(Some(&actor_label(
                    r.actor_id.as_deref(),
                    r.actor_name.as_deref(),
                ))),
                if r.resolved {
                    Cell::text(Some("✓ Resolved")).class("ok")
                } else {
                    Cell::text(Some("✗ Unresolved")).class("bad")
                },
            ]
        })
        .collect();
    let s = |o: &Option<String>| some(o).unwrap_or_default();
    let current = vec![
        ("event_type", s(&q.event_type)),
        ("resolved", s(&q.resolved)),
        ("from", s(&q.from)),
        ("to", s(&q.to)),
    ];
    html(
        StatusCode::OK,
        &list_page(
            &v,
            "System events",
            "/events",
            vec![
                Field::select(
                    "event_type",
                    "Event type",
                    &q.event_type,
                    &[
                        ("ERROR", "ERROR"),
                        ("WARNING", "WARNING"),
                        ("INFO", "INFO"),
                        ("SECURITY", "SECURITY"),
                        ("PERFORMANCE", "PERFORMANCE"),
                        ("MAINTENANCE", "MAINTENANCE"),
                    ],
                ),
                Field::select(
                    "resolved",
                    "Resolved",
                    &q.resolved,
                    &[("no", "unresolved"), ("yes", "resolved")],
                ),
                Field::date("from", "From", &q.from),
                Field::date("to", "To", &q.to),
            ],
            vec!["Time", "Type", "Title", "Module", "Actor", "Status"],
            rows,
            current,
            after,
            page.next,
        ),
    )
}

pub(crate) async fn event_detail(State(state): St, v: Viewer, Path(id): Path<i64>) -> Response {
    let r: system_event::Model = match queries::event(&state.db, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(&v.chrome),
        Err(e) => return db_error(&v.chrome, e),
    };
    let mut links = vec![("« System events".to_owned(), v.url("/events", &[]))];
    links.push((
        "Audit trail of this event".into(),
        v.url(
            "/history",
            &[("table", "system_event".into()), ("pk", r.id.to_string())],
        ),
    ));
    links.extend(request_link(&v, &r.request_id));
    let location = match (&r.file, r.line) {
        (Some(f), Some(l)) => Some(format!("{f}:{l}")),
        (Some(f), None) => Some(f.clone()),
        _ => None,
    };
    let fields = vec![
        ("ID", Val::Text(r.id.to_string())),
        ("Time", Val::Text(when(r.created_at))),
        ("Event type", Val::text(&r.event_type)),
        ("Title", Val::text(&r.title)),
        ("Description", Val::opt(r.description.as_deref())),
        ("Module", Val::opt(r.module.as_deref())),
        ("Function", Val::opt(r.function.as_deref())),
        ("Location", Val::opt(location.as_deref())),
        ("Error code", Val::opt(r.error_code.as_deref())),
        ("Stack trace", Val::pre(r.stack_trace.as_deref())),
        ("Actor id", Val::opt(r.actor_id.as_deref())),
        ("Actor name", Val::opt(r.actor_name.as_deref())),
        ("IP address", Val::opt(r.ip_address.as_deref())),
        ("Request path", Val::opt(r.request_path.as_deref())),
        ("Request id", Val::opt(r.request_id.as_deref())),
        (
            "Resolved",
            Val::Text(
                if r.resolved {
                    "✓ Resolved"
                } else {
                    "✗ Unresolved"
                }
                .into(),
            ),
        ),
        (
            "Resolved at",
            r.resolved_at.map_or(Val::Null, |t| Val::Text(when(t))),
        ),
        ("Resolved by", Val::opt(r.resolved_by.as_deref())),
        ("Resolution notes", Val::opt(r.resolution_notes.as_deref())),
    ];
    html(
        StatusCode::OK,
        &DetailPage {
            chrome: v.chrome.clone(),
            title: format!("System event #{}", r.id),
            links,
            fields,
            changes: None,
            resolve: (!r.resolved).then(|| ResolveForm {
                action: v.url(&format!("/events/{}/resolve", r.id), &[]),
            }),
        },
    )
}

/// The resolve form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ResolveBody {
    csrf: String,
    notes: String,
}

/// Longest resolution note accepted, in characters.
const MAX_NOTES_CHARS: usize = 10_000;

pub(crate) async fn resolve(
    State(state): St,
    v: Viewer,
    Path(id): Path<i64>,
    Form(body): Form<ResolveBody>,
) -> Response {
    if !v.csrf_ok(&state, &body.csrf) {
        return v.forbidden(
            "The form's CSRF token is missing or invalid. Reload the page and try again.",
        );
    }
    let notes = body.notes.trim();
    if notes.is_empty() || notes.chars().count() > MAX_NOTES_CHARS {
        return message(
            &v.chrome,
            StatusCode::BAD_REQUEST,
            "Resolve event",
            &format!("Resolution notes are required (at most {MAX_NOTES_CHARS} characters)."),
        );
    }
    match queries::resolve_event(&state.db, id, notes, &v.context()).await {
        Ok(ResolveOutcome::Done) => redirect(&v.url(&format!("/events/{id}"), &[])),
        Ok(ResolveOutcome::AlreadyResolved) => message(
            &v.chrome,
            StatusCode::CONFLICT,
            "Resolve event",
            "This event was already resolved; nothing was changed.",
        ),
        Ok(ResolveOutcome::NotFound) => not_found(&v.chrome),
        Err(e) => db_error(&v.chrome, e),
    }
}

// === prune ===

/// The prune page's query string and form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PruneBody {
    csrf: String,
    before: Option<String>,
}

const SUPERUSER_ONLY: &str = "Only a superuser may prune audit data.";

pub(crate) async fn prune_form(
    State(state): St,
    mut v: Viewer,
    Query(q): Query<PruneBody>,
) -> Response {
    if !v.superuser {
        return v.forbidden(SUPERUSER_ONLY);
    }
    let before = match parse_date(&q.before) {
        Ok(d) => d,
        Err(e) => {
            v.chrome.notices.push(e);
            None
        }
    };
    let mut page = PrunePage {
        chrome: v.chrome.clone(),
        title: "Prune old rows".into(),
        action: v.url("/prune", &[]),
        before: before.map(|d| d.to_string()).unwrap_or_default(),
        counts: None,
        total: 0,
    };
    if let Some(d) = before {
        match queries::prune_counts(&state.db, day_start(d)).await {
            Ok(c) => {
                page.total = c.total();
                page.counts = Some(vec![
                    ("audit_log", c.audit_log),
                    ("login_attempt", c.login_attempt),
                    ("data_export", c.data_export),
                    ("system_event", c.system_event),
                ]);
            }
            Err(e) => return db_error(&v.chrome, e),
        }
    }
    html(StatusCode::OK, &page)
}

pub(crate) async fn prune(State(state): St, v: Viewer, Form(body): Form<PruneBody>) -> Response {
    if !v.superuser {
        return v.forbidden(SUPERUSER_ONLY);
    }
    if !v.csrf_ok(&state, &body.csrf) {
        return v.forbidden(
            "The form's CSRF token is missing or invalid. Reload the page and try again.",
        );
    }
    let Ok(Some(before)) = parse_date(&body.before) else {
        return message(
            &v.chrome,
            StatusCode::BAD_REQUEST,
            "Prune",
            "A date (YYYY-MM-DD) is required.",
        );
    };
    match queries::prune(&state.db, day_start(before), &v.context()).await {
        Ok(c) => html(
            StatusCode::OK,
            &MessagePage {
                chrome: v.chrome.clone(),
                title: "Pruned".into(),
                message: format!(
                    "Deleted {} rows older than {before}: {} audit log, {} login attempts, {} data exports, {} system events. The prune itself is recorded in the audit log.",
                    c.total(),
                    c.audit_log,
                    c.login_attempt,
                    c.data_export,
                    c.system_event
                ),
                link: Some((
                    "See the PRUNE entry".into(),
                    v.url("/log", &[("action", "PRUNE".into())]),
                )),
            },
        ),
        Err(e) => db_error(&v.chrome, e),
    }
}
