//! Middleware for axum and any other tower stack (feature `middleware`).
//!
//! - [`AuditContextLayer`] attributes every audited write of a request to its actor,
//!   client IP, user agent, session hash and request id.
//! - [`SecurityLayer`] records suspicious, slow and failing requests as `system_event`
//!   rows and can block the suspicious ones.
//! - [`ClientIp`] finds the client address behind trusted proxies; both layers use it.
//!
//! Each has a module of its own ([`context`], [`security`], [`client_ip`]) whose docs
//! explain it with an example.
//!
//! Put the context layer outside the security layer, so that security events carry the
//! request id and actor of the audit trail:
//!
//! ```
//! use sea_orm_audit::middleware::{AuditContextLayer, ClientIp, SecurityLayer};
//! use tower::ServiceBuilder;
//!
//! # fn build(db: sea_orm::DatabaseConnection) -> Result<(), Box<dyn std::error::Error>> {
//! let layers = ServiceBuilder::new()
//!     .layer(AuditContextLayer::new().client_ip(ClientIp::new().trust_proxy("10.0.0.0/8")?))
//!     .layer(SecurityLayer::new(db));
//! // axum: Router::new().route(...).layer(layers)
//! # Ok(()) }
//! ```

// Public so that each middleware's own docs (and its response future) can be reached,
// as in tower-http; the items users name are re-exported flatly below.
pub mod client_ip;
pub mod context;
mod event_writer;
pub mod security;

pub use client_ip::{Cidr, ClientIp, ForwardedHeader, InvalidCidr};
pub use context::{
    AuditContext, AuditContextLayer, DEFAULT_REQUEST_ID_HEADER, DEFAULT_SESSION_COOKIE, NoActor,
    ResolveActor,
};
pub use security::{
    ADMIN_TOOLS, DEFAULT_SLOW_THRESHOLD, HANDLER_PANIC, INJECTION_MARKERS, RequestInfo, Rule,
    RuleSet, SCANNER_USER_AGENTS, SECRET_FILES, SERVER_ERROR, SLOW_REQUEST, Security, SecurityBody,
    SecurityLayer, SecurityStats,
};
