use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ConnectionTrait, EntityTrait};
use sea_orm_audit::entity::{audit_log, login_attempt, system_event};
use sea_orm_audit::{AuditSummary, SummaryFilter, audit_summary};
use sea_orm_audit_tests::backend_test;

/// Midnight (UTC) of day `d` of the known data set, which starts on `base`.
fn day(base: NaiveDate, d: u32) -> DateTime<Utc> {
    (base + Days::new(u64::from(d) - 1))
        .and_hms_opt(0, 0, 0)
        .map(|n| n.and_utc())
        .unwrap_or_default()
}

/// The first day of the known data set: a year and more before today, so that windows
/// ending now (`last_days`) never reach it, whatever the date.
fn base() -> NaiveDate {
    Utc::now().date_naive() - Days::new(400)
}

async fn log<C: ConnectionTrait>(
    db: &C,
    action: &str,
    table: Option<&str>,
    actor: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    audit_log::Entity::insert(audit_log::ActiveModel {
        id: NotSet,
        action: Set(action.into()),
        table_name: Set(table.map(str::to_owned)),
        object_pk: Set(Some("1".into())),
        object_repr: Set(None),
        changes: Set(None),
        actor_id: Set(actor.map(str::to_owned)),
        actor_name: Set(actor.map(|a| format!("name of {a}"))),
        ip_address: Set(None),
        user_agent: Set(None),
        session_hash: Set(None),
        request_id: Set(None),
        reason: Set(None),
        module: Set(None),
        metadata: Set(None),
        created_at: Set(at),
    })
    .exec(db)
    .await?;
    Ok(())
}

async fn login<C: ConnectionTrait>(
    db: &C,
    user: &str,
    status: &str,
    at: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    login_attempt::Entity::insert(login_attempt::ActiveModel {
        id: NotSet,
        username: Set(user.into()),
        status: Set(status.into()),
        ip_address: Set(None),
        user_agent: Set(None),
        failure_reason: Set(None),
        country: Set(None),
        city: Set(None),
        request_id: Set(None),
        created_at: Set(at),
    })
    .exec(db)
    .await?;
    Ok(())
}

async fn event<C: ConnectionTrait>(
    db: &C,
    kind: &str,
    resolved: bool,
    actor: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    system_event::Entity::insert(system_event::ActiveModel {
        id: NotSet,
        event_type: Set(kind.into()),
        title: Set("t".into()),
        description: Set(None),
        module: Set(None),
        function: Set(None),
        file: Set(None),
        line: Set(None),
        error_code: Set(None),
        stack_trace: Set(None),
        actor_id: Set(actor.map(str::to_owned)),
        actor_name: Set(None),
        ip_address: Set(None),
        request_path: Set(None),
        request_id: Set(None),
        resolved: Set(resolved),
        resolved_at: Set(None),
        resolved_by: Set(None),
        resolution_notes: Set(None),
        created_at: Set(at),
    })
    .exec(db)
    .await?;
    Ok(())
}

async fn seed<C: ConnectionTrait>(db: &C, base: NaiveDate) -> Result<(), sea_orm::DbErr> {
    let day = |d| day(base, d);
    let h = TimeDelta::hours;
    let (d1, d2, d3) = (day(1), day(2), day(3));
    log(db, "CREATE", Some("article"), Some("a1"), d1 + h(1)).await?;
    log(db, "CREATE", Some("article"), Some("a1"), d1 + h(2)).await?;
    log(db, "UPDATE", Some("article"), Some("a1"), d1 + h(3)).await?;
    log(
        db,
        "VIEW",
        Some("invoice"),
        Some("a2"),
        d1 + h(23) + TimeDelta::minutes(59),
    )
    .await?;
    log(db, "DELETE", Some("article"), Some("a2"), d2).await?;
    log(db, "EXPORT", Some("data_export"), Some("a1"), d2 + h(5)).await?;
    log(db, "LOGIN", None, Some("a3"), d2 + h(6)).await?;
    log(db, "UPDATE", Some("invoice"), Some("a2"), d3 + h(1)).await?;
    log(db, "UPDATE", Some("invoice"), Some("a2"), d3 + h(2)).await?;
    log(db, "VIEW", Some("invoice"), Some("a2"), d3 + h(23)).await?;
    // Just outside [day 1, day 4): not counted.
    log(db, "CREATE", Some("article"), Some("a1"), day(4)).await?;
    log(
        db,
        "CREATE",
        Some("article"),
        Some("a1"),
        d1 - TimeDelta::microseconds(1),
    )
    .await?;

    for (user, status) in [
        ("ada", "SUCCESS"),
        ("ada", "SUCCESS"),
        ("ada", "FAILED"),
        ("ada", "FAILED"),
        ("bob", "FAILED"),
        ("bob", "BLOCKED"),
        ("ada", "LOGOUT"),
    ] {
        login(db, user, status, d2 + h(8)).await?;
    }
    login(db, "ada", "FAILED", day(4) + h(1)).await?;

    event(db, "ERROR", true, None, d1 + h(4)).await?;
    event(db, "ERROR", false, Some("a2"), d2 + h(4)).await?;
    event(db, "WARNING", false, None, d3 + h(4)).await?;
    event(db, "INFO", true, None, d3 + h(5)).await?;
    event(db, "ERROR", false, None, day(4) + h(4)).await?;
    Ok(())
}

fn pairs(r: &[sea_orm_audit::Ranked]) -> Vec<(&str, i64)> {
    r.iter().map(|x| (x.key.as_str(), x.count)).collect()
}

backend_test!(async fn summary_numbers_on_a_known_data_set(db) {
    let base = base();
    let day = |d| day(base, d);
    seed(&db.db, base).await?;
    let f = SummaryFilter::range(day(1), day(4));
    let s = audit_summary(&db.db, &f).await?;
    assert_eq!(s.total_actions, 10);
    assert_eq!((s.creates, s.updates, s.deletes, s.views, s.exports), (2, 3, 1, 2, 1));
    assert_eq!(s.actions.get("LOGIN"), Some(&1));
    assert_eq!((s.logins, s.failed_logins, s.blocked_logins, s.logouts), (2, 3, 1, 1));
    assert_eq!((s.system_errors, s.unresolved_events), (2, 2));
    assert_eq!(s.events_by_type.get("INFO"), Some(&1));
    assert_eq!(pairs(&s.top_tables), [("article", 4), ("invoice", 4), ("data_export", 1)]);
    assert_eq!(pairs(&s.top_actors), [("a2", 5), ("a1", 4), ("a3", 1)]);
    assert_eq!(s.top_actors[0].label.as_deref(), Some("name of a2"));
    let per_day: Vec<(String, i64)> = s.per_day.iter().map(|d| (d.day.to_string(), d.count)).collect();
    let date = |d| day(d).date_naive().to_string();
    assert_eq!(per_day, [(date(1), 4), (date(2), 3), (date(3), 3)]);

    // Top N and the per-actor / per-username view.
    let s1 = audit_summary(&db.db, &f.clone().top(1)).await?;
    assert_eq!(pairs(&s1.top_actors), [("a2", 5)]);
    let a2 = audit_summary(&db.db, &f.clone().actor("a2").username("ada")).await?;
    assert_eq!(a2.total_actions, 5);
    assert_eq!((a2.views, a2.updates, a2.deletes, a2.creates), (2, 2, 1, 0));
    assert_eq!(pairs(&a2.top_actors), [("a2", 5)]);
    assert_eq!((a2.logins, a2.failed_logins, a2.blocked_logins, a2.logouts), (2, 2, 0, 1));
    assert_eq!((a2.system_errors, a2.unresolved_events), (1, 1));

    // A window with a day without activity lists that day with 0.
    let wide = audit_summary(&db.db, &SummaryFilter::range(day(1), day(6))).await?;
    assert_eq!(wide.per_day.len(), 5);
    assert_eq!(wide.per_day[4].count, 0);
    assert_eq!(wide.per_day[3].count, 1);
    assert_eq!(wide.total_actions, 11);

    // Serializable both ways.
    let json = serde_json::to_string(&s)?;
    let back: AuditSummary = serde_json::from_str(&json)?;
    assert_eq!(back, s);

    // Absurd ranges are answered (no day list past 1000 days), never a panic.
    let forever = audit_summary(&db.db, &SummaryFilter::last_days(u32::MAX)).await;
    let all = forever?;
    assert_eq!(all.total_actions, 12);
    assert_eq!(all.per_day.len(), 5, "only days with rows: the range is too long to fill");
    let far = SummaryFilter::range(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
    assert_eq!(audit_summary(&db.db, &far).await?.total_actions, 12);
    let backwards = audit_summary(&db.db, &SummaryFilter::range(day(4), day(1))).await?;
    assert_eq!((backwards.total_actions, backwards.per_day.len()), (0, 0));

    // The last 30 days: one row 10 days old is in, one 31 days old and the known data
    // set (400 days old) are out; every day of the window is listed.
    let now = Utc::now();
    log(&db.db, "VIEW", Some("invoice"), Some("a4"), now - TimeDelta::days(10)).await?;
    log(&db.db, "VIEW", Some("invoice"), Some("a5"), now - TimeDelta::days(31)).await?;
    let recent = audit_summary(&db.db, &SummaryFilter::last_days(30)).await?;
    assert_eq!(recent.total_actions, 1);
    assert_eq!(pairs(&recent.top_actors), [("a4", 1)]);
    assert_eq!(recent.per_day.len(), 31);
    assert_eq!(recent.per_day.iter().map(|d| d.count).sum::<i64>(), 1);
    Ok(())
});

backend_test!(async fn summary_runs_at_most_three_statements(db) {
    let base = base();
    seed(&db.db, base).await?;
    let mut counted = db.connect_again().await?;
    let statements = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&statements);
    counted.set_metric_callback(move |_info| {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    let s = audit_summary(&counted, &SummaryFilter::range(day(base, 1), day(base, 4)).actor("a1")).await?;
    assert_eq!(s.total_actions, 4);
    assert_eq!(statements.load(Ordering::SeqCst), 3);
    Ok(())
});
