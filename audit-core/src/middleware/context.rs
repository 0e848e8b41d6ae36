//! Attributes every audited write of a request to its actor, client IP, user agent,
//! session and request id.
//!
//! [`AuditContextLayer`] builds a [`RequestContext`] for each request and runs the inner
//! service's future inside [`RequestContext::scope`], so the context ends with the
//! request (also when the handler fails, panics or is cancelled) and nothing carries
//! over to the next request served by the same worker. The context is also put into
//! the request extensions, for handlers and for the security layer.
//!
//! # Example
//!
//! ```
//! use http::{Request, Response};
//! use sea_orm_audit::middleware::{AuditContextLayer, ClientIp};
//! use sea_orm_audit::RequestContext;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let handler = service_fn(|_req: Request<String>| async {
//!     // Every audited insert/update/delete made here is stamped with this context.
//!     let ctx = RequestContext::current().expect("in scope");
//!     Ok::<_, std::convert::Infallible>(Response::new(
//!         ctx.actor_name().unwrap_or("anonymous").to_owned(),
//!     ))
//! });
//!
//! let svc = ServiceBuilder::new()
//!     .layer(
//!         AuditContextLayer::new()
//!             // The application knows its users: here a header set by an auth proxy.
//!             .actor(|parts: &http::request::Parts| {
//!                 let name = parts.headers.get("x-user")?.to_str().ok()?;
//!                 Some((name.to_owned(), name.to_owned()))
//!             })
//!             .client_ip(ClientIp::new().trust_proxy("10.0.0.0/8")?),
//!     )
//!     .service(handler);
//!
//! let req = Request::builder()
//!     .header("x-user", "ada")
//!     .header("x-request-id", "req-42")
//!     .body(String::new())?;
//! let res = svc.oneshot(req).await?;
//! assert_eq!(res.body(), "ada");
//! assert_eq!(res.headers()["x-request-id"], "req-42");
//! // The context ended with the request.
//! assert!(RequestContext::current().is_none());
//! # Ok(()) }
//! ```
//!
//! With axum, serve the router with `into_make_service_with_connect_info::<SocketAddr>()`
//! and point [`ClientIp::peer_addr_with`] at `ConnectInfo<SocketAddr>`, or the peer
//! address (and so the IP) stays unknown.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::{AUTHORIZATION, COOKIE, HeaderName, USER_AGENT};
use http::request::Parts;
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tower_layer::Layer;
use tower_service::Service;

use super::client_ip::ClientIp;
use crate::context::{MAX_REQUEST_ID_CHARS, RequestContext};

/// Header read and written by default for the request id.
pub const DEFAULT_REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Cookie whose value is hashed into the session identifier by default.
pub const DEFAULT_SESSION_COOKIE: &str = "session";

/// Finds who makes a request, from what the application's authentication put into the
/// request (headers, extensions).
///
/// Returns `(actor id, display name)`, or `None` for an anonymous request. Implemented
/// for closures:
///
/// ```
/// use http::request::Parts;
/// use sea_orm_audit::middleware::{AuditContextLayer, ResolveActor};
///
/// #[derive(Clone)]
/// struct CurrentUser { id: i64, name: String } // put there by an auth layer
///
/// let layer = AuditContextLayer::new().actor(|parts: &Parts| {
///     let user = parts.extensions.get::<CurrentUser>()?;
///     Some((user.id.to_string(), user.name.clone()))
/// });
/// ```
pub trait ResolveActor {
    /// The actor of the request described by `parts`.
    fn resolve(&self, parts: &Parts) -> Option<(String, String)>;
}

impl<F> ResolveActor for F
where
    F: Fn(&Parts) -> Option<(String, String)>,
{
    fn resolve(&self, parts: &Parts) -> Option<(String, String)> {
        self(parts)
    }
}

/// The [`ResolveActor`] of a layer that was not told about actors: every request is
/// anonymous.
///
/// ```
/// # use sea_orm_audit::middleware::{NoActor, ResolveActor};
/// let parts = http::Request::new(()).into_parts().0;
/// assert!(NoActor.resolve(&parts).is_none());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoActor;

impl ResolveActor for NoActor {
    fn resolve(&self, _: &Parts) -> Option<(String, String)> {
        None
    }
}

#[derive(Debug)]
struct Settings {
    client_ip: ClientIp,
    request_id_header: HeaderName,
    session_cookie: Option<String>,
    bearer_session: bool,
}

/// Layer that scopes a [`RequestContext`] around each request. See the [module
/// docs](self).
///
/// ```
/// use sea_orm_audit::middleware::AuditContextLayer;
///
/// let layer = AuditContextLayer::new()
///     .request_id_header(http::HeaderName::from_static("x-correlation-id"))
///     .session_cookie("sid")
///     .bearer_session(false);
/// ```
#[derive(Clone)]
#[must_use]
pub struct AuditContextLayer<A = NoActor> {
    actor: A,
    settings: Arc<Settings>,
}

impl<A> fmt::Debug for AuditContextLayer<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditContextLayer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Default for AuditContextLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditContextLayer {
    /// Anonymous actors, the socket peer as IP, `x-request-id`, the `session` cookie or
    /// a bearer token as session.
    pub fn new() -> Self {
        AuditContextLayer {
            actor: NoActor,
            settings: Arc::new(Settings {
                client_ip: ClientIp::new(),
                request_id_header: DEFAULT_REQUEST_ID_HEADER,
                session_cookie: Some(DEFAULT_SESSION_COOKIE.to_owned()),
                bearer_session: true,
            }),
        }
    }
}

impl<A> AuditContextLayer<A> {
    /// Resolves actors with `actor`.
    pub fn actor<B: ResolveActor>(self, actor: B) -> AuditContextLayer<B> {
        AuditContextLayer {
            actor,
            settings: self.settings,
        }
    }

    /// Finds the client IP with `client_ip` (trusted proxies, peer address source).
    pub fn client_ip(mut self, client_ip: ClientIp) -> Self {
        self.settings_mut().client_ip = client_ip;
        self
    }

    /// Reads and writes the request id in `header` instead of `x-request-id`.
    pub fn request_id_header(mut self, header: HeaderName) -> Self {
        self.settings_mut().request_id_header = header;
        self
    }

    /// Hashes the cookie `name` into the session identifier (default: `session`).
    pub fn session_cookie(mut self, name: impl Into<String>) -> Self {
        self.settings_mut().session_cookie = Some(name.into());
        self
    }

    /// Reads no session cookie (a bearer token may still be used).
    pub fn no_session_cookie(mut self) -> Self {
        self.settings_mut().session_cookie = None;
        self
    }

    /// Whether an `Authorization: Bearer` token is hashed into the session identifier
    /// when no session cookie is present (on by default).
    pub fn bearer_session(mut self, on: bool) -> Self {
        self.settings_mut().bearer_session = on;
        self
    }

    fn settings_mut(&mut self) -> &mut Settings {
        if Arc::get_mut(&mut self.settings).is_none() {
            let s = &self.settings;
            self.settings = Arc::new(Settings {
                client_ip: s.client_ip.clone(),
                request_id_header: s.request_id_header.clone(),
                session_cookie: s.session_cookie.clone(),
                bearer_session: s.bearer_session,
            });
        }
        Arc::get_mut(&mut self.settings).expect("just made unique")
    }
}

impl<S, A: Clone> Layer<S> for AuditContextLayer<A> {
    type Service = AuditContext<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditContext {
            inner,
            actor: self.actor.clone(),
            settings: Arc::clone(&self.settings),
        }
    }
}

/// Service that scopes a [`RequestContext`] around each request; made by
/// [`AuditContextLayer`].
///
/// ```
/// use sea_orm_audit::middleware::{AuditContext, AuditContextLayer};
/// use tower_layer::Layer;
///
/// let svc: AuditContext<_, _> = AuditContextLayer::new().layer(tower::service_fn(
///     |_: http::Request<String>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) },
/// ));
/// let _inner = svc.get_ref();
/// ```
#[derive(Clone)]
pub struct AuditContext<S, A = NoActor> {
    inner: S,
    actor: A,
    settings: Arc<Settings>,
}

impl<S: fmt::Debug, A> fmt::Debug for AuditContext<S, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditContext")
            .field("inner", &self.inner)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<S, A> AuditContext<S, A> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, A, ReqBody, ResBody> Service<Request<ReqBody>> for AuditContext<S, A>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    A: ResolveActor,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = TaskLocalFuture<Arc<RequestContext>, ResponseFuture<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let s = &*self.settings;
        let (mut parts, body) = req.into_parts();

        let request_id = parts
            .headers
            .get(&s.request_id_header)
            .filter(|v| valid_request_id(v.as_bytes()))
            .cloned()
            .unwrap_or_else(generate_request_id);
        parts
            .headers
            .insert(s.request_id_header.clone(), request_id.clone());

        let mut ctx = RequestContext::new().request_id(request_id.to_str().unwrap_or_default());
        if let Some((id, name)) = self.actor.resolve(&parts) {
            ctx = ctx.actor(id, name);
        }
        if let Some(ip) = s.client_ip.resolve(&parts) {
            ctx = ctx.ip_addr(ip);
        }
        if let Some(ua) = parts.headers.get(USER_AGENT) {
            ctx = ctx.user_agent(&String::from_utf8_lossy(ua.as_bytes()));
        }
        if let Some(session) = session_secret(&parts, s) {
            ctx = ctx.session(&session);
        }
        parts.extensions.insert(ctx.clone());

        // The inner service's `call` runs in the scope too: work it does before
        // returning its future sees the request's context.
        let ctx = std::sync::Arc::new(ctx);
        let inner = &mut self.inner;
        let fut = RequestContext::sync_scope(&ctx, || inner.call(Request::from_parts(parts, body)));
        RequestContext::scope_shared(
            ctx,
            ResponseFuture {
                inner: fut,
                header: Some((s.request_id_header.clone(), request_id)),
            },
        )
    }
}

/// Visible ASCII only, 1 to [`MAX_REQUEST_ID_CHARS`] bytes: anything else is replaced by
/// a generated id rather than cut, so a stored id always equals the one in the logs.
fn valid_request_id(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= MAX_REQUEST_ID_CHARS && v.iter().all(|b| b.is_ascii_graphic())
}

fn generate_request_id() -> HeaderValue {
    let id = uuid::Uuid::new_v4().hyphenated().to_string();
    HeaderValue::from_str(&id).expect("a UUID is a valid header value")
}

/// The raw session secret: the session cookie, else a bearer token. Only its hash is
/// kept ([`RequestContext::session`]).
fn session_secret(parts: &Parts, s: &Settings) -> Option<String> {
    if let Some(name) = &s.session_cookie {
        let found = parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, v)| k == name && !v.is_empty());
        if let Some((_, v)) = found {
            return Some(v.trim_matches('"').to_owned());
        }
    }
    if s.bearer_session {
        let auth = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = auth.trim().split_once(' ')?;
        let token = token.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
            return Some(token.to_owned());
        }
    }
    None
}

pin_project! {
    /// Response future of [`AuditContext`]: the inner future, then the request id set
    /// on the response.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        header: Option<(HeaderName, HeaderValue)>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.inner.poll(cx))?;
        if let Some((name, value)) = this.header.take() {
            res.headers_mut().entry(name).or_insert(value);
        }
        Poll::Ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            client_ip: ClientIp::new(),
            request_id_header: DEFAULT_REQUEST_ID_HEADER,
            session_cookie: Some("sid".into()),
            bearer_session: true,
        }
    }

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn request_id_validation() {
        assert!(valid_request_id(b"req-1"));
        assert!(!valid_request_id(b""));
        assert!(!valid_request_id(b"has space"));
        assert!(!valid_request_id("é".as_bytes()));
        assert!(!valid_request_id(&[b'a'; 129]));
        assert!(valid_request_id(&[b'a'; 128]));
        let a = generate_request_id();
        assert_ne!(a, generate_request_id());
        assert!(valid_request_id(a.as_bytes()));
    }

    #[test]
    fn session_from_cookie_then_bearer() {
        let s = settings();
        let p = parts(&[
            ("cookie", "a=1; sid=abc; b=2"),
            ("authorization", "Bearer tok"),
        ]);
        assert_eq!(session_secret(&p, &s).as_deref(), Some("abc"));
        let p = parts(&[("cookie", "sidx=1"), ("authorization", "bearer tok")]);
        assert_eq!(session_secret(&p, &s).as_deref(), Some("tok"));
        let p = parts(&[("authorization", "Basic dXNlcjpwdw==")]);
        assert_eq!(session_secret(&p, &s), None);
        let no_bearer = Settings {
            bearer_session: false,
            ..settings()
        };
        let p = parts(&[("authorization", "Bearer tok")]);
        assert_eq!(session_secret(&p, &no_bearer), None);
    }
}
