use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use sea_orm_audit::entity::login_attempt;
use sea_orm_audit::{
    BruteForcePolicy, GeoLocation, GeoLocator, LoginAttempt, LoginCheck, LoginStatus,
    RequestContext, check_login, check_login_at, guarded_login, record_login,
};
use sea_orm_audit_tests::backend_test;
use serde_json::json;

use crate::common::trail;

async fn attempts(
    db: &sea_orm::DatabaseConnection,
) -> Result<Vec<login_attempt::Model>, sea_orm::DbErr> {
    login_attempt::Entity::find()
        .order_by_asc(login_attempt::Column::Id)
        .all(db)
        .await
}

struct Lab;
impl GeoLocator for Lab {
    fn locate(&self, ip: IpAddr) -> Option<GeoLocation> {
        (ip.to_string() == "203.0.113.5").then(|| GeoLocation {
            country: Some("NL".into()),
            city: Some("Delft".into()),
        })
    }
}

backend_test!(async fn success_failure_logout_with_and_without_context(db) {
    let ctx = RequestContext::new()
        .ip("203.0.113.5")
        .user_agent("browser/1")
        .request_id("req-login");
    let ok = ctx
        .clone()
        .scope(record_login(
            &db.db,
            LoginAttempt::success("ada").actor("42", "Ada").geo_locator(Arc::new(Lab)),
        ))
        .await?;
    assert_eq!(ok.status, LoginStatus::Success);
    assert_eq!(ok.check, LoginCheck::Allowed);
    let bad = ctx
        .scope(record_login(&db.db, LoginAttempt::failed("ada", "bad password")))
        .await?;
    assert_eq!(bad.status, LoginStatus::Failed);
    // A script or API token: no request context at all.
    let bye = record_login(&db.db, LoginAttempt::logout("ada")).await?;
    let nobody = record_login(&db.db, LoginAttempt::failed(" \u{1b}[31mroot\n", "unknown user")).await?;

    let rows = attempts(&db.db).await?;
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].id, ok.attempt_id);
    assert_eq!(rows[0].status, "SUCCESS");
    assert_eq!(rows[0].ip_address.as_deref(), Some("203.0.113.5"));
    assert_eq!(rows[0].user_agent.as_deref(), Some("browser/1"));
    assert_eq!(rows[0].request_id.as_deref(), Some("req-login"));
    assert_eq!((rows[0].country.as_deref(), rows[0].city.as_deref()), (Some("NL"), Some("Delft")));
    assert_eq!(rows[1].status, "FAILED");
    assert_eq!(rows[1].failure_reason.as_deref(), Some("bad password"));
    assert!(rows[1].country.is_none(), "no locator given");
    assert_eq!(rows[2].status, "LOGOUT");
    assert!(rows[2].ip_address.is_none() && rows[2].request_id.is_none());
    assert_eq!(rows[3].username, "[31mroot", "control characters stripped");

    let audit = trail(&db.db).await?;
    let actions: Vec<&str> = audit.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["LOGIN", "LOGIN_FAILED", "LOGOUT", "LOGIN_FAILED"]);
    assert_eq!(audit[0].id, ok.audit_id.expect("audit row"));
    assert_eq!(audit[0].actor_id.as_deref(), Some("42"));
    assert_eq!(audit[0].actor_name.as_deref(), Some("Ada"));
    assert_eq!(audit[0].ip_address.as_deref(), Some("203.0.113.5"));
    assert_eq!(audit[0].object_repr.as_deref(), Some("ada"));
    assert_eq!(audit[0].metadata, Some(json!({"login_attempt_id": ok.attempt_id})));
    assert_eq!(
        audit[1].changes,
        Some(json!({"username": "ada", "status": "FAILED", "failure_reason": "bad password"}))
    );
    assert!(audit[2].actor_id.is_none() && audit[2].ip_address.is_none());
    assert_eq!(bye.audit_id, Some(audit[2].id));
    assert_eq!(nobody.status, LoginStatus::Failed);

    // Skipping the LOGIN action skips the audit row, never the login_attempt row.
    let skipped = sea_orm_audit::AuditConfig::new()
        .skip_action("LOGIN")
        .scope(record_login(&db.db, LoginAttempt::success("ada")))
        .await?;
    assert_eq!(skipped.audit_id, None);
    assert_eq!(attempts(&db.db).await?.len(), 5);
    assert_eq!(trail(&db.db).await?.len(), 4);
    Ok(())
});

async fn failed_at<C: sea_orm::ConnectionTrait>(
    db: &C,
    user: &str,
    ip: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    login_attempt::Entity::insert(login_attempt::ActiveModel {
        id: NotSet,
        username: Set(user.into()),
        status: Set("FAILED".into()),
        ip_address: Set(ip.map(str::to_owned)),
        user_agent: Set(None),
        failure_reason: Set(Some("bad password".into())),
        country: Set(None),
        city: Set(None),
        request_id: Set(None),
        created_at: Set(at),
    })
    .exec(db)
    .await?;
    Ok(())
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-29T00:59:30Z")
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

backend_test!(async fn lock_window_and_expiry_boundaries_in_utc(db) {
    let policy = BruteForcePolicy {
        max_failures_per_username: 3,
        max_failures_per_ip: 0,
        window: TimeDelta::seconds(60),
        lock_duration: TimeDelta::seconds(100),
    };
    let us = TimeDelta::microseconds;
    let t = t0(); // a DST change night in Europe: irrelevant in UTC, which is the point
    // eve: 3 failures within 59.999999 s -> locked until the third + 100 s.
    failed_at(&db.db, "eve", None, t).await?;
    failed_at(&db.db, "eve", None, t + TimeDelta::seconds(20)).await?;
    let third = t + TimeDelta::seconds(60) - us(1);
    failed_at(&db.db, "eve", None, third).await?;
    let end = third + TimeDelta::seconds(100);

    assert_eq!(check_login_at(&db.db, "eve", &policy, third - us(1)).await?, LoginCheck::Allowed);
    match check_login_at(&db.db, "eve", &policy, third).await? {
        LoginCheck::Blocked { retry_after, reason } => {
            assert_eq!(retry_after, end);
            assert!(reason.contains("username"), "{reason}");
        }
        other => panic!("expected a lock, got {other:?}"),
    }
    assert!(!check_login_at(&db.db, "eve", &policy, end - us(1)).await?.is_allowed());
    assert_eq!(check_login_at(&db.db, "eve", &policy, end).await?, LoginCheck::Allowed);

    // mallory: 3 failures spread over exactly the window: no lock.
    for s in [0, 30, 60] {
        failed_at(&db.db, "mallory", None, t + TimeDelta::seconds(s)).await?;
    }
    assert_eq!(
        check_login_at(&db.db, "mallory", &policy, t + TimeDelta::seconds(61)).await?,
        LoginCheck::Allowed
    );
    // Other users are not affected by eve's lock.
    assert!(check_login_at(&db.db, "ada", &policy, third).await?.is_allowed());

    // Two refusals were recorded as BLOCKED (login_attempt + LOGIN_FAILED rows).
    let blocked = login_attempt::Entity::find()
        .filter(login_attempt::Column::Status.eq("BLOCKED"))
        .all(&db.db)
        .await?;
    assert_eq!(blocked.len(), 2);
    assert!(blocked.iter().all(|b| b.username == "eve"));
    let audit = trail(&db.db).await?;
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|r| r.action == "LOGIN_FAILED"
        && r.changes.as_ref().is_some_and(|c| c["status"] == "BLOCKED")));
    Ok(())
});

backend_test!(async fn ip_limit_spans_usernames(db) {
    let policy = BruteForcePolicy {
        max_failures_per_username: 0,
        max_failures_per_ip: 3,
        window: TimeDelta::minutes(10),
        lock_duration: TimeDelta::minutes(10),
    };
    let now = Utc::now();
    for (i, user) in ["a", "b", "c"].iter().enumerate() {
        failed_at(&db.db, user, Some("198.51.100.9"), now - TimeDelta::seconds(30 - i as i64)).await?;
    }
    let from_there = RequestContext::new().ip("198.51.100.9");
    let elsewhere = RequestContext::new().ip("198.51.100.10");
    match from_there.scope(check_login(&db.db, "d", &policy)).await? {
        LoginCheck::Blocked { reason, retry_after } => {
            assert!(reason.contains("IP"), "{reason}");
            assert!(retry_after > now);
        }
        other => panic!("expected a lock, got {other:?}"),
    }
    assert!(elsewhere.scope(check_login(&db.db, "d", &policy)).await?.is_allowed());
    // No context: no IP to count, so only the (disabled) username limit applies.
    assert!(check_login(&db.db, "d", &policy).await?.is_allowed());
    // Nothing to lock at all (both limits off, or no IP): still recorded.
    let off = BruteForcePolicy { max_failures_per_username: 0, max_failures_per_ip: 0, ..policy.clone() };
    let rec = record_login(&db.db, LoginAttempt::failed("d", "bad").policy(off.clone())).await?;
    assert_eq!((rec.status, rec.check), (LoginStatus::Failed, LoginCheck::Allowed));
    let rec = guarded_login(&db.db, "d", &policy, || async { Err("bad".to_owned()) }).await?;
    assert_eq!(rec.status, LoginStatus::Failed);
    Ok(())
});

backend_test!(async fn concurrent_failures_never_pass_the_limit(db) {
    let policy = BruteForcePolicy {
        max_failures_per_username: 5,
        max_failures_per_ip: 0,
        window: TimeDelta::minutes(15),
        lock_duration: TimeDelta::minutes(15),
    };
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let conn = db.db.clone();
        let p = policy.clone();
        set.spawn(async move {
            let ctx = RequestContext::new().ip(&format!("192.0.2.{i}"));
            record_login(&conn, LoginAttempt::failed("victim", "bad password").policy(p).context(ctx)).await
        });
    }
    let mut records = Vec::new();
    while let Some(r) = set.join_next().await {
        records.push(r??);
    }
    let failed: Vec<_> = records.iter().filter(|r| r.status == LoginStatus::Failed).collect();
    let blocked: Vec<_> = records.iter().filter(|r| r.status == LoginStatus::Blocked).collect();
    assert_eq!((failed.len(), blocked.len()), (5, 15));
    // The failure that reached the limit already answers "locked".
    assert_eq!(failed.iter().filter(|r| !r.check.is_allowed()).count(), 1);
    assert!(blocked.iter().all(|r| !r.check.is_allowed()));

    let rows = attempts(&db.db).await?;
    assert_eq!(rows.iter().filter(|r| r.status == "FAILED").count(), 5);
    assert_eq!(rows.iter().filter(|r| r.status == "BLOCKED").count(), 15);
    // Stored in lock order: the five FAILED rows are the five oldest.
    let mut by_time = rows.clone();
    by_time.sort_by_key(|r| (r.created_at, r.id));
    assert!(by_time[..5].iter().all(|r| r.status == "FAILED"));
    assert_eq!(trail(&db.db).await?.len(), 20);
    assert!(!check_login(&db.db, "victim", &policy).await?.is_allowed());

    // Again through a second pool of several connections (on SQLite the harness pool has
    // one connection, which would serialise the callers by itself).
    let pool = db.connect_again().await?;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let conn = pool.clone();
        let p = policy.clone();
        set.spawn(async move {
            record_login(&conn, LoginAttempt::failed("second", "bad password").policy(p)).await
        });
    }
    let mut statuses = Vec::new();
    while let Some(r) = set.join_next().await {
        statuses.push(r??.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == LoginStatus::Failed).count(), 5);
    assert_eq!(statuses.iter().filter(|s| **s == LoginStatus::Blocked).count(), 7);
    Ok(())
});

backend_test!(async fn guarded_login_bounds_password_checks(db) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let policy = BruteForcePolicy {
        max_failures_per_username: 5,
        max_failures_per_ip: 0,
        window: TimeDelta::minutes(15),
        lock_duration: TimeDelta::minutes(15),
    };
    let checks = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let conn = db.db.clone();
        let p = policy.clone();
        let checks = Arc::clone(&checks);
        set.spawn(async move {
            guarded_login(&conn, "target", &p, || async move {
                checks.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await; // a password hash
                Err("bad password".to_owned())
            })
            .await
        });
    }
    let mut statuses = Vec::new();
    while let Some(r) = set.join_next().await {
        statuses.push(r??.status);
    }
    assert_eq!(checks.load(Ordering::SeqCst), 5, "exactly the limit of password checks ran");
    assert_eq!(statuses.iter().filter(|s| **s == LoginStatus::Failed).count(), 5);
    assert_eq!(statuses.iter().filter(|s| **s == LoginStatus::Blocked).count(), 15);

    // Right password for another user: SUCCESS, a LOGIN row.
    let ok = guarded_login(&db.db, "other", &policy, || async { Ok(()) }).await?;
    assert_eq!((ok.status, ok.check.clone()), (LoginStatus::Success, LoginCheck::Allowed));
    // The locked user is refused without a password check.
    let before = checks.load(Ordering::SeqCst);
    let refused = guarded_login(&db.db, "target", &policy, || async { Ok(()) }).await?;
    assert_eq!(refused.status, LoginStatus::Blocked);
    assert!(!refused.check.is_allowed());
    assert_eq!(checks.load(Ordering::SeqCst), before);
    let rows = attempts(&db.db).await?;
    assert_eq!(rows.len(), 22);
    assert_eq!(rows.iter().filter(|r| r.status == "SUCCESS").count(), 1);
    Ok(())
});
