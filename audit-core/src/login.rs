//! Sign-ins, failed sign-ins, sign-outs, and brute-force protection.
//!
//! Every attempt writes a `login_attempt` row (the data brute-force checks count) and
//! a matching `audit_log` row (LOGIN, LOGIN_FAILED or LOGOUT) so the trail tells the
//! whole story. Nothing here needs a request: without a [`RequestContext`] the IP is
//! null, not an error.
//!
//! # Brute-force protection
//!
//! A [`BruteForcePolicy`] locks a username (and, separately, an IP address) once
//! `max_failures_*` FAILED attempts lie less than `window` apart; the lock lasts
//! `lock_duration` from the failure that reached the limit (at exactly that instant the
//! next attempt is allowed). All times are UTC. The login handler calls
//! [`check_login`] before verifying a password and refuses when it answers
//! [`LoginCheck::Blocked`] (the refusal is recorded as BLOCKED), then reports the
//! outcome with [`record_login`], attaching the policy to failures.
//!
//! [`guarded_login`] does check, verification and recording under one lock, for
//! applications that want the limit to bound password checks too.
//!
//! Concurrency: a failure recorded with a policy takes a per-username and per-IP lock
//! (an advisory lock on PostgreSQL, a row lock on MySQL/MariaDB, the write lock on
//! SQLite), counts, and inserts under it. However many failures arrive at once, at
//! most the limit are stored as FAILED inside one window; the rest are stored as
//! BLOCKED and answered with [`LoginCheck::Blocked`]. Pass a plain connection or a
//! READ COMMITTED transaction: under a snapshot isolation level started earlier, the
//! count could not see rows other callers committed meanwhile.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionSession, TransactionTrait,
};
use serde_json::json;

use crate::backend;
use crate::context::RequestContext;
use crate::entity::login_attempt;
use crate::error::AuditError;
use crate::events::{self, AuditEvent};
use crate::text;

/// Longest username kept, in characters.
pub const MAX_USERNAME_CHARS: usize = 255;
/// Longest failure reason kept, in characters.
pub const MAX_FAILURE_REASON_CHARS: usize = 255;
/// Longest country or city kept, in characters.
pub const MAX_PLACE_CHARS: usize = 100;

/// What a `login_attempt` row records.
///
/// ```
/// use sea_orm_audit::LoginStatus;
/// assert_eq!(LoginStatus::Blocked.as_str(), "BLOCKED");
/// assert_eq!(LoginStatus::Logout.audit_action(), "LOGOUT");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoginStatus {
    /// The user signed in.
    Success,
    /// Wrong credentials (or any other refusal by the application).
    Failed,
    /// Refused by brute-force protection before (or instead of) checking credentials.
    Blocked,
    /// The user signed out.
    Logout,
}

impl LoginStatus {
    /// The stored word: SUCCESS, FAILED, BLOCKED or LOGOUT.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginStatus::Success => "SUCCESS",
            LoginStatus::Failed => "FAILED",
            LoginStatus::Blocked => "BLOCKED",
            LoginStatus::Logout => "LOGOUT",
        }
    }

    /// The matching `audit_log` action: LOGIN, LOGIN_FAILED (also for BLOCKED) or LOGOUT.
    pub fn audit_action(self) -> &'static str {
        match self {
            LoginStatus::Success => events::ACTION_LOGIN,
            LoginStatus::Failed | LoginStatus::Blocked => events::ACTION_LOGIN_FAILED,
            LoginStatus::Logout => events::ACTION_LOGOUT,
        }
    }
}

/// Limits on failed sign-ins. A limit of 0 switches that check off.
///
/// A [`BruteForcePolicy`] locks a username (and, separately, an IP address) once
/// `max_failures_*` FAILED attempts lie less than `window` apart; the lock lasts
/// `lock_duration` from the failure that reached the limit (at exactly that instant the
/// next attempt is allowed). All times are UTC. The login handler calls
/// [`check_login`] before verifying a password and refuses when it answers
/// [`LoginCheck::Blocked`] (the refusal is recorded as BLOCKED), then reports the
/// outcome with [`record_login`], attaching the policy to failures.
///
/// Concurrency: a failure recorded with a policy takes a per-username and per-IP lock
/// (an advisory lock on PostgreSQL, a row lock on MySQL/MariaDB, the write lock on
/// SQLite), counts, and inserts under it. However many failures arrive at once, at
/// most the limit are stored as FAILED inside one window; the rest are stored as
/// BLOCKED and answered with [`LoginCheck::Blocked`]. Pass a plain connection or a
/// READ COMMITTED transaction: under a snapshot isolation level started earlier, the
/// count could not see rows other callers committed meanwhile.
///
/// ```
/// use chrono::TimeDelta;
/// use sea_orm_audit::BruteForcePolicy;
///
/// let policy = BruteForcePolicy {
///     max_failures_per_username: 5,
///     max_failures_per_ip: 20,
///     window: TimeDelta::minutes(15),
///     lock_duration: TimeDelta::minutes(30),
/// };
/// assert_eq!(BruteForcePolicy::default().max_failures_per_username, 5);
/// # let _ = policy;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BruteForcePolicy {
    /// FAILED attempts for one username within `window` that lock it.
    pub max_failures_per_username: u32,
    /// FAILED attempts from one IP address within `window` that lock it.
    pub max_failures_per_ip: u32,
    /// How close together the failures must be.
    pub window: TimeDelta,
    /// How long the lock lasts, from the failure that reached the limit.
    pub lock_duration: TimeDelta,
}

impl Default for BruteForcePolicy {
    /// 5 failures per username or 20 per IP within 15 minutes lock for 15 minutes.
    fn default() -> Self {
        Self {
            max_failures_per_username: 5,
            max_failures_per_ip: 20,
            window: TimeDelta::minutes(15),
            lock_duration: TimeDelta::minutes(15),
        }
    }
}

/// The answer of [`check_login`] (and of a failure recorded with a policy).
///
/// ```
/// use sea_orm_audit::LoginCheck;
/// assert!(LoginCheck::Allowed.is_allowed());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginCheck {
    /// Go ahead and verify the credentials.
    Allowed,
    /// Refuse; try again at `retry_after` (UTC) at the earliest.
    Blocked {
        /// When the lock ends.
        retry_after: DateTime<Utc>,
        /// Which limit was hit, for logs (do not show it to the client).
        reason: String,
    },
}

impl LoginCheck {
    /// Whether the attempt may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, LoginCheck::Allowed)
    }
}

/// Where an IP address is, as far as the application knows.
///
/// ```
/// use sea_orm_audit::GeoLocation;
/// let here = GeoLocation { country: Some("FR".into()), city: Some("Lyon".into()) };
/// # let _ = here;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeoLocation {
    /// Country name or ISO code.
    pub country: Option<String>,
    /// City name.
    pub city: Option<String>,
}

/// Resolves an IP address to a place, implemented by the application (for example
/// with a local GeoIP database). The library ships no implementation and never makes
/// a network call; keep `locate` fast, it runs inline with the recording.
///
/// ```
/// use std::net::IpAddr;
/// use sea_orm_audit::{GeoLocation, GeoLocator};
///
/// struct Office;
/// impl GeoLocator for Office {
///     fn locate(&self, ip: IpAddr) -> Option<GeoLocation> {
///         ip.is_loopback().then(|| GeoLocation { country: Some("NL".into()), city: Some("Delft".into()) })
///     }
/// }
/// assert!(Office.locate("127.0.0.1".parse().unwrap()).is_some());
/// ```
pub trait GeoLocator: Send + Sync {
    /// The place of `ip`, if known.
    fn locate(&self, ip: IpAddr) -> Option<GeoLocation>;
}

/// One authentication event to record with [`record_login`].
///
/// ```
/// use sea_orm_audit::{BruteForcePolicy, LoginAttempt};
/// let ok = LoginAttempt::success("ada").actor("42", "Ada Lovelace");
/// let bad = LoginAttempt::failed("ada", "bad password").policy(BruteForcePolicy::default());
/// let bye = LoginAttempt::logout("ada");
/// # let _ = (ok, bad, bye);
/// ```
#[derive(Clone)]
#[must_use]
pub struct LoginAttempt {
    username: String,
    status: LoginStatus,
    failure_reason: Option<String>,
    actor: Option<(String, String)>,
    context: Option<RequestContext>,
    policy: Option<BruteForcePolicy>,
    locator: Option<Arc<dyn GeoLocator>>,
}

impl std::fmt::Debug for LoginAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginAttempt")
            .field("username", &self.username)
            .field("status", &self.status)
            .field("failure_reason", &self.failure_reason)
            .field("policy", &self.policy)
            .field("locator", &self.locator.is_some())
            .finish_non_exhaustive()
    }
}

impl LoginAttempt {
    fn new(username: &str, status: LoginStatus, reason: Option<&str>) -> Self {
        Self {
            username: clean_username(username),
            status,
            failure_reason: reason
                .and_then(|r| text::bounded_opt(text::strip_control(r), MAX_FAILURE_REASON_CHARS)),
            actor: None,
            context: None,
            policy: None,
            locator: None,
        }
    }

    /// A successful sign-in.
    pub fn success(username: &str) -> Self {
        Self::new(username, LoginStatus::Success, None)
    }

    /// A failed sign-in and why ("bad password", "unknown user", "2FA failed", ...).
    pub fn failed(username: &str, reason: &str) -> Self {
        Self::new(username, LoginStatus::Failed, Some(reason))
    }

    /// A sign-out.
    pub fn logout(username: &str) -> Self {
        Self::new(username, LoginStatus::Logout, None)
    }

    /// The actor stamped on the `audit_log` row (on sign-in the request context often
    /// has no user yet). Defaults to the context's actor.
    pub fn actor(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.actor = Some((id.into(), name.into()));
        self
    }

    /// Uses this context (IP, user agent, request id) instead of the task's.
    pub fn context(mut self, ctx: RequestContext) -> Self {
        self.context = Some(ctx);
        self
    }

    /// Applies brute-force bookkeeping to a failure (see [`BruteForcePolicy`]): the
    /// failure is counted under a lock and stored as BLOCKED when over the limit.
    pub fn policy(mut self, policy: BruteForcePolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Fills country and city from the IP address with `locator`.
    pub fn geo_locator(mut self, locator: Arc<dyn GeoLocator>) -> Self {
        self.locator = Some(locator);
        self
    }
}

/// What [`record_login`] stored.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{LoginAttempt, LoginStatus, record_login};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = connect_all().await?;
/// let rec = record_login(&db, LoginAttempt::logout("ada")).await?;
/// assert_eq!(rec.status, LoginStatus::Logout);
/// assert!(rec.audit_id.is_some() && rec.check.is_allowed());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginRecord {
    /// Id of the `login_attempt` row.
    pub attempt_id: i64,
    /// Id of the `audit_log` row; `None` when its action is skipped by configuration.
    pub audit_id: Option<i64>,
    /// The status stored: a failure over the limit is stored as BLOCKED.
    pub status: LoginStatus,
    /// For a failure recorded with a policy: whether the username or IP is now locked.
    /// [`LoginCheck::Allowed`] otherwise.
    pub check: LoginCheck,
}

fn clean_username(name: &str) -> String {
    text::bounded(&text::strip_control(name.trim()), MAX_USERNAME_CHARS)
}

fn lock_names(username: &str, ip: Option<IpAddr>, policy: &BruteForcePolicy) -> Vec<String> {
    let mut names = Vec::with_capacity(2);
    if policy.max_failures_per_username > 0 {
        names.push(format!("sea-orm-audit:login:user:{username}"));
    }
    if let (Some(ip), true) = (ip, policy.max_failures_per_ip > 0) {
        names.push(format!("sea-orm-audit:login:ip:{ip}"));
    }
    names
}

/// Newest FAILED times for one key, newest first, as many as the limit.
async fn recent_failures<C: ConnectionTrait>(
    db: &C,
    filter: sea_orm::sea_query::SimpleExpr,
    max: u32,
    policy: &BruteForcePolicy,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, AuditError> {
    let since = now
        .checked_sub_signed(policy.window)
        .and_then(|t| t.checked_sub_signed(policy.lock_duration))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let select = login_attempt::Entity::find()
        .select_only()
        .column(login_attempt::Column::CreatedAt)
        .filter(filter)
        .filter(login_attempt::Column::Status.eq(LoginStatus::Failed.as_str()))
        .filter(
            login_attempt::Column::CreatedAt
                .gt(backend::clamp_ts(db.get_database_backend(), since)),
        )
        .filter(
            login_attempt::Column::CreatedAt.lte(backend::clamp_ts(db.get_database_backend(), now)),
        )
        .order_by_desc(login_attempt::Column::CreatedAt)
        .limit(u64::from(max));
    let select = backend::current_read(db.get_database_backend(), select);
    select
        .into_tuple::<DateTime<Utc>>()
        .all(db)
        .await
        .map_err(|e| crate::events::classify(e, "login_attempt"))
}

/// When the lock formed by `times` (newest first) ends, if it is still on at `now`.
fn lock_end(
    times: &[DateTime<Utc>],
    max: u32,
    policy: &BruteForcePolicy,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let max = usize::try_from(max).ok()?;
    if max == 0 || times.len() < max {
        return None;
    }
    let (newest, oldest) = (times[0], times[max - 1]);
    let end = newest
        .checked_add_signed(policy.lock_duration)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    (newest - oldest < policy.window && now < end).then_some(end)
}

struct KeyState {
    what: &'static str,
    times: Vec<DateTime<Utc>>,
    max: u32,
}

async fn key_states<C: ConnectionTrait>(
    db: &C,
    username: &str,
    ip: Option<IpAddr>,
    policy: &BruteForcePolicy,
    now: DateTime<Utc>,
) -> Result<Vec<KeyState>, AuditError> {
    let mut out = Vec::with_capacity(2);
    if policy.max_failures_per_username > 0 {
        let max = policy.max_failures_per_username;
        let filter = login_attempt::Column::Username.eq(username);
        out.push(KeyState {
            what: "too many failed sign-ins for this username",
            times: recent_failures(db, filter, max, policy, now).await?,
            max,
        });
    }
    if let (Some(ip), true) = (ip, policy.max_failures_per_ip > 0) {
        let max = policy.max_failures_per_ip;
        let filter = login_attempt::Column::IpAddress.eq(ip.to_string());
        out.push(KeyState {
            what: "too many failed sign-ins from this IP address",
            times: recent_failures(db, filter, max, policy, now).await?,
            max,
        });
    }
    Ok(out)
}

/// Counts a failure at `now` against every key, then decides again: the verdict the
/// next attempt will get.
fn verdict_after_failure(
    states: &mut [KeyState],
    policy: &BruteForcePolicy,
    now: DateTime<Utc>,
) -> LoginCheck {
    for s in states.iter_mut() {
        s.times.insert(0, now);
    }
    verdict(states, policy, now)
}

fn verdict(states: &[KeyState], policy: &BruteForcePolicy, now: DateTime<Utc>) -> LoginCheck {
    let mut worst: Option<(DateTime<Utc>, &'static str)> = None;
    for s in states {
        if let Some(end) = lock_end(&s.times, s.max, policy, now)
            && worst.is_none_or(|(w, _)| end > w)
        {
            worst = Some((end, s.what));
        }
    }
    match worst {
        Some((retry_after, what)) => LoginCheck::Blocked {
            retry_after,
            reason: what.to_owned(),
        },
        None => LoginCheck::Allowed,
    }
}

struct Stamp {
    ctx: Option<Arc<RequestContext>>,
    ip: Option<IpAddr>,
}

fn stamp(explicit: Option<RequestContext>) -> Stamp {
    let ctx = events::resolve_context(explicit);
    let ip = ctx.as_ref().and_then(|c| c.ip_address());
    Stamp { ctx, ip }
}

#[allow(clippy::too_many_arguments)]
async fn insert_rows<C: ConnectionTrait>(
    db: &C,
    username: &str,
    status: LoginStatus,
    failure_reason: Option<String>,
    place: GeoLocation,
    stamp: &Stamp,
    actor: Option<(String, String)>,
    now: DateTime<Utc>,
) -> Result<(i64, Option<i64>), AuditError> {
    let ctx = stamp.ctx.as_deref();
    let row = login_attempt::ActiveModel {
        id: NotSet,
        username: Set(username.to_owned()),
        status: Set(status.as_str().to_owned()),
        ip_address: Set(stamp.ip.map(|ip| ip.to_string())),
        user_agent: Set(ctx.and_then(|c| c.user_agent_str().map(str::to_owned))),
        failure_reason: Set(failure_reason.clone()),
        country: Set(place
            .country
            .and_then(|c| text::bounded_opt(c, MAX_PLACE_CHARS))),
        city: Set(place
            .city
            .and_then(|c| text::bounded_opt(c, MAX_PLACE_CHARS))),
        request_id: Set(ctx.and_then(|c| c.request_id_str().map(str::to_owned))),
        created_at: Set(now),
    };
    let attempt_id = login_attempt::Entity::insert(row)
        .exec(db)
        .await
        .map_err(|e| crate::events::classify(e, "login_attempt"))?
        .last_insert_id;

    let action = status.audit_action();
    if events::is_skipped(action) {
        return Ok((attempt_id, None));
    }
    let mut changes = json!({"username": username, "status": status.as_str()});
    if let Some(r) = &failure_reason {
        changes["failure_reason"] = json!(r);
    }
    let event = AuditEvent::new(action)?
        .repr(username)
        .changes(changes)
        .metadata(json!({"login_attempt_id": attempt_id}))
        .module(module_path!());
    let audit_ctx = match actor {
        Some((id, name)) => Some(ctx.cloned().unwrap_or_default().actor(id, name)),
        None => ctx.cloned(),
    };
    let audit_id = events::insert_entry(db, event, audit_ctx.as_ref()).await?;
    Ok((attempt_id, Some(audit_id)))
}

/// Records a sign-in, failed sign-in or sign-out: a `login_attempt` row and an
/// `audit_log` row (LOGIN, LOGIN_FAILED or LOGOUT), in one transaction (a savepoint
/// when `db` is already a transaction).
///
/// The `login_attempt` row is written even when the audit action is skipped by
/// configuration, because brute-force protection counts it.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{LoginAttempt, LoginCheck, LoginStatus, RequestContext, record_login};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = connect_all().await?;
/// let ctx = RequestContext::new().ip("198.51.100.4").request_id("r-9");
/// let rec = ctx.scope(record_login(&db, LoginAttempt::failed("ada", "bad password"))).await?;
/// assert_eq!(rec.status, LoginStatus::Failed);
/// assert_eq!(rec.check, LoginCheck::Allowed);
///
/// // No request at all (a script): the IP is simply null.
/// let rec = record_login(&db, LoginAttempt::success("ada").actor("42", "Ada")).await?;
/// assert_eq!(rec.status, LoginStatus::Success);
/// # Ok(()) }
/// ```
pub async fn record_login<C>(db: &C, attempt: LoginAttempt) -> Result<LoginRecord, AuditError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let LoginAttempt {
        username,
        status,
        failure_reason,
        actor,
        context,
        policy,
        locator,
    } = attempt;
    let stamp = stamp(context);
    let place = match (&locator, stamp.ip) {
        (Some(l), Some(ip)) => l.locate(ip).unwrap_or_default(),
        _ => GeoLocation::default(),
    };
    let txn = db.begin().await?;
    let (status, failure_reason, check, now) = match (&policy, status) {
        (Some(policy), LoginStatus::Failed) => {
            backend::lock_keys(&txn, &lock_names(&username, stamp.ip, policy)).await?;
            // Read the clock only once the lock is ours, so rows are stamped in lock order.
            let now = Utc::now();
            let mut states = key_states(&txn, &username, stamp.ip, policy, now).await?;
            match verdict(&states, policy, now) {
                LoginCheck::Allowed => {
                    let after = verdict_after_failure(&mut states, policy, now);
                    (LoginStatus::Failed, failure_reason, after, now)
                }
                LoginCheck::Blocked {
                    retry_after,
                    reason,
                } => (
                    LoginStatus::Blocked,
                    Some(reason.clone()),
                    LoginCheck::Blocked {
                        retry_after,
                        reason,
                    },
                    now,
                ),
            }
        }
        (_, status) => (status, failure_reason, LoginCheck::Allowed, Utc::now()),
    };
    let (attempt_id, audit_id) = insert_rows(
        &txn,
        &username,
        status,
        failure_reason,
        place,
        &stamp,
        actor,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(LoginRecord {
        attempt_id,
        audit_id,
        status,
        check,
    })
}

/// Whether `username` (and the current request's IP) may try to sign in now. Call it
/// before verifying credentials. When the answer is [`LoginCheck::Blocked`], the
/// refused attempt is recorded as BLOCKED (a `login_attempt` row and a LOGIN_FAILED
/// `audit_log` row).
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{BruteForcePolicy, LoginCheck, check_login};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = connect_all().await?;
/// match check_login(&db, "ada", &BruteForcePolicy::default()).await? {
///     LoginCheck::Allowed => { /* verify the password, then record_login(...) */ }
///     LoginCheck::Blocked { retry_after, .. } => { /* 429 with Retry-After */ let _ = retry_after; }
/// }
/// # Ok(()) }
/// ```
pub async fn check_login<C>(
    db: &C,
    username: &str,
    policy: &BruteForcePolicy,
) -> Result<LoginCheck, AuditError>
where
    C: ConnectionTrait + TransactionTrait,
{
    check_login_at(db, username, policy, Utc::now()).await
}

/// [`check_login`] at a given instant, for callers with their own clock (and tests).
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use chrono::Utc;
/// use sea_orm_audit::{BruteForcePolicy, check_login_at};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = connect_all().await?;
/// let answer = check_login_at(&db, "ada", &BruteForcePolicy::default(), Utc::now()).await?;
/// assert!(answer.is_allowed());
/// # Ok(()) }
/// ```
pub async fn check_login_at<C>(
    db: &C,
    username: &str,
    policy: &BruteForcePolicy,
    now: DateTime<Utc>,
) -> Result<LoginCheck, AuditError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let username = clean_username(username);
    let now = backend::clamp_ts(db.get_database_backend(), now);
    let stamp = stamp(None);
    let states = key_states(db, &username, stamp.ip, policy, now).await?;
    let answer = verdict(&states, policy, now);
    if let LoginCheck::Blocked { reason, .. } = &answer {
        let txn = db.begin().await?;
        insert_rows(
            &txn,
            &username,
            LoginStatus::Blocked,
            Some(reason.clone()),
            GeoLocation::default(),
            &stamp,
            None,
            now,
        )
        .await?;
        txn.commit().await?;
    }
    Ok(answer)
}

/// Checks the limits, verifies the credentials and records the outcome while holding
/// the per-username and per-IP lock, so that concurrent attempts never get more
/// password checks than the limit allows (which [`check_login`] followed by
/// [`record_login`] cannot promise: requests that pass the check together are each
/// verified once).
///
/// `verify` runs only when the attempt is allowed; it returns `Ok(())` for valid
/// credentials or `Err(reason)` for a failure. A locked username or IP is recorded as
/// BLOCKED without calling it. The price: attempts for the same username (or IP) wait
/// for each other's verification, and each holds a database connection meanwhile.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::connect_all;
/// use sea_orm_audit::{BruteForcePolicy, LoginStatus, guarded_login};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = connect_all().await?;
/// let rec = guarded_login(&db, "ada", &BruteForcePolicy::default(), || async {
///     // check the password hash here
///     Err::<(), _>("bad password".to_owned())
/// })
/// .await?;
/// assert_eq!(rec.status, LoginStatus::Failed);
/// # Ok(()) }
/// ```
pub async fn guarded_login<C, F, Fut>(
    db: &C,
    username: &str,
    policy: &BruteForcePolicy,
    verify: F,
) -> Result<LoginRecord, AuditError>
where
    C: ConnectionTrait + TransactionTrait,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let username = clean_username(username);
    let stamp = stamp(None);
    let txn = db.begin().await?;
    backend::lock_keys(&txn, &lock_names(&username, stamp.ip, policy)).await?;
    let checked_at = Utc::now();
    let mut states = key_states(&txn, &username, stamp.ip, policy, checked_at).await?;
    let (status, reason, check) = match verdict(&states, policy, checked_at) {
        LoginCheck::Blocked {
            retry_after,
            reason,
        } => (
            LoginStatus::Blocked,
            Some(reason.clone()),
            LoginCheck::Blocked {
                retry_after,
                reason,
            },
        ),
        LoginCheck::Allowed => match verify().await {
            Ok(()) => (LoginStatus::Success, None, LoginCheck::Allowed),
            Err(why) => {
                let now = Utc::now();
                let reason = text::bounded_opt(text::strip_control(&why), MAX_FAILURE_REASON_CHARS);
                (
                    LoginStatus::Failed,
                    reason,
                    verdict_after_failure(&mut states, policy, now),
                )
            }
        },
    };
    let (attempt_id, audit_id) = insert_rows(
        &txn,
        &username,
        status,
        reason,
        GeoLocation::default(),
        &stamp,
        None,
        Utc::now(),
    )
    .await?;
    txn.commit().await?;
    Ok(LoginRecord {
        attempt_id,
        audit_id,
        status,
        check,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    #[test]
    fn lock_forms_within_window_and_ends_after_duration() {
        let p = BruteForcePolicy {
            max_failures_per_username: 3,
            max_failures_per_ip: 0,
            window: TimeDelta::seconds(60),
            lock_duration: TimeDelta::seconds(100),
        };
        let times = [t(50), t(20), t(0)];
        assert_eq!(lock_end(&times, 3, &p, t(60)), Some(t(150)));
        assert_eq!(lock_end(&times, 3, &p, t(149)), Some(t(150)));
        assert_eq!(lock_end(&times, 3, &p, t(150)), None);
        // Spread over exactly the window: no lock.
        assert_eq!(lock_end(&[t(60), t(20), t(0)], 3, &p, t(61)), None);
        assert_eq!(lock_end(&[t(20), t(0)], 3, &p, t(21)), None);
        assert_eq!(lock_end(&times, 0, &p, t(60)), None);
    }

    #[test]
    fn extreme_durations_do_not_panic() {
        let p = BruteForcePolicy {
            max_failures_per_username: 1,
            max_failures_per_ip: 0,
            window: TimeDelta::MAX,
            lock_duration: TimeDelta::MAX,
        };
        assert_eq!(
            lock_end(&[t(0)], 1, &p, t(1)),
            Some(DateTime::<Utc>::MAX_UTC)
        );
        let neg = BruteForcePolicy {
            window: TimeDelta::MIN,
            lock_duration: TimeDelta::MIN,
            ..p
        };
        assert_eq!(lock_end(&[t(0)], 1, &neg, t(1)), None);
    }

    #[test]
    fn usernames_are_cleaned_and_bounded() {
        assert_eq!(clean_username("  ada\n"), "ada");
        assert_eq!(clean_username(&"x".repeat(300)).chars().count(), 255);
    }
}
