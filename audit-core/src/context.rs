//! Request context: who is acting, from where, in which request.
//!
//! The context lives in tokio task-local storage. It is entered with a scope around a
//! future ([`RequestContext::scope`]) and read by the audit hooks of every write made
//! inside that future. Concurrent tasks never see each other's context, and a task
//! started with `tokio::spawn` sees none unless it is wrapped with
//! [`in_current_scope`]. Outside a scope the context is empty: actor, IP and the rest
//! are stored as NULL, never a previous request's values.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::task::futures::TaskLocalFuture;

use crate::config;
use crate::text;

/// Longest user agent kept, in characters; longer ones are cut at a character boundary.
pub const MAX_USER_AGENT_CHARS: usize = 512;
/// Longest request id kept, in characters.
pub const MAX_REQUEST_ID_CHARS: usize = 128;
/// Longest actor id kept, in characters.
pub const MAX_ACTOR_ID_CHARS: usize = 128;
/// Longest actor name kept, in characters.
pub const MAX_ACTOR_NAME_CHARS: usize = 255;

tokio::task_local! {
    static CONTEXT: Arc<RequestContext>;
    static SUPPRESSED: Suppression;
}

/// Who acts and from where; attached to every audit row written inside its scope.
///
/// Build it with the setters, which validate and bound their input: an IP that does
/// not parse is dropped (never stored as an IP), the user agent is cut to
/// [`MAX_USER_AGENT_CHARS`], and a session identifier is hashed on the way in so the
/// raw secret is never kept.
///
/// ```
/// use sea_orm_audit::RequestContext;
///
/// let ctx = RequestContext::new()
///     .actor("42", "Ada Lovelace")
///     .ip("203.0.113.7")
///     .user_agent("curl/8.5")
///     .session("the-session-cookie-value")
///     .request_id("req-1");
/// assert_eq!(ctx.actor_id(), Some("42"));
/// assert_eq!(ctx.ip_address().unwrap().to_string(), "203.0.113.7");
/// assert_ne!(ctx.session_hash(), Some("the-session-cookie-value"));
/// assert_eq!(ctx.session_hash().unwrap().len(), 64);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestContext {
    actor_id: Option<String>,
    actor_name: Option<String>,
    ip: Option<IpAddr>,
    user_agent: Option<String>,
    session_hash: Option<String>,
    request_id: Option<String>,
    metadata: Option<serde_json::Value>,
}

impl RequestContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the actor: the application's user id (as text) and a display name. Both are
    /// snapshots, so attribution survives the user's deletion.
    pub fn actor(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.actor_id = text::bounded_opt(id.into(), MAX_ACTOR_ID_CHARS);
        self.actor_name = text::bounded_opt(name.into(), MAX_ACTOR_NAME_CHARS);
        self
    }

    /// Sets only the actor id.
    pub fn actor_id_only(mut self, id: impl Into<String>) -> Self {
        self.actor_id = text::bounded_opt(id.into(), MAX_ACTOR_ID_CHARS);
        self.actor_name = None;
        self
    }

    /// Sets the client IP from text. Text that is not an IPv4 or IPv6 address is
    /// ignored: an invalid address is never stored as an IP.
    pub fn ip(mut self, ip: &str) -> Self {
        self.ip = ip.trim().parse().ok();
        self
    }

    /// Sets the client IP.
    pub fn ip_addr(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Sets the user agent, cut to [`MAX_USER_AGENT_CHARS`] characters with control
    /// characters removed.
    pub fn user_agent(mut self, ua: &str) -> Self {
        self.user_agent = text::bounded_opt(text::strip_control(ua), MAX_USER_AGENT_CHARS);
        self
    }

    /// Sets the session from its raw identifier (cookie value or token). Only its
    /// SHA-256 hash is kept; the raw value is not stored anywhere.
    pub fn session(mut self, raw: &str) -> Self {
        self.session_hash = if raw.is_empty() {
            None
        } else {
            Some(hash_session(raw))
        };
        self
    }

    /// Sets an already-hashed session identifier (64 lowercase hex characters, as
    /// produced by [`hash_session`]). Anything else is ignored, so a raw token passed
    /// here by mistake is never stored.
    pub fn session_hash_hex(mut self, hash: &str) -> Self {
        let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        self.session_hash = valid.then(|| hash.to_ascii_lowercase());
        self
    }

    /// Sets the request id. It is cut to [`MAX_REQUEST_ID_CHARS`] characters and
    /// control characters are removed.
    pub fn request_id(mut self, id: &str) -> Self {
        self.request_id = text::bounded_opt(text::strip_control(id), MAX_REQUEST_ID_CHARS);
        self
    }

    /// Attaches free-form metadata, stored in `audit_log.metadata`.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// The actor id, if any.
    pub fn actor_id(&self) -> Option<&str> {
        self.actor_id.as_deref()
    }

    /// The actor display name, if any.
    pub fn actor_name(&self) -> Option<&str> {
        self.actor_name.as_deref()
    }

    /// The client IP, if a valid one was given.
    pub fn ip_address(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The bounded user agent, if any.
    pub fn user_agent_str(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// The SHA-256 hex of the session identifier, if any.
    pub fn session_hash(&self) -> Option<&str> {
        self.session_hash.as_deref()
    }

    /// The request id, if any.
    pub fn request_id_str(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The free-form metadata, if any.
    pub fn metadata_value(&self) -> Option<&serde_json::Value> {
        self.metadata.as_ref()
    }

    /// Runs `fut` with this context. Every audited write inside `fut` (on this task)
    /// records it; the context ends with the future, whether it completes, fails or
    /// is dropped.
    ///
    /// ```
    /// # use sea_orm_audit::RequestContext;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = RequestContext::new().actor("7", "Grace");
    /// let who = ctx.scope(async {
    ///     RequestContext::current().and_then(|c| c.actor_name().map(str::to_owned))
    /// }).await;
    /// assert_eq!(who.as_deref(), Some("Grace"));
    /// assert!(RequestContext::current().is_none());
    /// # }
    /// ```
    pub fn scope<F: Future>(self, fut: F) -> TaskLocalFuture<Arc<RequestContext>, F> {
        CONTEXT.scope(Arc::new(self), fut)
    }

    /// [`scope`](Self::scope) of a context already shared.
    #[cfg(feature = "middleware")]
    pub(crate) fn scope_shared<F: Future>(
        ctx: Arc<RequestContext>,
        fut: F,
    ) -> TaskLocalFuture<Arc<RequestContext>, F> {
        CONTEXT.scope(ctx, fut)
    }

    /// Runs `f` with `ctx` in scope, for the synchronous part of a service's `call`.
    #[cfg(feature = "middleware")]
    pub(crate) fn sync_scope<R>(ctx: &Arc<RequestContext>, f: impl FnOnce() -> R) -> R {
        CONTEXT.sync_scope(Arc::clone(ctx), f)
    }

    /// The context of the current task, if one is in scope.
    pub fn current() -> Option<Arc<RequestContext>> {
        CONTEXT.try_with(Arc::clone).ok()
    }
}

/// SHA-256 of a session identifier, as 64 lowercase hex characters.
pub fn hash_session(raw: &str) -> String {
    let digest = Sha256::digest(raw.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest.iter() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Runs `fut` with the actor replaced (other context fields are kept). For background
/// jobs and scripts that act on someone's behalf.
///
/// ```
/// # use sea_orm_audit::{with_actor, RequestContext};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let id = with_actor("system", "nightly-cleanup", async {
///     RequestContext::current().unwrap().actor_id().map(str::to_owned)
/// }).await;
/// assert_eq!(id.as_deref(), Some("system"));
/// # }
/// ```
pub fn with_actor<F: Future>(
    actor_id: impl Into<String>,
    actor_name: impl Into<String>,
    fut: F,
) -> TaskLocalFuture<Arc<RequestContext>, F> {
    let base = RequestContext::current()
        .map(|c| (*c).clone())
        .unwrap_or_default();
    base.actor(actor_id, actor_name).scope(fut)
}

/// Wraps `fut` so that it runs with the current task's request context, scoped
/// configuration and audit suppression. Use it when handing work to `tokio::spawn`,
/// which otherwise starts with no context at all.
///
/// ```
/// # use sea_orm_audit::{in_current_scope, RequestContext};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// RequestContext::new().actor("1", "Ada").scope(async {
///     let plain = tokio::spawn(async { RequestContext::current().is_some() });
///     let carried = tokio::spawn(in_current_scope(async { RequestContext::current().is_some() }));
///     assert!(!plain.await.unwrap());
///     assert!(carried.await.unwrap());
/// }).await;
/// # }
/// ```
pub fn in_current_scope<F>(fut: F) -> impl Future<Output = F::Output> + Send
where
    F: Future + Send,
{
    let ctx = CONTEXT.try_with(Arc::clone).ok();
    let suppressed = SUPPRESSED.try_with(|s| *s).ok();
    let cfg = config::scoped_override();
    async move {
        match (ctx, suppressed, cfg) {
            (ctx, suppressed, Some(cfg)) => {
                config::scope_arc(cfg, rescope(ctx, suppressed, fut)).await
            }
            (ctx, suppressed, None) => rescope(ctx, suppressed, fut).await,
        }
    }
}

async fn rescope<F: Future>(
    ctx: Option<Arc<RequestContext>>,
    suppressed: Option<Suppression>,
    fut: F,
) -> F::Output {
    match (ctx, suppressed) {
        (Some(c), Some(s)) => CONTEXT.scope(c, SUPPRESSED.scope(s, fut)).await,
        (Some(c), None) => CONTEXT.scope(c, fut).await,
        (None, Some(s)) => SUPPRESSED.scope(s, fut).await,
        (None, None) => fut.await,
    }
}

/// Why auditing is switched off for a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Suppression {
    /// Migrations are running ([`migration_guard`]).
    Migration,
    /// The application asked for it ([`without_audit`]).
    Explicit,
}

/// Runs migrations (or any future) with auditing switched off for this task only.
///
/// Data migrations that write audited entities then record nothing and work even
/// before the audit tables exist. Other tasks of the process (an application serving
/// traffic) are still audited. The check is a task-local read: no query per write.
///
/// ```
/// # use sea_orm_audit::{migration_guard, is_suppressed};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // migration_guard(Migrator::up(&db, None)).await?;
/// assert!(migration_guard(async { is_suppressed() }).await);
/// assert!(!is_suppressed());
/// # }
/// ```
pub fn migration_guard<F: Future>(fut: F) -> TaskLocalFuture<Suppression, F> {
    SUPPRESSED.scope(Suppression::Migration, fut)
}

/// Runs `fut` with auditing switched off for this task. For maintenance code that must
/// not be recorded; prefer the configuration's skip lists for permanent exclusions.
pub fn without_audit<F: Future>(fut: F) -> TaskLocalFuture<Suppression, F> {
    SUPPRESSED.scope(Suppression::Explicit, fut)
}

/// Whether auditing is switched off for the current task by [`migration_guard`] or
/// [`without_audit`].
pub fn is_suppressed() -> bool {
    SUPPRESSED.try_with(|_| ()).is_ok()
}
