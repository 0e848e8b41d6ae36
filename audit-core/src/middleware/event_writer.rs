//! Hands middleware findings to a background task that writes `system_event` rows.
//!
//! The request path only ever does a mutex-guarded set lookup and a `try_send`: a full
//! queue drops the event (and counts it) rather than slowing the response, and a failed
//! insert is counted, never returned to a client. Findings are rate-limited and
//! de-duplicated per (client, rule) within a window before they are queued, so a flood
//! of hostile requests writes a bounded number of rows.
//!
//! [`insert_events`] is the one place rows are written: many rows per INSERT through
//! the `system_event` entity, which the one-row `log_system_event` does not offer, bounded
//! to the same limits.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait};
use tokio::sync::{mpsc, oneshot};

use crate::entity::system_event;
use crate::system::{MAX_ERROR_CODE_CHARS, MAX_REQUEST_PATH_CHARS, MAX_TITLE_CHARS};
use crate::text;

const DESCRIPTION_CHARS: usize = 4096;
const BATCH: usize = 64;

/// What the middleware knows about the request an event is about.
#[derive(Debug, Default)]
pub(super) struct RequestMeta {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) ip: Option<IpAddr>,
    pub(super) user_agent: Option<String>,
    pub(super) request_id: Option<String>,
    pub(super) actor_id: Option<String>,
    pub(super) actor_name: Option<String>,
}

/// One finding on its way to a `system_event` row.
#[derive(Debug)]
pub(super) struct Event {
    pub(super) event_type: &'static str,
    pub(super) rule: Cow<'static, str>,
    pub(super) title: String,
    pub(super) detail: Option<String>,
    pub(super) meta: Arc<RequestMeta>,
}

enum Msg {
    Event(Event),
    Flush(oneshot::Sender<()>),
}

/// Counters of what happened to findings, shared by every clone of a layer.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) queued: AtomicU64,
    pub(super) suppressed: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) written: AtomicU64,
    pub(super) failed: AtomicU64,
}

/// Limits applied before a finding is queued.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) window: Duration,
    pub(super) max_per_window: usize,
    pub(super) queue: usize,
}

pub(super) struct EventWriter {
    db: DatabaseConnection,
    limits: Limits,
    limiter: Mutex<Limiter>,
    tx: OnceLock<mpsc::Sender<Msg>>,
    pub(super) counters: Arc<Counters>,
}

impl fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWriter")
            .field("limits", &self.limits)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl EventWriter {
    pub(super) fn new(db: DatabaseConnection, limits: Limits) -> Self {
        EventWriter {
            db,
            limits,
            limiter: Mutex::new(Limiter::new()),
            tx: OnceLock::new(),
            counters: Arc::new(Counters::default()),
        }
    }

    pub(super) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub(super) fn limits(&self) -> Limits {
        self.limits
    }

    /// Queues `event` unless it is a repeat within the window, over the window's bound,
    /// or the queue is full. Never blocks beyond a short mutex section.
    pub(super) fn record(&self, event: Event) {
        let admitted = self
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(&self.limits, event.meta.ip, &event.rule);
        if !admitted {
            self.counters.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let sent = self
            .sender()
            .is_some_and(|tx| tx.try_send(Msg::Event(event)).is_ok());
        let counter = if sent {
            &self.counters.queued
        } else {
            &self.counters.dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits until every event queued so far has been written (or has failed).
    pub(super) async fn flush(&self) {
        let Some(tx) = self.sender() else { return };
        let (done, wait) = oneshot::channel();
        if tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// The queue, with its writer task started on first use (there is a runtime then,
    /// which there may not be when the layer is built). `None` outside a runtime.
    fn sender(&self) -> Option<&mpsc::Sender<Msg>> {
        if let Some(tx) = self.tx.get() {
            return Some(tx);
        }
        let handle = tokio::runtime::Handle::try_current().ok()?;
        Some(self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(self.limits.queue.max(1));
            handle.spawn(run(self.db.clone(), rx, Arc::clone(&self.counters)));
            tx
        }))
    }
}

async fn run(db: DatabaseConnection, mut rx: mpsc::Receiver<Msg>, counters: Arc<Counters>) {
    let mut buf = Vec::with_capacity(BATCH);
    let mut events = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut buf, BATCH).await > 0 {
        for msg in buf.drain(..) {
            match msg {
                Msg::Event(e) => events.push(e),
                Msg::Flush(done) => {
                    write_batch(&db, &mut events, &counters).await;
                    let _ = done.send(());
                }
            }
        }
        write_batch(&db, &mut events, &counters).await;
    }
}

async fn write_batch(db: &DatabaseConnection, events: &mut Vec<Event>, counters: &Counters) {
    if events.is_empty() {
        return;
    }
    let n = events.len() as u64;
    match insert_events(db, events.drain(..)).await {
        Ok(()) => counters.written.fetch_add(n, Ordering::Relaxed),
        Err(_) => counters.failed.fetch_add(n, Ordering::Relaxed),
    };
}

/// Writes `events` as `system_event` rows: the rule goes to `error_code`, the method,
/// query and user agent to `description`.
async fn insert_events(
    db: &DatabaseConnection,
    events: impl Iterator<Item = Event>,
) -> Result<(), DbErr> {
    let now = Utc::now();
    let rows: Vec<system_event::ActiveModel> = events
        .map(|e| {
            let m = &*e.meta;
            system_event::ActiveModel {
                id: NotSet,
                event_type: Set(e.event_type.to_owned()),
                title: Set(text::bounded(&e.title, MAX_TITLE_CHARS)),
                description: Set(Some(text::bounded(&describe(&e), DESCRIPTION_CHARS))),
                module: Set(Some(super::security::MODULE.to_owned())),
                function: Set(None),
                file: Set(None),
                line: Set(None),
                error_code: Set(Some(text::bounded(&e.rule, MAX_ERROR_CODE_CHARS))),
                stack_trace: Set(None),
                actor_id: Set(m.actor_id.clone()),
                actor_name: Set(m.actor_name.clone()),
                ip_address: Set(m.ip.map(|ip| ip.to_string())),
                request_path: Set(Some(text::bounded(&m.path, MAX_REQUEST_PATH_CHARS))),
                request_id: Set(m.request_id.clone()),
                resolved: Set(false),
                resolved_at: Set(None),
                resolved_by: Set(None),
                resolution_notes: Set(None),
                created_at: Set(now),
            }
        })
        .collect();
    system_event::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

fn describe(e: &Event) -> String {
    let m = &*e.meta;
    let mut out = format!("{} {}", m.method, m.path);
    if let Some(q) = &m.query {
        out.push('?');
        out.push_str(q);
    }
    out.push_str("\nrule: ");
    out.push_str(&e.rule);
    out.push_str("\nuser agent: ");
    out.push_str(m.user_agent.as_deref().unwrap_or("-"));
    if let Some(d) = &e.detail {
        out.push('\n');
        out.push_str(d);
    }
    // Request text is attacker-controlled: keep the line breaks we put in, drop the rest.
    out.chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect()
}

/// De-duplicates per (client, rule) and bounds the total per window. The set holds at
/// most `max_per_window` keys, so memory is bounded too.
#[derive(Debug)]
struct Limiter {
    started: Instant,
    seen: HashSet<(Option<IpAddr>, String)>,
}

impl Limiter {
    fn new() -> Self {
        Limiter {
            started: Instant::now(),
            seen: HashSet::new(),
        }
    }

    fn admit(&mut self, limits: &Limits, ip: Option<IpAddr>, rule: &str) -> bool {
        let now = Instant::now();
        if now.duration_since(self.started) >= limits.window {
            self.started = now;
            self.seen.clear();
        }
        if self.seen.len() >= limits.max_per_window {
            return false;
        }
        self.seen.insert((ip.map(client_key), rule.to_owned()))
    }
}

/// One IPv6 host usually owns a whole /64, so that is what counts as one client.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> Limits {
        Limits {
            window: Duration::from_secs(60),
            max_per_window: max,
            queue: 8,
        }
    }

    #[test]
    fn dedup_per_client_and_rule() {
        let mut l = Limiter::new();
        let lim = limits(100);
        let a = Some("203.0.113.1".parse().expect("ip"));
        let b = Some("203.0.113.2".parse().expect("ip"));
        assert!(l.admit(&lim, a, "injection"));
        assert!(!l.admit(&lim, a, "injection"));
        assert!(l.admit(&lim, a, "path_traversal"));
        assert!(l.admit(&lim, b, "injection"));
        let v6a = Some("2001:db8::1".parse().expect("ip"));
        let v6b = Some("2001:db8::2".parse().expect("ip"));
        assert!(l.admit(&lim, v6a, "injection"));
        assert!(!l.admit(&lim, v6b, "injection"), "same /64");
    }

    #[test]
    fn bounded_per_window() {
        let mut l = Limiter::new();
        let lim = limits(3);
        let admitted = (0..1000u32)
            .filter(|i| l.admit(&lim, Some(IpAddr::from(i.to_be_bytes())), "x"))
            .count();
        assert_eq!(admitted, 3);
        let short = Limits {
            window: Duration::ZERO,
            ..lim
        };
        assert!(l.admit(&short, None, "x"), "a new window starts afresh");
    }
}
