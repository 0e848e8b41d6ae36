//! Records hostile, slow and failing requests as `system_event` rows, and optionally
//! blocks the hostile ones.
//!
//! [`SecurityLayer`] checks each request against a [`RuleSet`] (path traversal, probes
//! for secret files and admin tools, injection markers in the path and query string,
//! scanner user agents, oversized headers) and watches the response: a request slower
//! than a threshold (5 s by default, measured on a monotonic clock until the response
//! body is done) becomes a `PERFORMANCE` event, a 5xx response an `ERROR` event, and a
//! panicking handler an `ERROR` event plus a plain 500 for the client.
//!
//! Events never delay or break a response. They are rate-limited and de-duplicated per
//! (client, rule) within a window, then handed to a background task through a bounded
//! queue that drops (and counts) what it cannot hold; the task writes them with the
//! `DatabaseConnection` given to the layer.
//!
//! Each row carries the rule name in `error_code`, the request's method, path, query
//! and user agent in `description`, and the path, client IP, request id and actor in
//! their own columns. Put [`AuditContextLayer`](super::AuditContextLayer) outside this
//! layer so that the IP, request id and actor are the ones of the audit trail.
//!
//! # Example
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use sea_orm::EntityTrait;
//! use sea_orm_audit::entity::system_event;
//! use sea_orm_audit::middleware::{AuditContextLayer, RuleSet, SecurityLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let db = sea_orm_audit::doc_fixtures::connect().await?;
//! # sea_orm_audit::doc_fixtures::create_table(&db, system_event::Entity).await?;
//! let security = SecurityLayer::new(db.clone())
//!     .rules(RuleSet::default().allow_path("/webhooks"))
//!     .blocking(true);
//! let svc = ServiceBuilder::new()
//!     .layer(AuditContextLayer::new())
//!     .layer(security.clone())
//!     .service(service_fn(|_: Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(String::from("hello")))
//!     }));
//!
//! let probe = Request::get("/app/.env").body(String::new())?;
//! assert_eq!(svc.clone().oneshot(probe).await?.status(), StatusCode::FORBIDDEN);
//! let fine = Request::get("/blog/postgresql-tips").body(String::new())?;
//! assert_eq!(svc.oneshot(fine).await?.status(), StatusCode::OK);
//!
//! security.flush().await;
//! let events = system_event::Entity::find().all(&db).await?;
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].event_type, "SECURITY");
//! assert_eq!(events[0].error_code.as_deref(), Some("secret_file_probe"));
//! assert_eq!(events[0].request_path.as_deref(), Some("/app/.env"));
//! # Ok(()) }
//! ```

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http::header::USER_AGENT;
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use sea_orm::DatabaseConnection;
use tower_layer::Layer;
use tower_service::Service;

use super::client_ip::ClientIp;
use super::event_writer::{Event, EventWriter, Limits, RequestMeta};
use crate::context::RequestContext;

/// The `module` column of the events this layer writes.
pub(super) const MODULE: &str = "sea_orm_audit::middleware::security";

/// Rule name of slow-request events.
pub const SLOW_REQUEST: &str = "slow_request";
/// Rule name of 5xx-response events.
pub const SERVER_ERROR: &str = "server_error";
/// Rule name of handler-panic events.
pub const HANDLER_PANIC: &str = "handler_panic";

// === rules ===

/// The parts of a request that rules look at, decoded once per request.
///
/// Paths and query strings are percent-decoded repeatedly (up to three rounds, so
/// `%252e` is seen as `.`), and the query's `+` is read as a space.
///
/// ```
/// use sea_orm_audit::middleware::RequestInfo;
///
/// let (parts, _) = http::Request::get("/a%2Fb?q=union+select").body(()).unwrap().into_parts();
/// let info = RequestInfo::new(&parts);
/// assert_eq!(info.path(), "/a/b");
/// assert_eq!(info.query(), "q=union select");
/// ```
#[derive(Debug)]
pub struct RequestInfo<'a> {
    method: &'a Method,
    raw_path: &'a str,
    path: String,
    query: String,
    headers: &'a HeaderMap,
    user_agent: String,
    // Derived once per request, shared by every rule.
    segments: Vec<String>,
    normal_path: String,
    normal_query: String,
    traversal: bool,
}

impl<'a> RequestInfo<'a> {
    /// Decodes what the rules need from `parts`.
    pub fn new(parts: &'a Parts) -> Self {
        let path = decode(parts.uri.path(), false);
        let query = decode(parts.uri.query().unwrap_or(""), true);
        let segments = path
            .split(['/', '\\'])
            .map(|s| s.split(';').next().unwrap_or(s).to_lowercase())
            .collect();
        let mut info = RequestInfo {
            method: &parts.method,
            raw_path: parts.uri.path(),
            normal_path: normalise(&path),
            normal_query: normalise(&query),
            path,
            query,
            headers: &parts.headers,
            user_agent: parts
                .headers
                .get(USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).to_lowercase())
                .unwrap_or_default(),
            segments,
            traversal: false,
        };
        info.traversal = has_traversal(&info);
        info
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The path as received (percent-encoded).
    pub fn raw_path(&self) -> &str {
        self.raw_path
    }

    /// The percent-decoded path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The percent-decoded query string, `""` when there is none.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// The user agent, lower-cased, `""` when there is none.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// The decoded path's segments (split on `/` and `\\`, `;params` cut off), lower-cased.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

type CustomCheck = dyn Fn(&RequestInfo<'_>) -> bool + Send + Sync;

#[derive(Clone)]
enum Check {
    Traversal,
    Segments(Vec<String>),
    Markers(Vec<String>),
    UserAgent(Vec<String>),
    Headers {
        max_value: usize,
        max_total: usize,
        max_count: usize,
    },
    Custom(Arc<CustomCheck>),
}

/// One named test of a request. A finding is recorded under the rule's name.
///
/// The built-in rules are the defaults of [`RuleSet::default`]; the other constructors
/// make rules of the same kinds with other words, or any test at all with
/// [`Rule::custom`].
///
/// ```
/// use sea_orm_audit::middleware::{RequestInfo, Rule};
///
/// let rule = Rule::path_segments("legacy_probe", ["cgi-bin", "old-admin*"]);
/// let req = http::Request::get("/x/Old-Admin2/login").body(()).unwrap();
/// assert!(rule.matches(&RequestInfo::new(&req.into_parts().0)));
/// let req = http::Request::get("/blog/old-admins-retire").body(()).unwrap();
/// assert!(rule.matches(&RequestInfo::new(&req.into_parts().0)), "prefix pattern");
/// let req = http::Request::get("/cgi-bin-guide").body(()).unwrap();
/// assert!(!rule.matches(&RequestInfo::new(&req.into_parts().0)), "segments, not substrings");
/// ```
#[derive(Clone)]
pub struct Rule {
    name: Cow<'static, str>,
    check: Check,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule").field("name", &self.name).finish()
    }
}

/// Secret files probed for by scanners; `*` at the end matches any suffix.
pub const SECRET_FILES: &[&str] = &[
    ".env*",
    ".git",
    ".gitconfig",
    ".svn",
    ".hg",
    ".htaccess",
    ".htpasswd",
    ".aws",
    ".ssh",
    ".ds_store",
    ".npmrc",
    ".pgpass",
    ".bash_history",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "wp-config.php*",
];

/// Admin tools and known-vulnerable endpoints probed for by scanners. The site's own
/// `/admin` is deliberately absent.
pub const ADMIN_TOOLS: &[&str] = &[
    "wp-admin",
    "wp-login.php",
    "xmlrpc.php",
    "phpmyadmin*",
    "pma",
    "myadmin",
    "adminer*",
    "phpinfo.php",
    "server-status",
    "eval-stdin.php",
    "cgi-bin",
];

/// Injection markers looked for in the decoded, lower-cased path and query string,
/// with runs of whitespace and SQL comments read as one space.
pub const INJECTION_MARKERS: &[&str] = &[
    "union select",
    "union all select",
    "' or 1=1",
    "'or 1=1",
    "\" or 1=1",
    " or 1=1--",
    "' or '1'='1",
    "\" or \"1\"=\"1",
    "'--",
    "; drop table",
    "pg_sleep(",
    "sleep(",
    "benchmark(",
    "waitfor delay",
    "information_schema",
    "xp_cmdshell",
    "load_file(",
    "into outfile",
    "<script",
    "</script",
    "javascript:",
    "onerror=",
    "onload=",
    "<svg",
    "<iframe",
    "document.cookie",
    "${jndi:",
];

/// User agents of security scanners, matched as whole words (`nmap`, not `unmapped`).
/// Search-engine crawlers are deliberately absent.
pub const SCANNER_USER_AGENTS: &[&str] = &[
    "sqlmap",
    "nikto",
    "nmap",
    "masscan",
    "zgrab",
    "nuclei",
    "wpscan",
    "dirbuster",
    "gobuster",
    "ffuf",
    "feroxbuster",
    "acunetix",
    "nessus",
    "openvas",
    "w3af",
    "havij",
    "zmeu",
    "commix",
    "arachni",
    "skipfish",
];

fn owned<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    items
        .into_iter()
        .map(|s| s.as_ref().to_lowercase())
        .collect()
}

impl Rule {
    /// `path_traversal`: a `..` path segment (also encoded, double-encoded, with
    /// backslashes or overlong UTF-8), `../` in the query string, or a NUL byte.
    ///
    /// The built-in rules are all used the same way:
    ///
    /// ```
    /// use sea_orm_audit::middleware::{RequestInfo, Rule};
    ///
    /// let check = |rule: &Rule, uri: &str, ua: &str| {
    ///     let req = http::Request::get(uri).header("user-agent", ua).body(()).unwrap();
    ///     rule.matches(&RequestInfo::new(&req.into_parts().0))
    /// };
    /// assert!(check(&Rule::path_traversal(), "/static/%252e%252e/etc/passwd", ""));
    /// assert!(!check(&Rule::path_traversal(), "/docs/v1..v2", ""));
    /// assert!(check(&Rule::secret_files(), "/app/.env.local", ""));
    /// assert!(check(&Rule::admin_tools(), "/wp-admin/", ""));
    /// assert!(!check(&Rule::admin_tools(), "/admin-guide", ""));
    /// assert!(check(&Rule::injection(), "/items?id=1+UNION/**/SELECT+1", ""));
    /// assert!(!check(&Rule::injection(), "/blog/postgresql-tips", ""));
    /// assert!(check(&Rule::scanner_user_agents(), "/", "sqlmap/1.7"));
    /// assert!(!check(&Rule::scanner_user_agents(), "/", "Googlebot/2.1"));
    /// ```
    pub fn path_traversal() -> Self {
        Rule {
            name: Cow::Borrowed("path_traversal"),
            check: Check::Traversal,
        }
    }

    /// `secret_file_probe`: a path segment from [`SECRET_FILES`].
    pub fn secret_files() -> Self {
        Self::path_segments("secret_file_probe", SECRET_FILES)
    }

    /// `admin_tool_probe`: a path segment from [`ADMIN_TOOLS`].
    pub fn admin_tools() -> Self {
        Self::path_segments("admin_tool_probe", ADMIN_TOOLS)
    }

    /// `injection`: a marker from [`INJECTION_MARKERS`] in the path or query string.
    pub fn injection() -> Self {
        Self::markers("injection", INJECTION_MARKERS)
    }

    /// `scanner_user_agent`: a word from [`SCANNER_USER_AGENTS`] in the user agent.
    pub fn scanner_user_agents() -> Self {
        Self::user_agent_words("scanner_user_agent", SCANNER_USER_AGENTS)
    }

    /// `oversized_headers`: a header value over 8 KiB, over 32 KiB of headers in all,
    /// or more than 100 headers.
    pub fn oversized_headers() -> Self {
        Self::header_limits("oversized_headers", 8 * 1024, 32 * 1024, 100)
    }

    /// A header-size rule with other limits (bytes of one value, bytes of all names and
    /// values, number of headers).
    pub fn header_limits(
        name: impl Into<Cow<'static, str>>,
        max_value: usize,
        max_total: usize,
        max_count: usize,
    ) -> Self {
        Rule {
            name: name.into(),
            check: Check::Headers {
                max_value,
                max_total,
                max_count,
            },
        }
    }

    /// Fires when a decoded path segment equals one of `patterns` (case-insensitively);
    /// a pattern ending in `*` matches segments starting with the rest.
    pub fn path_segments<I, S>(name: impl Into<Cow<'static, str>>, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Rule {
            name: name.into(),
            check: Check::Segments(owned(patterns)),
        }
    }

    /// Fires when the decoded, normalised path or query string contains one of
    /// `markers` (see [`INJECTION_MARKERS`]).
    pub fn markers<I, S>(name: impl Into<Cow<'static, str>>, markers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Rule {
            name: name.into(),
            check: Check::Markers(owned(markers)),
        }
    }

    /// Fires when the user agent contains one of `words` as a whole word.
    pub fn user_agent_words<I, S>(name: impl Into<Cow<'static, str>>, words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Rule {
            name: name.into(),
            check: Check::UserAgent(owned(words)),
        }
    }

    /// Fires when `check` returns `true`.
    ///
    /// ```
    /// use sea_orm_audit::middleware::{Rule, RuleSet};
    ///
    /// let rules = RuleSet::default().with(Rule::custom("trace_method", |req| {
    ///     req.method() == http::Method::TRACE
    /// }));
    /// ```
    pub fn custom<F>(name: impl Into<Cow<'static, str>>, check: F) -> Self
    where
        F: Fn(&RequestInfo<'_>) -> bool + Send + Sync + 'static,
    {
        Rule {
            name: name.into(),
            check: Check::Custom(Arc::new(check)),
        }
    }

    /// The rule's name, stored in `system_event.error_code`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the request described by `req` matches.
    pub fn matches(&self, req: &RequestInfo<'_>) -> bool {
        match &self.check {
            Check::Traversal => req.traversal,
            Check::Segments(patterns) => req.segments.iter().any(|seg| {
                !seg.is_empty()
                    && patterns.iter().any(|p| match p.strip_suffix('*') {
                        Some(prefix) => seg.starts_with(prefix),
                        None => *seg == *p,
                    })
            }),
            Check::Markers(markers) => markers.iter().any(|m| {
                req.normal_path.contains(m.as_str()) || req.normal_query.contains(m.as_str())
            }),
            Check::UserAgent(words) => words.iter().any(|w| contains_word(&req.user_agent, w)),
            Check::Headers {
                max_value,
                max_total,
                max_count,
            } => {
                let mut total = 0;
                for (name, value) in req.headers {
                    if value.len() > *max_value {
                        return true;
                    }
                    total += name.as_str().len() + value.len();
                }
                total > *max_total || req.headers.len() > *max_count
            }
            Check::Custom(f) => f(req),
        }
    }
}

/// The rules a [`SecurityLayer`] applies, and where they do not apply.
///
/// The default set holds [`Rule::path_traversal`], [`Rule::secret_files`],
/// [`Rule::admin_tools`], [`Rule::injection`], [`Rule::scanner_user_agents`] and
/// [`Rule::oversized_headers`].
///
/// ```
/// use sea_orm_audit::middleware::{Rule, RuleSet};
///
/// let rules = RuleSet::default()
///     .without("admin_tool_probe")                        // we run WordPress on purpose
///     .with(Rule::path_segments("actuator", ["actuator"])) // and no Spring
///     .allow_path("/webhooks")                            // partners send odd payloads
///     .allow_rule_on_path("injection", "/docs/sql");       // SQL tutorials
///
/// let req = http::Request::get("/docs/sql/union+select").body(()).unwrap();
/// assert!(rules.findings(&req.into_parts().0).is_empty());
/// let req = http::Request::get("/x/.env").body(()).unwrap();
/// assert_eq!(rules.findings(&req.into_parts().0), ["secret_file_probe"]);
/// ```
#[derive(Clone, Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    allow: Vec<(Option<String>, String)>,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet::empty()
            .with(Rule::path_traversal())
            .with(Rule::secret_files())
            .with(Rule::admin_tools())
            .with(Rule::injection())
            .with(Rule::scanner_user_agents())
            .with(Rule::oversized_headers())
    }
}

impl RuleSet {
    /// No rules.
    pub fn empty() -> Self {
        RuleSet {
            rules: Vec::new(),
            allow: Vec::new(),
        }
    }

    /// Adds `rule`, replacing a rule of the same name.
    pub fn with(mut self, rule: Rule) -> Self {
        self.rules.retain(|r| r.name != rule.name);
        self.rules.push(rule);
        self
    }

    /// Removes the rule called `name`.
    pub fn without(mut self, name: &str) -> Self {
        self.rules.retain(|r| r.name != name);
        self
    }

    /// No rule applies to `prefix` and the paths below it (`/hooks` covers `/hooks` and
    /// `/hooks/x`, not `/hooksx`). A path with a `..` segment is never allowed, so
    /// `/hooks/../.env` is still checked. Slow, 5xx and panic events are still recorded
    /// there; exempt them by name with [`RuleSet::allow_rule_on_path`].
    pub fn allow_path(mut self, prefix: impl Into<String>) -> Self {
        self.allow.push((None, prefix.into()));
        self
    }

    /// The rule called `rule` does not apply to `prefix` and the paths below it. `rule`
    /// may also be [`SLOW_REQUEST`] (for long-polling or streaming endpoints),
    /// [`SERVER_ERROR`] or [`HANDLER_PANIC`].
    pub fn allow_rule_on_path(
        mut self,
        rule: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Self {
        self.allow.push((Some(rule.into()), prefix.into()));
        self
    }

    /// The names of the rules in the set.
    ///
    /// ```
    /// # use sea_orm_audit::middleware::RuleSet;
    /// assert!(RuleSet::default().names().any(|n| n == "injection"));
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(Rule::name)
    }

    /// The names of the rules the request matches, allowlists applied.
    ///
    /// ```
    /// # use sea_orm_audit::middleware::RuleSet;
    /// let req = http::Request::get("/.git/../wp-admin/").body(()).unwrap();
    /// let found = RuleSet::default().findings(&req.into_parts().0);
    /// assert_eq!(found, ["path_traversal", "secret_file_probe", "admin_tool_probe"]);
    /// ```
    pub fn findings(&self, parts: &Parts) -> Vec<String> {
        self.check(&RequestInfo::new(parts))
    }

    /// Whether an allowlist entry exempts `info` from the rule (or the response-side
    /// event: [`SLOW_REQUEST`], [`SERVER_ERROR`], [`HANDLER_PANIC`]) called `rule`.
    ///
    /// ```
    /// # use sea_orm_audit::middleware::{RequestInfo, RuleSet, SLOW_REQUEST};
    /// let rules = RuleSet::default().allow_rule_on_path(SLOW_REQUEST, "/stream");
    /// let (parts, _) = http::Request::get("/stream/live").body(()).unwrap().into_parts();
    /// assert!(rules.allows(SLOW_REQUEST, &RequestInfo::new(&parts)));
    /// ```
    pub fn allows(&self, rule: &str, info: &RequestInfo<'_>) -> bool {
        // A whole-path entry is about hostile input; slow, failing and panicking handlers
        // there are still worth knowing about unless named explicitly.
        let response_side = [SLOW_REQUEST, SERVER_ERROR, HANDLER_PANIC].contains(&rule);
        !info.traversal
            && self.allow.iter().any(|(r, prefix)| {
                r.as_deref().map_or(!response_side, |r| r == rule) && under(&info.path, prefix)
            })
    }

    fn check(&self, info: &RequestInfo<'_>) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| !self.allows(&r.name, info) && r.matches(info))
            .map(|r| r.name.to_string())
            .collect()
    }
}

fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn has_traversal(req: &RequestInfo<'_>) -> bool {
    let raw = req.raw_path.to_ascii_lowercase();
    req.segments.iter().any(|s| s == ".." || s == ".%2e" || s == "%2e.")
        || req.path.contains('\0')
        || req.query.contains('\0')
        // Overlong UTF-8 for '.' and '/', which some old servers decoded.
        || raw.contains("%c0%ae")
        || raw.contains("%c0%af")
        || req.query.contains("../")
        || req.query.contains("..\\")
        || req.query.ends_with("/..")
}

/// Percent-decodes up to three times (so double encoding is seen through); invalid
/// escapes stay as they are.
fn decode(s: &str, query: bool) -> String {
    let mut cur = if query {
        s.replace('+', " ")
    } else {
        s.to_owned()
    };
    for _ in 0..3 {
        if !cur.contains('%') {
            break;
        }
        let next = decode_once(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

fn decode_once(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Lower-cases, reads SQL comments (`/**/`, `/*x*/`) and runs of whitespace as one space.
fn normalise(s: &str) -> String {
    let lower = s.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut rest = lower.as_str();
    let mut space = false;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("/*") {
            let end = rest[2..].find("*/").map_or(rest.len(), |i| i + 4);
            rest = &rest[end..];
            space = true;
            continue;
        }
        rest = &rest[c.len_utf8()..];
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

fn contains_word(haystack: &str, word: &str) -> bool {
    haystack.match_indices(word).any(|(i, _)| {
        let before = haystack[..i].chars().next_back();
        let after = haystack[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

// === layer ===

#[derive(Clone, Debug)]
struct Config {
    rules: RuleSet,
    client_ip: ClientIp,
    blocking: bool,
    slow: Option<Duration>,
}

/// What happened to the findings of a [`SecurityLayer`] so far.
///
/// ```
/// # use sea_orm_audit::middleware::SecurityStats;
/// let stats = SecurityStats::default();
/// assert_eq!(stats.queued + stats.suppressed + stats.dropped, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecurityStats {
    /// Findings handed to the writer task.
    pub queued: u64,
    /// Findings not recorded: a repeat of the same (client, rule) within the window, or
    /// over the window's bound.
    pub suppressed: u64,
    /// Findings lost because the queue was full (or no tokio runtime was running).
    pub dropped: u64,
    /// Events written to `system_event`.
    pub written: u64,
    /// Events whose insert failed.
    pub failed: u64,
}

/// Layer that records suspicious, slow and failing requests. See the [module
/// docs](self).
///
/// ```
/// use std::time::Duration;
/// use sea_orm_audit::middleware::{RuleSet, SecurityLayer};
///
/// # fn build(db: sea_orm::DatabaseConnection) {
/// let layer = SecurityLayer::new(db)
///     .rules(RuleSet::default().without("oversized_headers"))
///     .slow_threshold(Some(Duration::from_secs(2)))
///     .rate_limit(Duration::from_secs(60), 50)
///     .queue_capacity(256)
///     .blocking(false);
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SecurityLayer {
    config: Arc<Config>,
    writer: Arc<EventWriter>,
}

/// Default slow-request threshold.
pub const DEFAULT_SLOW_THRESHOLD: Duration = Duration::from_secs(5);

impl SecurityLayer {
    /// The default rules, not blocking, 5 s slow threshold, at most 100 events a minute
    /// (one per client and rule), a queue of 1024 events; events are written with `db`.
    ///
    /// The writer task is started on the tokio runtime that serves the first finding
    /// and lives as long as the layer; build one layer per runtime.
    pub fn new(db: DatabaseConnection) -> Self {
        SecurityLayer {
            config: Arc::new(Config {
                rules: RuleSet::default(),
                client_ip: ClientIp::new(),
                blocking: false,
                slow: Some(DEFAULT_SLOW_THRESHOLD),
            }),
            writer: Arc::new(EventWriter::new(
                db,
                Limits {
                    window: Duration::from_secs(60),
                    max_per_window: 100,
                    queue: 1024,
                },
            )),
        }
    }

    /// Replaces the rule set.
    pub fn rules(mut self, rules: RuleSet) -> Self {
        Arc::make_mut(&mut self.config).rules = rules;
        self
    }

    /// How to find the client IP when no [`AuditContextLayer`](super::AuditContextLayer)
    /// runs outside this layer (with one, its IP is used).
    pub fn client_ip(mut self, client_ip: ClientIp) -> Self {
        Arc::make_mut(&mut self.config).client_ip = client_ip;
        self
    }

    /// Answers requests that match a rule with 403 before they reach the handler.
    pub fn blocking(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).blocking = on;
        self
    }

    /// Requests slower than `threshold` become PERFORMANCE events; `None` turns that off.
    pub fn slow_threshold(mut self, threshold: Option<Duration>) -> Self {
        Arc::make_mut(&mut self.config).slow = threshold;
        self
    }

    /// At most one event per (client, rule) and `max_events` events in all per
    /// `window`. Set it while building: it starts a new writer.
    pub fn rate_limit(self, window: Duration, max_events: usize) -> Self {
        let limits = Limits {
            window,
            max_per_window: max_events,
            ..self.writer.limits()
        };
        self.with_limits(limits)
    }

    /// How many events may wait for the writer task before new ones are dropped. Set it
    /// while building: it starts a new writer.
    pub fn queue_capacity(self, capacity: usize) -> Self {
        let limits = Limits {
            queue: capacity,
            ..self.writer.limits()
        };
        self.with_limits(limits)
    }

    fn with_limits(mut self, limits: Limits) -> Self {
        self.writer = Arc::new(EventWriter::new(self.writer.db().clone(), limits));
        self
    }

    /// Counts of queued, suppressed, dropped, written and failed events. A growing
    /// `failed` count usually means the `system_event` migration has not been run.
    ///
    /// ```
    /// # use sea_orm_audit::middleware::SecurityLayer;
    /// # async fn f(layer: SecurityLayer) {
    /// layer.flush().await;
    /// let stats = layer.stats();
    /// println!("{} written, {} suppressed, {} dropped", stats.written, stats.suppressed, stats.dropped);
    /// # }
    /// ```
    pub fn stats(&self) -> SecurityStats {
        let c = &self.writer.counters;
        SecurityStats {
            queued: c.queued.load(Ordering::Relaxed),
            suppressed: c.suppressed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Waits until the events queued so far are written. For tests and shutdown.
    pub async fn flush(&self) {
        self.writer.flush().await;
    }
}

impl<S> Layer<S> for SecurityLayer {
    type Service = Security<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Security {
            inner,
            config: Arc::clone(&self.config),
            writer: Arc::clone(&self.writer),
        }
    }
}

/// Service that records suspicious, slow and failing requests; made by
/// [`SecurityLayer`].
///
/// ```
/// # async fn f(db: sea_orm::DatabaseConnection) {
/// use sea_orm_audit::middleware::{Security, SecurityLayer};
/// use tower_layer::Layer;
///
/// let svc: Security<_> = SecurityLayer::new(db).layer(tower::service_fn(
///     |_: http::Request<String>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) },
/// ));
/// let _inner = svc.get_ref();
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Security<S> {
    inner: S,
    config: Arc<Config>,
    writer: Arc<EventWriter>,
}

impl<S> Security<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Security<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<SecurityBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let (parts, body) = req.into_parts();
        let rules = &self.config.rules;
        let info = RequestInfo::new(&parts);
        let findings = rules.check(&info);
        let exempt = Exempt {
            slow: rules.allows(SLOW_REQUEST, &info),
            error: rules.allows(SERVER_ERROR, &info),
            panic: rules.allows(HANDLER_PANIC, &info),
        };
        drop(info);
        let meta = Arc::new(self.meta(&parts));
        for rule in &findings {
            self.writer.record(Event {
                event_type: "SECURITY",
                rule: Cow::Owned(rule.clone()),
                title: format!("Suspicious request ({rule})"),
                detail: self.config.blocking.then(|| "blocked with 403".to_owned()),
                meta: Arc::clone(&meta),
            });
        }
        let watch = Watch {
            meta,
            start,
            slow: self.config.slow.filter(|_| !exempt.slow),
            exempt,
            writer: Arc::clone(&self.writer),
        };
        if self.config.blocking && !findings.is_empty() {
            return ResponseFuture::ready(StatusCode::FORBIDDEN);
        }
        let req = Request::from_parts(parts, body);
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(fut) => ResponseFuture {
                inner: Some(fut),
                watch: Some(watch),
                ready: None,
            },
            Err(panic) => {
                watch.panicked(&*panic);
                ResponseFuture::ready(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl<S> Security<S> {
    fn meta(&self, parts: &Parts) -> RequestMeta {
        let ctx = parts.extensions.get::<RequestContext>();
        RequestMeta {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            ip: ctx
                .and_then(RequestContext::ip_address)
                .or_else(|| self.config.client_ip.resolve(parts)),
            user_agent: parts
                .headers
                .get(USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            request_id: ctx.and_then(|c| c.request_id_str().map(str::to_owned)),
            actor_id: ctx.and_then(|c| c.actor_id().map(str::to_owned)),
            actor_name: ctx.and_then(|c| c.actor_name().map(str::to_owned)),
        }
    }
}

/// Which response-side events an allowlist entry switched off for a request.
#[derive(Clone, Copy, Debug)]
struct Exempt {
    slow: bool,
    error: bool,
    panic: bool,
}

/// Watches one request until its response body is done.
#[derive(Debug)]
struct Watch {
    meta: Arc<RequestMeta>,
    start: Instant,
    slow: Option<Duration>,
    exempt: Exempt,
    writer: Arc<EventWriter>,
}

impl Watch {
    fn record(
        &self,
        event_type: &'static str,
        rule: &'static str,
        title: String,
        detail: Option<String>,
    ) {
        self.writer.record(Event {
            event_type,
            rule: Cow::Borrowed(rule),
            title,
            detail,
            meta: Arc::clone(&self.meta),
        });
    }

    fn panicked(&self, payload: &(dyn Any + Send)) {
        if self.exempt.panic {
            return;
        }
        let msg = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(non-string panic payload)");
        self.record(
            "ERROR",
            HANDLER_PANIC,
            format!("Handler panicked: {msg}"),
            Some(format!("panic: {msg}")),
        );
    }

    fn status(&self, status: StatusCode) {
        if status.is_server_error() && !self.exempt.error {
            self.record(
                "ERROR",
                SERVER_ERROR,
                format!("Server error: {status}"),
                Some(format!("status: {}", status.as_u16())),
            );
        }
    }
}

/// Fires when the response body is done or dropped, whichever comes first.
#[derive(Debug)]
struct BodyTimer(Watch);

impl Drop for BodyTimer {
    fn drop(&mut self) {
        let w = &self.0;
        let elapsed = w.start.elapsed();
        if let Some(threshold) = w.slow
            && elapsed > threshold
        {
            w.record(
                "PERFORMANCE",
                SLOW_REQUEST,
                format!("Slow request: {:.2} s", elapsed.as_secs_f64()),
                Some(format!(
                    "duration: {} ms (threshold {} ms)",
                    elapsed.as_millis(),
                    threshold.as_millis()
                )),
            );
        }
    }
}

pin_project! {
    /// Response future of [`Security`]: the handler's future with panics caught.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        watch: Option<Watch>,
        ready: Option<StatusCode>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F> ResponseFuture<F> {
    fn ready(status: StatusCode) -> Self {
        ResponseFuture {
            inner: None,
            watch: None,
            ready: Some(status),
        }
    }
}

fn plain<B>(status: StatusCode) -> Response<SecurityBody<B>> {
    let mut res = Response::new(SecurityBody::empty());
    *res.status_mut() = status;
    res
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<SecurityBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(status) = this.ready.take() {
            return Poll::Ready(Ok(plain(status)));
        }
        let Some(fut) = this.inner.as_mut().as_pin_mut() else {
            panic!("ResponseFuture polled after completion");
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
        if let Ok(Poll::Pending) = outcome {
            return Poll::Pending;
        }
        // A future that panicked may panic again when dropped; the client still gets its 500.
        let _ = catch_unwind(AssertUnwindSafe(|| this.inner.set(None)));
        let watch = this.watch.take().expect("set until the future completes");
        match outcome {
            Ok(Poll::Pending) => unreachable!("returned above"),
            Ok(Poll::Ready(Err(e))) => Poll::Ready(Err(e)),
            Ok(Poll::Ready(Ok(res))) => {
                watch.status(res.status());
                Poll::Ready(Ok(res.map(|body| SecurityBody {
                    inner: Some(body),
                    timer: Some(BodyTimer(watch)),
                })))
            }
            Err(panic) => {
                watch.panicked(&*panic);
                Poll::Ready(Ok(plain(StatusCode::INTERNAL_SERVER_ERROR)))
            }
        }
    }
}

pin_project! {
    /// Response body of [`Security`]: the handler's body, timed until it is done. Empty
    /// for the 403 and 500 answers the layer makes itself.
    pub struct SecurityBody<B> {
        #[pin]
        inner: Option<B>,
        timer: Option<BodyTimer>,
    }
}

impl<B> SecurityBody<B> {
    fn empty() -> Self {
        SecurityBody {
            inner: None,
            timer: None,
        }
    }
}

impl<B> fmt::Debug for SecurityBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityBody").finish_non_exhaustive()
    }
}

impl<B: Body> Body for SecurityBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(inner.poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            this.timer.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(uri: &str, ua: Option<&str>) -> Vec<String> {
        let mut b = Request::get(uri);
        if let Some(ua) = ua {
            b = b.header(USER_AGENT, ua);
        }
        RuleSet::default().findings(&b.body(()).expect("request").into_parts().0)
    }

    #[test]
    fn probes_fire() {
        for (uri, rule) in [
            ("/../../etc/passwd", "path_traversal"),
            ("/static/%2e%2e/%2e%2e/etc/passwd", "path_traversal"),
            ("/static/%252e%252e/secret", "path_traversal"),
            ("/static/..%5c..%5cwin.ini", "path_traversal"),
            ("/static/%c0%ae%c0%ae/x", "path_traversal"),
            ("/download?file=../../etc/passwd", "path_traversal"),
            ("/download?file=..%2F..%2Fetc%2Fpasswd", "path_traversal"),
            ("/.env", "secret_file_probe"),
            ("/app/.env.production", "secret_file_probe"),
            ("/.git/config", "secret_file_probe"),
            ("/%2egit/HEAD", "secret_file_probe"),
            ("/wp-admin/setup.php", "admin_tool_probe"),
            ("/phpMyAdmin-5.2/index.php", "admin_tool_probe"),
            (
                "/items?id=1%20UNION%20SELECT%20password%20FROM%20users",
                "injection",
            ),
            ("/items?id=1/**/union/**/select/**/1", "injection"),
            ("/items?name=x'%20OR%201=1--", "injection"),
            ("/search?q=%3Cscript%3Ealert(1)%3C/script%3E", "injection"),
            ("/search/%3Cscript%3E", "injection"),
            ("/x?q=%24%7Bjndi:ldap://evil/a%7D", "injection"),
        ] {
            assert!(
                findings(uri, None).iter().any(|f| f == rule),
                "{uri} → {rule}"
            );
        }
        for ua in [
            "sqlmap/1.7.2#stable (https://sqlmap.org)",
            "Mozilla/5.00 (Nikto/2.1.6)",
            "Mozilla/5.0 (compatible; Nmap Scripting Engine)",
            "masscan/1.3",
            "Mozilla/5.0 zgrab/0.x",
        ] {
            assert_eq!(findings("/", Some(ua)), ["scanner_user_agent"], "{ua}");
        }
    }

    #[test]
    fn look_alikes_do_not_fire() {
        for uri in [
            "/blog/postgresql-tips",
            "/configuration",
            "/admin-guide",
            "/admin/users",
            "/backups-explained",
            "/seashells",
            "/docs/v1..v2",
            "/environment",
            "/.well-known/security.txt",
            "/blog/the-git-book",
            "/search?q=select+a+union+rep",
            "/search?q=rock+%26+roll&page=2",
            "/search?range=1..5",
            "/items?sort=-created_at",
            "/files/report.env.txt",
            "/cmd/shell-scripting",
        ] {
            assert!(
                findings(uri, None).is_empty(),
                "{uri}: {:?}",
                findings(uri, None)
            );
        }
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0)",
            "curl/8.5.0",
            "unmapped-client/1.0",
        ] {
            assert!(findings("/", Some(ua)).is_empty(), "{ua}");
        }
    }

    #[test]
    fn oversized_headers_fire() {
        let req = Request::get("/")
            .header("x-big", "a".repeat(9000))
            .body(())
            .expect("request");
        assert_eq!(
            RuleSet::default().findings(&req.into_parts().0),
            ["oversized_headers"]
        );
        let mut b = Request::get("/");
        for i in 0..101 {
            b = b.header(format!("x-h{i}"), "1");
        }
        let req = b.body(()).expect("request");
        assert_eq!(
            RuleSet::default().findings(&req.into_parts().0),
            ["oversized_headers"]
        );
    }

    #[test]
    fn allowlists() {
        let rules = RuleSet::default()
            .allow_path("/hooks/")
            .allow_rule_on_path("injection", "/docs");
        let f = |uri: &str| rules.findings(&Request::get(uri).body(()).expect("r").into_parts().0);
        assert!(f("/hooks/x?q=%3Cscript%3E").is_empty());
        assert!(f("/hooks").is_empty());
        assert_eq!(f("/hooksx/.env"), ["secret_file_probe"]);
        assert!(
            !f("/hooks/../.env").is_empty(),
            "traversal escapes allowlists"
        );
        assert!(f("/docs/union%20select").is_empty());
        assert_eq!(f("/docs/.env"), ["secret_file_probe"]);
        let info_parts = Request::get("/hooks/x").body(()).expect("r").into_parts().0;
        let info = RequestInfo::new(&info_parts);
        assert!(rules.allows("injection", &info));
        assert!(!rules.allows(SLOW_REQUEST, &info), "named explicitly only");
        let streams = RuleSet::default().allow_rule_on_path(SLOW_REQUEST, "/hooks");
        assert!(streams.allows(SLOW_REQUEST, &info));
        assert!(!streams.allows("injection", &info));
        let rules = RuleSet::default().without("injection");
        assert!(
            rules
                .findings(
                    &Request::get("/?q=%3Cscript%3E")
                        .body(())
                        .expect("r")
                        .into_parts()
                        .0
                )
                .is_empty()
        );
    }

    #[test]
    fn decoding_and_normalising() {
        assert_eq!(decode("%252e%252e", false), "..");
        assert_eq!(decode("%zz%41", false), "%zzA");
        assert_eq!(decode("a+b", true), "a b");
        assert_eq!(decode("a+b", false), "a+b");
        assert_eq!(normalise("UNION/**/ALL\t\nSELECT"), "union all select");
        assert!(contains_word("nmap scripting", "nmap"));
        assert!(!contains_word("unmapped", "nmap"));
    }
}
