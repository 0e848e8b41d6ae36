use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ConnectionTrait, EntityTrait};
use sea_orm_audit::entity::{audit_log, login_attempt, system_event};
use sea_orm_audit::{AuditSummary, SummaryFilter, audit_summary};
use sea_orm_audit_tests::backend_test;

fn day(d: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2026, 3, d)
        .and_then(|n| n.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
        .unwrap_or_default()
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

async fn seed<C: ConnectionTrait>(db: &C) -> Result<(), sea_orm::DbErr> {
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
    seed(&db.db).await?;
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
    assert_eq!(per_day, [("2026-03-01".into(), 4), ("2026-03-02".into(), 3), ("2026-03-03".into(), 3)]);

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

    // The recent window sees none of the 2026-03 data.
    let recent = audit_summary(&db.db, &SummaryFilter::last_days(30)).await?;
    assert_eq!(recent.total_actions, 0);
    assert_eq!(recent.per_day.len(), 31);
    Ok(())
});

backend_test!(async fn summary_runs_at_most_three_statements(db) {
    seed(&db.db).await?;
    let mut counted = db.connect_again().await?;
    let statements = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&statements);
    counted.set_metric_callback(move |_info| {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    let s = audit_summary(&counted, &SummaryFilter::range(day(1), day(4)).actor("a1")).await?;
    assert_eq!(s.total_actions, 4);
    assert_eq!(statements.load(Ordering::SeqCst), 3);
    Ok(())
});
