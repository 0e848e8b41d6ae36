//! System events (errors, warnings, security and maintenance notes), their resolution,
//! a background writer that never blocks the application, and a panic hook.
//!
//! [`log_system_event`] writes on the caller's `db`, like every other record. The
//! [`spawn_event_writer`] queue is for places that must not wait on or fail because of
//! the database: panic hooks and the `tracing` layer. It writes on a connection of its
//! own through a bounded queue, drops (and counts) what does not fit, and flushes on
//! [`EventWriterHandle::shutdown`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio::sync::{mpsc, oneshot};

use crate::context::RequestContext;
use crate::entity::system_event;
use crate::error::AuditError;
use crate::events;
use crate::text;

/// Longest title kept, in characters (the column is 500 wide).
pub const MAX_TITLE_CHARS: usize = 500;
/// Longest error code kept, in characters.
pub const MAX_ERROR_CODE_CHARS: usize = 64;
/// Longest request path kept, in characters.
pub const MAX_REQUEST_PATH_CHARS: usize = 2048;
/// Longest source file path kept, in characters.
pub const MAX_FILE_CHARS: usize = 512;
/// Longest module or function name kept, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest resolver name kept, in characters.
pub const MAX_RESOLVED_BY_CHARS: usize = 255;

/// The kind of a system event.
///
/// ```
/// use sea_orm_audit::EventType;
/// assert_eq!(EventType::Security.as_str(), "SECURITY");
/// assert_eq!("warning".parse::<EventType>().unwrap(), EventType::Warning);
/// assert!("LOUD".parse::<EventType>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// Something failed.
    Error,
    /// Something looks wrong but still worked.
    Warning,
    /// Worth knowing.
    Info,
    /// Suspicious or security-relevant activity.
    Security,
    /// Slowness or resource pressure.
    Performance,
    /// Planned work: migrations, backups, deploys.
    Maintenance,
}

impl EventType {
    /// Every type, in declaration order.
    pub const ALL: [EventType; 6] = [
        EventType::Error,
        EventType::Warning,
        EventType::Info,
        EventType::Security,
        EventType::Performance,
        EventType::Maintenance,
    ];

    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Error => "ERROR",
            EventType::Warning => "WARNING",
            EventType::Info => "INFO",
            EventType::Security => "SECURITY",
            EventType::Performance => "PERFORMANCE",
            EventType::Maintenance => "MAINTENANCE",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = AuditError;

    /// Parses a stored word, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| AuditError::InvalidInput {
                field: "event_type",
                reason: format!("unknown event type {:?}", text::bounded(s, 32)),
            })
    }
}

/// A system event to record with [`log_system_event`] or an [`EventSink`].
///
/// [`SystemEvent::new`] is `#[track_caller]`: it records the caller's file and line.
/// The [`system_event!`](crate::system_event!) macro also records the caller's module
/// (`module_path!()`), which a function cannot see.
///
/// ```
/// use sea_orm_audit::{EventType, SystemEvent, system_event};
///
/// let ev = SystemEvent::new(EventType::Performance, "slow report")
///     .description("took 12 s")
///     .error_code("SLOW_REPORT");
/// assert_eq!(ev.line(), Some(line!() - 3));
/// assert!(ev.file().unwrap().ends_with(".rs"));
///
/// let ev = system_event!(EventType::Error, "payment gateway timeout");
/// assert!(ev.module_name().is_some());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct SystemEvent {
    event_type: EventType,
    title: String,
    description: Option<String>,
    module: Option<String>,
    function: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    error_code: Option<String>,
    stack_trace: Option<String>,
    request_path: Option<String>,
    context: Option<RequestContext>,
    backtrace: Option<Captured>,
}

/// A backtrace captured on the panicking thread and rendered (symbolised, the slow
/// part) only by whoever writes the event.
#[derive(Clone, Debug)]
struct Captured(Arc<std::backtrace::Backtrace>);

impl PartialEq for Captured {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl SystemEvent {
    /// An event of `event_type` titled `title` (control characters removed, cut to
    /// [`MAX_TITLE_CHARS`]; an empty title becomes `"(untitled)"`), located at the
    /// caller.
    #[track_caller]
    pub fn new(event_type: EventType, title: &str) -> Self {
        let at = std::panic::Location::caller();
        let title = text::bounded_opt(text::strip_control(title.trim()), MAX_TITLE_CHARS)
            .unwrap_or_else(|| "(untitled)".to_owned());
        Self {
            event_type,
            title,
            description: None,
            module: None,
            function: None,
            file: Some(text::bounded(at.file(), MAX_FILE_CHARS)),
            line: Some(at.line()),
            error_code: None,
            stack_trace: None,
            request_path: None,
            context: None,
            backtrace: None,
        }
    }

    /// The longer explanation (unbounded).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into()).filter(|d| !d.is_empty());
        self
    }

    /// An application or database error code (cut to [`MAX_ERROR_CODE_CHARS`]).
    pub fn error_code(mut self, code: &str) -> Self {
        self.error_code = text::bounded_opt(text::strip_control(code), MAX_ERROR_CODE_CHARS);
        self
    }

    /// A backtrace or error chain (unbounded).
    pub fn stack_trace(mut self, trace: impl Into<String>) -> Self {
        self.stack_trace = Some(trace.into()).filter(|t| !t.is_empty());
        self
    }

    /// The path of the request that raised the event (cut to [`MAX_REQUEST_PATH_CHARS`]).
    pub fn request_path(mut self, path: &str) -> Self {
        self.request_path = text::bounded_opt(text::strip_control(path), MAX_REQUEST_PATH_CHARS);
        self
    }

    /// The module the event comes from.
    pub fn module(mut self, module: &str) -> Self {
        self.module = text::bounded_opt(module.to_owned(), MAX_NAME_CHARS);
        self
    }

    /// The function the event comes from.
    pub fn function(mut self, function: &str) -> Self {
        self.function = text::bounded_opt(function.to_owned(), MAX_NAME_CHARS);
        self
    }

    /// Overrides the captured source location.
    pub fn location(mut self, file: &str, line: u32) -> Self {
        self.file = text::bounded_opt(file.to_owned(), MAX_FILE_CHARS);
        self.line = Some(line);
        self
    }

    /// Uses this context (actor, IP, request id) instead of [`RequestContext::current`].
    pub fn context(mut self, ctx: RequestContext) -> Self {
        self.context = Some(ctx);
        self
    }

    /// The event's type.
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// The bounded title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The captured or given module.
    pub fn module_name(&self) -> Option<&str> {
        self.module.as_deref()
    }

    /// The captured or given source file.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// The captured or given line.
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// Forgets the captured location (for events whose origin is unknown).
    pub(crate) fn without_location(mut self) -> Self {
        self.file = None;
        self.line = None;
        self
    }

    fn with_current_context(mut self) -> Self {
        if self.context.is_none() {
            self.context = RequestContext::current().map(|c| (*c).clone());
        }
        self
    }
}

/// Builds a [`SystemEvent`] located at the call site, module included.
///
/// ```
/// use sea_orm_audit::{EventType, system_event};
/// let ev = system_event!(EventType::Maintenance, "nightly vacuum");
/// assert_eq!(ev.module_name(), Some(module_path!()));
/// ```
#[macro_export]
macro_rules! system_event {
    ($event_type:expr, $title:expr $(,)?) => {
        $crate::SystemEvent::new($event_type, $title).module(::core::module_path!())
    };
}

/// Writes a system event on `db` and returns its id.
///
/// System events are operational records, so the audit configuration's skip lists and
/// `enabled` switch do not apply to them.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{EventType, log_system_event, resolve_event, system_event};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = connect_all().await?;
/// let id = log_system_event(&db, system_event!(EventType::Error, "disk full").error_code("ENOSPC")).await?;
/// let row = resolve_event(&db, id, "ops on call", Some("rotated logs")).await?;
/// assert!(row.resolved);
/// # Ok(()) }
/// ```
pub async fn log_system_event<C: ConnectionTrait>(
    db: &C,
    event: SystemEvent,
) -> Result<i64, AuditError> {
    let ctx = events::resolve_context(event.context);
    let c = ctx.as_deref();
    let stack_trace = event
        .stack_trace
        .or_else(|| event.backtrace.map(|b| b.0.to_string()));
    let row = system_event::ActiveModel {
        id: NotSet,
        event_type: Set(event.event_type.as_str().to_owned()),
        title: Set(event.title),
        description: Set(event.description),
        module: Set(event.module),
        function: Set(event.function),
        file: Set(event.file),
        line: Set(event.line.map(|l| i32::try_from(l).unwrap_or(i32::MAX))),
        error_code: Set(event.error_code),
        stack_trace: Set(stack_trace),
        actor_id: Set(c.and_then(|c| c.actor_id().map(str::to_owned))),
        actor_name: Set(c.and_then(|c| c.actor_name().map(str::to_owned))),
        ip_address: Set(c.and_then(|c| c.ip_address().map(|ip| ip.to_string()))),
        request_path: Set(event.request_path),
        request_id: Set(c.and_then(|c| c.request_id_str().map(str::to_owned))),
        resolved: Set(false),
        resolved_at: Set(None),
        resolved_by: Set(None),
        resolution_notes: Set(None),
        created_at: Set(Utc::now()),
    };
    Ok(system_event::Entity::insert(row)
        .exec(db)
        .await
        .map_err(|e| events::classify(e, "system_event"))?
        .last_insert_id)
}

/// Marks event `id` resolved by `resolved_by`, now, with optional notes, and returns
/// the updated row.
///
/// One conditional UPDATE (`… WHERE id = ? AND resolved = false`), so of two
/// concurrent resolutions exactly one wins. Resolving an event that is already
/// resolved is [`AuditError::AlreadyResolved`] (the first resolution is kept); an
/// unknown id is [`AuditError::NotFound`].
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{AuditError, EventType, SystemEvent, log_system_event, resolve_event};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = connect_all().await?;
/// let id = log_system_event(&db, SystemEvent::new(EventType::Warning, "cert expires soon")).await?;
/// resolve_event(&db, id, "ada", None).await?;
/// assert!(matches!(resolve_event(&db, id, "bob", None).await, Err(AuditError::AlreadyResolved { .. })));
/// assert!(matches!(resolve_event(&db, 999, "bob", None).await, Err(AuditError::NotFound { .. })));
/// # Ok(()) }
/// ```
pub async fn resolve_event<C: ConnectionTrait>(
    db: &C,
    id: i64,
    resolved_by: &str,
    notes: Option<&str>,
) -> Result<system_event::Model, AuditError> {
    let by = text::bounded_opt(
        text::strip_control(resolved_by.trim()),
        MAX_RESOLVED_BY_CHARS,
    );
    let res = system_event::Entity::update_many()
        .col_expr(system_event::Column::Resolved, Expr::val(true))
        .col_expr(system_event::Column::ResolvedAt, Expr::val(Utc::now()))
        .col_expr(system_event::Column::ResolvedBy, Expr::val(by))
        .col_expr(
            system_event::Column::ResolutionNotes,
            Expr::val(notes.filter(|n| !n.is_empty()).map(str::to_owned)),
        )
        .filter(system_event::Column::Id.eq(id))
        .filter(system_event::Column::Resolved.eq(false))
        .exec(db)
        .await
        .map_err(|e| events::classify(e, "system_event"))?;
    let row = system_event::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AuditError::NotFound {
            table: "system_event",
            id,
        })?;
    if res.rows_affected == 0 {
        return Err(AuditError::AlreadyResolved {
            id,
            resolved_at: row.resolved_at.unwrap_or(row.created_at),
        });
    }
    Ok(row)
}

// === background writer ===

tokio::task_local! {
    static IN_WRITER: ();
}

/// Whether the current task is the background writer (its own statements' log
/// events must not be queued again).
#[cfg(feature = "tracing")]
pub(crate) fn in_writer() -> bool {
    IN_WRITER.try_with(|_| ()).is_ok()
}

#[derive(Debug, Default)]
struct Stats {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// Counters of a background writer.
///
/// ```
/// use sea_orm_audit::WriterStats;
/// let s = WriterStats::default();
/// assert_eq!((s.written, s.dropped, s.failed), (0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// Events written.
    pub written: u64,
    /// Events dropped because the queue was full or the writer had stopped.
    pub dropped: u64,
    /// Events the database refused (the writer logs nothing about them: it has no
    /// one to tell without risking a loop).
    pub failed: u64,
}

impl Stats {
    fn snapshot(&self) -> WriterStats {
        WriterStats {
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

enum Control {
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// The sending side of a background writer: cheap to clone, never blocks.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{EventType, SystemEvent, spawn_event_writer};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let own_connection = connect_all().await?;
/// let (sink, handle) = spawn_event_writer(own_connection, 1024)?;
/// assert!(sink.try_record(SystemEvent::new(EventType::Info, "started")));
/// let stats = handle.shutdown().await;
/// assert_eq!(stats.written, 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct EventSink {
    tx: mpsc::Sender<SystemEvent>,
    stats: Arc<Stats>,
}

impl EventSink {
    /// Queues `event` for writing, stamped with the current request context (unless it
    /// has one). Returns `false`, and counts a drop, when the queue is full or the
    /// writer has stopped. Never blocks, never panics.
    pub fn try_record(&self, event: SystemEvent) -> bool {
        match self.tx.try_send(event.with_current_context()) {
            Ok(()) => true,
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The writer's counters so far.
    pub fn stats(&self) -> WriterStats {
        self.stats.snapshot()
    }
}

/// Controls a background writer: flush, shut down, read counters.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{EventType, SystemEvent, spawn_event_writer};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let own_connection = connect_all().await?;
/// let (sink, handle) = spawn_event_writer(own_connection, 16)?;
/// sink.try_record(SystemEvent::new(EventType::Info, "one"));
/// handle.flush().await?;
/// assert_eq!(handle.stats().written, 1);
/// handle.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "dropping the handle leaves the writer running without a way to flush it"]
pub struct EventWriterHandle {
    ctl: mpsc::UnboundedSender<Control>,
    task: tokio::task::JoinHandle<()>,
    stats: Arc<Stats>,
}

impl EventWriterHandle {
    /// Waits until every event queued before this call has been written (or failed).
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        self.ctl
            .send(Control::Flush(ack))
            .map_err(|_| AuditError::WriterUnavailable("the writer has stopped"))?;
        done.await
            .map_err(|_| AuditError::WriterUnavailable("the writer has stopped"))
    }

    /// Stops accepting events, writes everything still queued, stops the writer and
    /// returns the final counters. Later [`EventSink::try_record`] calls count drops.
    pub async fn shutdown(self) -> WriterStats {
        let (ack, done) = oneshot::channel();
        if self.ctl.send(Control::Shutdown(ack)).is_ok() {
            let _ = done.await;
        }
        let _ = self.task.await;
        self.stats.snapshot()
    }

    /// The writer's counters so far.
    pub fn stats(&self) -> WriterStats {
        self.stats.snapshot()
    }
}

/// Starts a background writer on the current tokio runtime, writing to `db` (give it
/// a connection of its own, so a busy application pool cannot starve it and its
/// statements never join an application transaction). `capacity` bounds the queue
/// (at least 1).
///
/// Errors with [`AuditError::WriterUnavailable`] outside a tokio runtime.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{AuditError, spawn_event_writer};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let db = rt.block_on(connect_all())?;
/// // Not inside the runtime: refused, not a panic.
/// assert!(matches!(spawn_event_writer(db.clone(), 8), Err(AuditError::WriterUnavailable(_))));
/// let _inside = rt.enter();
/// let (_sink, _handle) = spawn_event_writer(db, 8)?;
/// # Ok(()) }
/// ```
pub fn spawn_event_writer(
    db: DatabaseConnection,
    capacity: usize,
) -> Result<(EventSink, EventWriterHandle), AuditError> {
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|_| AuditError::WriterUnavailable("no tokio runtime"))?;
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let stats = Arc::new(Stats::default());
    let task = rt.spawn(IN_WRITER.scope((), run_writer(db, rx, ctl_rx, Arc::clone(&stats))));
    Ok((
        EventSink {
            tx,
            stats: Arc::clone(&stats),
        },
        EventWriterHandle {
            ctl: ctl_tx,
            task,
            stats,
        },
    ))
}

async fn run_writer(
    db: DatabaseConnection,
    mut rx: mpsc::Receiver<SystemEvent>,
    mut ctl: mpsc::UnboundedReceiver<Control>,
    stats: Arc<Stats>,
) {
    loop {
        tokio::select! {
            biased;
            Some(ev) = rx.recv() => write_one(&db, ev, &stats).await,
            msg = ctl.recv() => match msg {
                Some(Control::Flush(ack)) => {
                    while let Ok(ev) = rx.try_recv() {
                        write_one(&db, ev, &stats).await;
                    }
                    let _ = ack.send(());
                }
                Some(Control::Shutdown(ack)) => {
                    rx.close();
                    while let Some(ev) = rx.recv().await {
                        write_one(&db, ev, &stats).await;
                    }
                    let _ = ack.send(());
                    return;
                }
                // The handle was dropped: the writer keeps writing what the sinks send,
                // until the last sink is dropped too.
                None => {
                    while let Some(ev) = rx.recv().await {
                        write_one(&db, ev, &stats).await;
                    }
                    return;
                }
            },
        }
    }
}

async fn write_one(db: &DatabaseConnection, ev: SystemEvent, stats: &Stats) {
    match log_system_event(db, ev).await {
        Ok(_) => stats.written.fetch_add(1, Ordering::Relaxed),
        Err(_) => stats.failed.fetch_add(1, Ordering::Relaxed),
    };
}

// === panic hook ===

/// Records every panic as an ERROR event through `sink`: the message as title, the
/// location as file and line, a backtrace as stack trace (captured on the panicking
/// thread, symbolised later by the writer). The previous hook
/// still runs afterwards (so the usual message is still printed).
///
/// The hook only queues the event (never blocks the panicking thread, never touches
/// the database itself); a panic that happens while the queue is full is counted as
/// dropped. Flush the writer's handle before the process exits to keep the last ones.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{install_panic_hook, spawn_event_writer};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let own_connection = connect_all().await?;
/// let (sink, handle) = spawn_event_writer(own_connection, 256)?;
/// install_panic_hook(sink);
/// // ... run the application ...
/// # let _ = std::panic::take_hook();
/// handle.shutdown().await;
/// # Ok(()) }
/// ```
pub fn install_panic_hook(sink: EventSink) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic payload)".to_owned());
        // Captured here, symbolised by the writer: rendering a backtrace can take long
        // enough to matter on a thread that is already failing.
        let mut event = SystemEvent::new(EventType::Error, &format!("panic: {message}"))
            .description(message.clone())
            .error_code("PANIC");
        event.backtrace = Some(Captured(Arc::new(
            std::backtrace::Backtrace::force_capture(),
        )));
        match info.location() {
            Some(loc) => event = event.location(loc.file(), loc.line()),
            None => event = event.without_location(),
        }
        if let Some(name) = std::thread::current().name() {
            event = event.function(&format!("thread '{name}'"));
        }
        sink.try_record(event);
        previous(info);
    }));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_bounded_and_never_empty() {
        let ev = SystemEvent::new(EventType::Info, "  ");
        assert_eq!(ev.title(), "(untitled)");
        let ev = SystemEvent::new(EventType::Info, &"é".repeat(600));
        assert_eq!(ev.title().chars().count(), MAX_TITLE_CHARS);
        let ev = SystemEvent::new(EventType::Info, "a\nb");
        assert_eq!(ev.title(), "ab");
    }

    #[test]
    fn caller_location_is_captured() {
        let ev = SystemEvent::new(EventType::Info, "x");
        assert_eq!(ev.line(), Some(line!() - 1));
        assert_eq!(ev.file(), Some(file!()));
    }
}
