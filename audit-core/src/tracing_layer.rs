//! A `tracing_subscriber` layer that records events at or above a level as system
//! events (feature `tracing`).
//!
//! The layer only queues: it hands each event to a background writer
//! ([`spawn_event_writer`](crate::spawn_event_writer)) through a bounded queue, so
//! logging never waits on or fails because of the database. When the queue is full
//! the event is dropped and counted ([`EventSink::stats`]).
//!
//! No feedback loop: the writer's own statements make sqlx and SeaORM emit events.
//! The layer ignores every event emitted on the writer task, and events whose target
//! starts with one of the ignored prefixes (by default `sqlx::query`, which is where
//! statement logs and slow-statement warnings come from, even when sqlx emits them on
//! a worker thread, and `sea_orm_audit`).
//!
//! ```
//! # use sea_orm_audit::doc_fixtures::connect_all;
//! use sea_orm_audit::{SystemEventLayer, spawn_event_writer};
//! use tracing_subscriber::layer::SubscriberExt;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), sea_orm_audit::AuditError> {
//! # let own_connection = connect_all().await?;
//! let (sink, handle) = spawn_event_writer(own_connection, 1024)?;
//! let subscriber = tracing_subscriber::registry()
//!     .with(SystemEventLayer::new(sink).min_level(tracing::Level::WARN));
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::error!(error_code = "E42", "payment failed");
//!     tracing::info!("not recorded: below WARN");
//! });
//! let stats = handle.shutdown().await;
//! assert_eq!(stats.written, 1);
//! # Ok(()) }
//! ```

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::system::{self, EventSink, EventType, SystemEvent};

/// Target prefixes ignored by default (see [`SystemEventLayer`]).
pub const DEFAULT_IGNORED_TARGETS: &[&str] = &["sqlx::query", "sea_orm_audit"];

/// A `tracing_subscriber` layer that records events at or above a level (WARN by
/// default) as system events: ERROR as ERROR, WARN as WARNING, others as INFO; the
/// message is the title, an `error_code` field the error code, other fields
/// `name=value` lines of the description, with the event's module, file and line.
///
/// The layer only queues: it hands each event to a background writer
/// ([`spawn_event_writer`](crate::spawn_event_writer)) through a bounded queue, so
/// logging never waits on or fails because of the database. When the queue is full
/// the event is dropped and counted ([`EventSink::stats`]).
///
/// No feedback loop: the writer's own statements make sqlx and SeaORM emit events.
/// The layer ignores every event emitted on the writer task, and events whose target
/// starts with one of the ignored prefixes (by default `sqlx::query`, which is where
/// statement logs and slow-statement warnings come from, even when sqlx emits them on
/// a worker thread, and `sea_orm_audit`).
///
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{SystemEventLayer, spawn_event_writer};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = connect_all().await?;
/// let (sink, handle) = spawn_event_writer(db, 64)?;
/// let layer = SystemEventLayer::new(sink)
///     .min_level(tracing::Level::ERROR)
///     .ignore_target("hyper");
/// assert_eq!(layer.stats().dropped, 0);
/// # handle.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SystemEventLayer {
    sink: EventSink,
    min_level: Level,
    ignored: Vec<String>,
}

impl SystemEventLayer {
    /// A layer recording WARN and ERROR events into `sink`.
    pub fn new(sink: EventSink) -> Self {
        Self {
            sink,
            min_level: Level::WARN,
            ignored: DEFAULT_IGNORED_TARGETS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }

    /// Records events at `level` and more severe (ERROR is the most severe).
    pub fn min_level(mut self, level: Level) -> Self {
        self.min_level = level;
        self
    }

    /// Also ignores events whose target starts with `prefix`.
    pub fn ignore_target(mut self, prefix: impl Into<String>) -> Self {
        self.ignored.push(prefix.into());
        self
    }

    /// Ignores no target at all (only events of the writer's own task are still
    /// skipped). For tests and for applications that route sqlx logs elsewhere.
    pub fn clear_ignored_targets(mut self) -> Self {
        self.ignored.clear();
        self
    }

    /// The sink's counters (written, dropped, failed).
    pub fn stats(&self) -> system::WriterStats {
        self.sink.stats()
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    error_code: Option<String>,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_owned()),
            "error_code" => self.error_code = Some(value.to_owned()),
            name => {
                let _ = writeln!(self.rest, "{name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = Some(format!("{value:?}")),
            "error_code" => self.error_code = Some(format!("{value:?}")),
            name => {
                let _ = writeln!(self.rest, "{name}={value:?}");
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for SystemEventLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // Levels compare by verbosity: TRACE > ... > ERROR.
        if *meta.level() > self.min_level || system::in_writer() {
            return;
        }
        let target = meta.target();
        if self.ignored.iter().any(|p| target.starts_with(p.as_str())) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let event_type = match *meta.level() {
            Level::ERROR => EventType::Error,
            Level::WARN => EventType::Warning,
            _ => EventType::Info,
        };
        let title = fields.message.unwrap_or_else(|| meta.name().to_owned());
        let mut ev =
            SystemEvent::new(event_type, &title).module(meta.module_path().unwrap_or(target));
        ev = match (meta.file(), meta.line()) {
            (Some(file), Some(line)) => ev.location(file, line),
            _ => ev.without_location(),
        };
        if let Some(code) = fields.error_code {
            ev = ev.error_code(&code);
        }
        if !fields.rest.is_empty() {
            ev = ev.description(fields.rest);
        }
        self.sink.try_record(ev);
    }
}
