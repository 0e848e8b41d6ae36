//! The admin viewer through its router: every request goes through `Router::oneshot`,
//! with the identity in a header read by the test's authorizer.

use axum::Router;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Request, StatusCode, header};
use chrono::{TimeZone, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use sea_orm::{ActiveModelTrait, QueryOrder};
use sea_orm_audit::admin::{self, Access, AdminOptions, AdminUser};
use sea_orm_audit::entity::{audit_log, data_export, login_attempt, system_event};
use sea_orm_audit::{AuditEntry, RequestContext, write_entries};
use sea_orm_audit_tests::fixtures::article;
use sea_orm_audit_tests::{Migrator, TestDb, TestResult, backend_test};
use sea_orm_migration::MigratorTrait;
use tower::ServiceExt;

use crate::common::trail;

pub const SCRIPT: &str = "<script>window.__xss=1</script>";
pub const IMG: &str = "\"><img src=x onerror=alert(1)>";
pub const UNICODE: &str = "Ünïcødé ✓ 日本語 🎉";

fn authorize(parts: &Parts) -> Access {
    match parts
        .headers
        .get("x-test-user")
        .and_then(|v| v.to_str().ok())
    {
        Some("viewer") => Access::Viewer(AdminUser::new("v1", "Vera Viewer").session("sess-v1")),
        Some("viewer2") => Access::Viewer(AdminUser::new("v2", "Vic Viewer").session("sess-v2")),
        Some("superuser") => {
            Access::Superuser(AdminUser::new("s1", "Sam Super").session("sess-s1"))
        }
        _ => Access::NoAccess,
    }
}

fn app(db: &DatabaseConnection, page_size: u64) -> Router {
    let options = AdminOptions::new("test secret, thirty-two bytes!!!").page_size(page_size);
    Router::new().nest("/audit", admin::router(db.clone(), authorize, options))
}

struct Resp {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Resp {
    let resp = app
        .clone()
        .oneshot(req)
        .await
        .expect("router is infallible");
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    Resp {
        status,
        location,
        body: String::from_utf8(bytes.to_vec()).expect("utf-8 body"),
    }
}

async fn get(app: &Router, uri: &str, user: &str) -> Resp {
    let req = Request::get(uri)
        .header("x-test-user", user)
        .body(Body::empty())
        .expect("request");
    send(app, req).await
}

async fn post(app: &Router, uri: &str, user: &str, form: &[(&str, &str)]) -> Resp {
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let req = Request::post(uri)
        .header("x-test-user", user)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("request");
    send(app, req).await
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The hidden CSRF field of a page.
fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    html[start..start + 64].to_owned()
}

/// Ids of the audit rows a list page links to, in page order.
fn log_ids(html: &str) -> Vec<i64> {
    html.split("href=\"/audit/log/")
        .skip(1)
        .filter_map(|s| s.split('"').next()?.parse().ok())
        .collect()
}

/// The href of the "Older" link, unescaped.
fn next_link(html: &str) -> Option<String> {
    let i = html.find("rel=\"next\" href=\"")? + "rel=\"next\" href=\"".len();
    Some(html[i..].split('"').next()?.replace("&#38;", "&"))
}

/// `s` as askama escapes it.
fn esc(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&#60;".to_owned(),
            '>' => "&#62;".to_owned(),
            '"' => "&#34;".to_owned(),
            '\'' => "&#39;".to_owned(),
            '&' => "&#38;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// What a masked value renders as (`admin/value.html`).
const MASKED_CELL: &str = "<td><span class=\"masked\">•••••• (masked)</span></td>";

/// The `<tr>` of `field` in a detail page's changes table.
fn change_row<'a>(html: &'a str, field: &str) -> Option<&'a str> {
    let table = &html[html.find("<table class=\"changes\">")?..];
    let row = &table[table.find(&format!("<tr><th>{field}</th>"))?..];
    Some(&row[..row.find("</tr>")? + "</tr>".len()])
}

/// No hostile payload came out as markup.
fn assert_inert(html: &str, page: &str) {
    assert!(
        !html.contains("<script>window"),
        "{page}: raw <script>\n{html}"
    );
    assert!(!html.contains("<img src=x"), "{page}: raw <img>\n{html}");
    assert!(
        !html.contains("onerror=alert(1)>"),
        "{page}: raw attribute\n{html}"
    );
    assert!(
        !html.contains("<script"),
        "{page}: a script element\n{html}"
    );
}

fn t(y: i32, m: u32, d: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// Rows with hostile, long, unicode and null values in every table.
pub async fn seed_hostile(db: &DatabaseConnection) -> Result<i64, DbErr> {
    let ctx = RequestContext::new()
        .actor(SCRIPT, IMG)
        .request_id("req-<b>x</b>")
        .user_agent(SCRIPT);
    let a = ctx
        .clone()
        .scope(async {
            article::ActiveModel {
                title: Set(format!("{SCRIPT}{IMG}{UNICODE}")),
                body: Set(format!("{IMG}\n{}", "long ".repeat(2000))),
                body_html: Set(SCRIPT.into()),
                editor_token: Set(Some(SCRIPT.into())),
                views: Set(1),
                published: Set(false),
                ..Default::default()
            }
            .insert(db)
            .await
        })
        .await?;
    let mut am: article::ActiveModel = a.clone().into();
    am.title = Set(format!("{IMG} edited"));
    am.editor_token = Set(None);
    ctx.scope(am.update(db)).await?;
    let now = Utc::now();
    login_attempt::ActiveModel {
        username: Set(format!("{SCRIPT}{UNICODE}")),
        status: Set("FAILED".into()),
        ip_address: Set(Some("203.0.113.9".into())),
        user_agent: Set(Some(IMG.into())),
        failure_reason: Set(Some(IMG.into())),
        country: Set(None),
        city: Set(Some(UNICODE.into())),
        request_id: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    data_export::ActiveModel {
        actor_id: Set(Some(SCRIPT.into())),
        actor_name: Set(None),
        export_type: Set(IMG.into()),
        file_format: Set("csv".into()),
        record_count: Set(12),
        file_size: Set(3 * 1024 * 1024 * 1024 + 512 * 1024 * 1024),
        filters: Set(Some(
            serde_json::json!({"q": SCRIPT, "n": null, "u": UNICODE}),
        )),
        file_path: Set(Some(format!("/exports/{IMG}"))),
        download_count: Set(0),
        last_downloaded_at: Set(None),
        ip_address: Set(None),
        user_agent: Set(None),
        request_id: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let ev = system_event::ActiveModel {
        event_type: Set("ERROR".into()),
        title: Set(format!("{SCRIPT} {UNICODE}")),
        description: Set(Some(IMG.into())),
        module: Set(Some("app::<b>".into())),
        function: Set(None),
        file: Set(Some("src/x.rs".into())),
        line: Set(Some(7)),
        error_code: Set(Some(IMG.into())),
        stack_trace: Set(Some(format!(
            "{SCRIPT}\n   0: frame\n{}",
            "   at <fn>\n".repeat(40)
        ))),
        actor_id: Set(None),
        actor_name: Set(None),
        ip_address: Set(None),
        request_path: Set(Some(format!("/x?{IMG}"))),
        request_id: Set(None),
        resolved: Set(false),
        resolved_at: Set(None),
        resolved_by: Set(None),
        resolution_notes: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(ev.id)
}

async fn event_by_id(db: &DatabaseConnection, id: i64) -> Result<system_event::Model, DbErr> {
    Ok(system_event::Entity::find_by_id(id)
        .one(db)
        .await?
        .expect("event exists"))
}

backend_test!(async fn no_access_is_forbidden_everywhere(db) {
    let app = app(&db.db, 50);
    for uri in ["/audit", "/audit/log", "/audit/log/1", "/audit/history?table=a&pk=1", "/audit/logins",
                "/audit/logins/1", "/audit/exports", "/audit/exports/1", "/audit/events", "/audit/events/1",
                "/audit/prune"] {
        let r = get(&app, uri, "nobody").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(!r.body.contains("Audit log</h1>"));
    }
    // A query parameter naming a user is no identity.
    let r = get(&app, "/audit/log?user=superuser&x-test-user=superuser", "nobody").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post(&app, "/audit/prune", "nobody", &[("before", "2999-01-01")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let redirecting = Router::new().nest(
        "/audit",
        admin::router(
            db.db.clone(),
            authorize,
            AdminOptions::new([3u8; 32]).redirect_no_access("/login?next=/audit"),
        ),
    );
    let r = get(&redirecting, "/audit/log", "nobody").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location.as_deref(), Some("/login?next=/audit"));
    Ok(())
});

backend_test!(async fn every_page_renders_hostile_values_as_text(db) {
    let event_id = seed_hostile(&db.db).await?;
    let app = app(&db.db, 50);
    let rows = trail(&db.db).await?;
    let create = &rows[0];
    let update = &rows[1];
    let login = login_attempt::Entity::find().one(&db.db).await?.expect("login");
    let export = data_export::Entity::find().one(&db.db).await?.expect("export");
    let pages = [
        "/audit".to_owned(),
        "/audit/log".into(),
        format!("/audit/log/{}", create.id),
        format!("/audit/log/{}", update.id),
        format!("/audit/history?table=article&pk={}", create.object_pk.as_deref().unwrap_or_default()),
        "/audit/logins".into(),
        format!("/audit/logins/{}", login.id),
        "/audit/exports".into(),
        format!("/audit/exports/{}", export.id),
        "/audit/events".into(),
        format!("/audit/events/{event_id}"),
        "/audit/prune?before=2999-01-01".into(),
    ];
    for page in &pages {
        let r = get(&app, page, "superuser").await;
        assert_eq!(r.status, StatusCode::OK, "{page}\n{}", r.body);
        assert!(r.body.starts_with("<!DOCTYPE html>"), "{page}");
        assert_inert(&r.body, page);
    }

    let list = get(&app, "/audit/log", "viewer").await.body;
    assert!(list.contains(&esc(SCRIPT)), "{list}");
    assert!(list.contains(UNICODE), "{list}");
    assert!(list.contains("2 fields changed"), "{list}");

    let detail = get(&app, &format!("/audit/log/{}", create.id), "viewer").await.body;
    let update_detail = get(&app, &format!("/audit/log/{}", update.id), "viewer").await.body;
    // The changes table: escaped values, the masked token, the long body folded.
    assert!(detail.contains(&esc(IMG)), "{detail}");
    // The seeded token is SCRIPT: its row shows the marker, old and new, never the value,
    // while the title row next to it shows the same text escaped.
    for (page, html) in [("create", &detail), ("update", &update_detail)] {
        let token = change_row(html, "editor_token")
            .unwrap_or_else(|| panic!("{page}: no editor_token row\n{html}"));
        assert_eq!(token.matches(MASKED_CELL).count(), 2, "{page}: {token}");
        assert!(!token.contains(&esc(SCRIPT)) && !token.contains("__xss"), "{page}: {token}");
    }
    let title = change_row(&detail, "title").unwrap_or_else(|| panic!("no title row\n{detail}"));
    assert!(title.contains(&esc(SCRIPT)), "{title}");
    assert!(detail.contains("<details><summary>"), "{detail}");
    assert!(detail.contains(&"long ".repeat(2000)), "long value kept whole");
    assert!(detail.contains(UNICODE));
    assert!(detail.contains("History of this object"));
    assert!(detail.contains("Every row of this request"));
    assert!(detail.contains("/audit/log?request_id=req-%3Cb%3Ex%3C%2Fb%3E"), "{detail}");
    assert!(update_detail.contains("edited"));

    let export_page = get(&app, "/audit/exports", "viewer").await.body;
    assert!(export_page.contains("3.5 GB"), "{export_page}");
    let export_detail = get(&app, &format!("/audit/exports/{}", export.id), "viewer").await.body;
    assert!(export_detail.contains("3758096384 bytes"));
    assert!(export_detail.contains("<pre>{"), "filters pretty-printed: {export_detail}");

    let event = get(&app, &format!("/audit/events/{event_id}"), "viewer").await.body;
    assert!(event.contains("<pre>") || event.contains("<details>"), "stack trace block: {event}");
    assert!(event.contains("✗ Unresolved"));
    assert!(event.contains("name=\"csrf\""));

    let nulls = get(&app, &format!("/audit/logins/{}", login.id), "viewer").await.body;
    assert!(nulls.contains("<span class=\"null\">null</span>"), "{nulls}");

    // The security headers forbid scripts outright.
    let resp = app.clone().oneshot(
        Request::get("/audit/log").header("x-test-user", "viewer").body(Body::empty())?,
    ).await?;
    let csp = resp.headers().get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "{csp}");
    Ok(())
});

backend_test!(async fn keyset_pages_cover_every_row_once(db) {
    // One statement: every row gets the same created_at, so the id breaks the ties.
    let entries: Vec<AuditEntry> = (0..23)
        .map(|i| {
            let mut e = AuditEntry::new("CREATE");
            e.table_name = Some("thing".into());
            e.object_pk = Some(i.to_string());
            e
        })
        .collect();
    write_entries(&db.db, &entries[..10], None).await?;
    write_entries(&db.db, &entries[10..], None).await?;
    let mut expected: Vec<i64> = trail(&db.db).await?.iter().map(|r| r.id).collect();
    expected.reverse();

    let app = app(&db.db, 5);
    let mut seen = Vec::new();
    let mut uri = "/audit/log".to_owned();
    let mut pages = 0;
    loop {
        let r = get(&app, &uri, "viewer").await;
        assert_eq!(r.status, StatusCode::OK);
        let ids = log_ids(&r.body);
        assert!(ids.len() <= 5);
        seen.extend(ids);
        pages += 1;
        match next_link(&r.body) {
            Some(next) => {
                assert!(next.contains("after="), "{next}");
                assert!(!next.contains("offset"));
                uri = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, expected, "newest first, nothing skipped or repeated");

    // Filters are kept across pages.
    let r = get(&app, "/audit/log?table=thing&action=CREATE", "viewer").await;
    let next = next_link(&r.body).expect("a second page");
    assert!(next.contains("table=thing") && next.contains("action=CREATE"), "{next}");
    let page2 = log_ids(&get(&app, &next, "viewer").await.body);
    assert_eq!(page2, expected[5..10]);

    // A garbage cursor shows the first page with a notice, not an error.
    let r = get(&app, "/audit/log?after=garbage", "viewer").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("invalid page position"));
    Ok(())
});

fn entry(action: &str, table: &str, pk: &str, repr: &str) -> AuditEntry {
    let mut e = AuditEntry::new(action);
    e.table_name = Some(table.into());
    e.object_pk = Some(pk.into());
    e.object_repr = Some(repr.into());
    e
}

async fn insert_at(
    db: &DatabaseConnection,
    e: AuditEntry,
    actor: (&str, &str),
    rid: &str,
    at: chrono::DateTime<Utc>,
) -> Result<i64, DbErr> {
    let row = audit_log::ActiveModel {
        action: Set(e.action),
        table_name: Set(e.table_name),
        object_pk: Set(e.object_pk),
        object_repr: Set(e.object_repr),
        actor_id: Set(Some(actor.0.into())),
        actor_name: Set(Some(actor.1.into())),
        request_id: Set(Some(rid.into())),
        created_at: Set(at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(row.id)
}

backend_test!(async fn filters_search_and_drill_down(db) {
    filters_search_and_drill_down_on(db).await
});

// The search indexes are an optional migration (they cost every audited write a little,
// see the README's Performance section): without them every search still answers the
// same, by scanning.
backend_test!(async fn search_answers_the_same_without_the_search_indexes(db) {
    Migrator::down(&db.db, Some(1)).await?;
    let pending: Vec<String> = Migrator::get_pending_migrations(&db.db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    assert_eq!(pending, [sea_orm_audit_migration::ADD_AUDIT_LOG_SEARCH_INDEXES]);
    filters_search_and_drill_down_on(db).await
});

async fn filters_search_and_drill_down_on(db: &TestDb) -> TestResult {
    #[rustfmt::skip]
    let seeds = [
        ("CREATE", "post", "10", "Hello world", "u1", "Alice", "r1", (2024, 3, 5)),
        ("UPDATE", "post", "10", "Hello again", "u2", "Bob", "r2", (2024, 3, 6)),
        ("DELETE", "comment", "7", "100% sure_x", "u1", "Alice", "r2", (2025, 1, 2)),
        ("CREATE", "comment", "8", "100 other", "u3", "Alicia", "r3", (2025, 7, 9)),
    ];
    let mut ids = Vec::new();
    for (action, table, pk, repr, actor_id, actor_name, rid, (y, m, d)) in seeds {
        let e = entry(action, table, pk, repr);
        ids.push(insert_at(&db.db, e, (actor_id, actor_name), rid, t(y, m, d)).await?);
    }
    let [a, b, c, d] = ids[..] else {
        unreachable!("four rows were inserted")
    };
    let app = app(&db.db, 50);
    let ids = |uri: &'static str| {
        let app = app.clone();
        async move {
            let r = get(&app, uri, "viewer").await;
            assert_eq!(r.status, StatusCode::OK, "{uri}");
            log_ids(&r.body)
        }
    };
    assert_eq!(ids("/audit/log").await, [d, c, b, a]);
    assert_eq!(ids("/audit/log?action=CREATE").await, [d, a]);
    assert_eq!(
        ids("/audit/log?action=create").await,
        [d, a],
        "normalised like the writer"
    );
    assert_eq!(
        ids("/audit/log?action=NO+SUCH%0AACTION").await,
        Vec::<i64>::new()
    );
    assert_eq!(ids("/audit/log?table=post").await, [b, a]);
    assert_eq!(ids("/audit/log?actor=u1").await, [c, a]);
    assert_eq!(ids("/audit/log?request_id=r2").await, [c, b]);
    assert_eq!(
        ids("/audit/log?from=2024-03-06&to=2025-01-02").await,
        [c, b]
    );
    assert_eq!(ids("/audit/log?q=10").await, [b, a]);
    assert_eq!(ids("/audit/log?q=10&in=pk").await, [b, a]);
    assert_eq!(ids("/audit/log?q=Alic&in=actor").await, [d, c, a]);
    assert_eq!(ids("/audit/log?q=u2&in=actor").await, [b]);
    assert_eq!(ids("/audit/log?q=Hello+a&in=repr").await, [b]);
    // LIKE wildcards in the search are literal characters.
    assert_eq!(ids("/audit/log?q=100%25&in=repr").await, [c]);
    assert_eq!(ids("/audit/log?q=100%25+sure_&in=repr").await, [c]);
    assert_eq!(ids("/audit/log?q=H_llo&in=repr").await, Vec::<i64>::new());
    assert_eq!(
        ids("/audit/log?q=ello&in=repr").await,
        Vec::<i64>::new(),
        "prefix, not substring"
    );
    // Drill-down: year, month, day, combined with a filter.
    assert_eq!(ids("/audit/log?year=2024").await, [b, a]);
    assert_eq!(ids("/audit/log?year=2025&month=1").await, [c]);
    assert_eq!(ids("/audit/log?year=2024&month=3&day=6").await, [b]);
    assert_eq!(ids("/audit/log?year=2025&action=CREATE").await, [d]);
    let years = get(&app, "/audit/log", "viewer").await.body;
    assert!(
        years.contains("/audit/log?year=2024") && years.contains("/audit/log?year=2025"),
        "{years}"
    );
    let months = get(&app, "/audit/log?year=2024", "viewer").await.body;
    assert!(months.contains("year=2024&#38;month=3"), "{months}");
    let bad = get(&app, "/audit/log?year=2024&month=13", "viewer").await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.body.contains("invalid date"));

    // History and state at a time.
    let h = get(
        &app,
        "/audit/history?table=post&pk=10&at=2024-03-05T13:00:00",
        "viewer",
    )
    .await
    .body;
    assert!(
        h.contains(&format!("/audit/log/{a}")) && h.contains(&format!("/audit/log/{b}")),
        "{h}"
    );
    assert!(h.contains("State at 2024-03-05 13:00:00 UTC"), "{h}");
    let before = get(
        &app,
        "/audit/history?table=post&pk=10&at=2020-01-01T00:00",
        "viewer",
    )
    .await
    .body;
    assert!(before.contains("No record of this object"), "{before}");
    let deleted = get(&app, "/audit/history?table=comment&pk=7", "viewer")
        .await
        .body;
    assert!(
        deleted.contains("Deleted by then; its last recorded state"),
        "{deleted}"
    );
    Ok(())
}

backend_test!(async fn other_lists_filter(db) {
    for (i, (user, status)) in [("ann", "SUCCESS"), ("bob", "FAILED"), ("ann", "FAILED")].iter().enumerate() {
        login_attempt::ActiveModel {
            username: Set((*user).into()),
            status: Set((*status).into()),
            ip_address: Set(Some(format!("10.0.0.{i}"))),
            created_at: Set(t(2025, 1, 1 + i as u32)),
            ..Default::default()
        }
        .insert(&db.db)
        .await?;
    }
    for (i, (kind, resolved)) in [("ERROR", false), ("WARNING", true), ("ERROR", true)].iter().enumerate() {
        system_event::ActiveModel {
            event_type: Set((*kind).into()),
            title: Set(format!("event {i}")),
            resolved: Set(*resolved),
            created_at: Set(t(2025, 2, 1 + i as u32)),
            ..Default::default()
        }
        .insert(&db.db)
        .await?;
    }
    for (i, (kind, fmt)) in [("orders", "csv"), ("users", "json"), ("orders", "json")].iter().enumerate() {
        data_export::ActiveModel {
            actor_id: Set(Some(format!("a{i}"))),
            export_type: Set((*kind).into()),
            file_format: Set((*fmt).into()),
            record_count: Set(1),
            file_size: Set(2048),
            download_count: Set(0),
            created_at: Set(t(2025, 3, 1 + i as u32)),
            ..Default::default()
        }
        .insert(&db.db)
        .await?;
    }
    let app = app(&db.db, 50);
    let count = |body: &str, path: &str| body.matches(&format!("href=\"/audit/{path}/")).count();
    let body = |uri: &'static str| {
        let app = app.clone();
        async move {
            let r = get(&app, uri, "viewer").await;
            assert_eq!(r.status, StatusCode::OK, "{uri}");
            r.body
        }
    };
    assert_eq!(count(&body("/audit/logins").await, "logins"), 3);
    assert_eq!(count(&body("/audit/logins?status=FAILED").await, "logins"), 2);
    assert_eq!(count(&body("/audit/logins?username=ann").await, "logins"), 2);
    assert_eq!(count(&body("/audit/logins?ip=10.0.0.1").await, "logins"), 1);
    assert_eq!(count(&body("/audit/logins?from=2025-01-02&to=2025-01-02").await, "logins"), 1);
    assert_eq!(count(&body("/audit/events?event_type=ERROR").await, "events"), 2);
    assert_eq!(count(&body("/audit/events?resolved=no").await, "events"), 1);
    assert_eq!(count(&body("/audit/events?resolved=yes&event_type=ERROR").await, "events"), 1);
    assert_eq!(count(&body("/audit/exports?type=orders").await, "exports"), 2);
    assert_eq!(count(&body("/audit/exports?format=json").await, "exports"), 2);
    assert_eq!(count(&body("/audit/exports?actor=a1").await, "exports"), 1);
    assert!(body("/audit/exports").await.contains("2.0 KB"));
    let dash = body("/audit").await;
    assert!(dash.contains("Unresolved system events"), "{dash}");
    Ok(())
});

backend_test!(async fn csrf_token_is_required_and_bound_to_the_user(db) {
    let id = seed_hostile(&db.db).await?;
    let app = app(&db.db, 50);
    let uri = format!("/audit/events/{id}/resolve");
    let page = get(&app, &format!("/audit/events/{id}"), "viewer").await.body;
    let token = csrf_of(&page);
    let other = csrf_of(&get(&app, &format!("/audit/events/{id}"), "viewer2").await.body);
    assert_ne!(token, other);
    for bad in ["", "0000", &"0".repeat(64), &other] {
        let r = post(&app, &uri, "viewer", &[("csrf", bad), ("notes", "done")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "token {bad:?}");
        assert!(r.body.contains("CSRF"));
    }
    let r = post(&app, &uri, "viewer", &[("notes", "done")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The superuser's prune form needs its token too.
    let r = post(&app, "/audit/prune", "superuser", &[("before", "2999-01-01"), ("csrf", &token)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!event_by_id(&db.db, id).await?.resolved);
    assert!(trail(&db.db).await?.iter().all(|r| r.action != "RESOLVE" && r.action != "PRUNE"));
    Ok(())
});

backend_test!(async fn resolving_an_event_is_recorded(db) {
    let id = seed_hostile(&db.db).await?;
    let app = app(&db.db, 50);
    let token = csrf_of(&get(&app, &format!("/audit/events/{id}"), "viewer").await.body);
    let uri = format!("/audit/events/{id}/resolve");
    let r = post(&app, &uri, "viewer", &[("csrf", ""), ("notes", "x")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post(&app, &uri, "viewer", &[("csrf", &token), ("notes", "   ")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "notes are required");
    let notes = format!("fixed {SCRIPT}");
    let r = post(&app, &uri, "viewer", &[("csrf", &token), ("notes", &notes)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some(format!("/audit/events/{id}").as_str()));

    let ev = event_by_id(&db.db, id).await?;
    assert!(ev.resolved);
    assert_eq!(ev.resolved_by.as_deref(), Some("Vera Viewer"));
    assert_eq!(ev.resolution_notes.as_deref(), Some(notes.as_str()));
    assert!(ev.resolved_at.is_some());

    let rows = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("RESOLVE"))
        .all(&db.db)
        .await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].table_name.as_deref(), Some("system_event"));
    assert_eq!(rows[0].object_pk.as_deref(), Some(id.to_string().as_str()));
    assert_eq!(rows[0].actor_id.as_deref(), Some("v1"));
    assert_eq!(rows[0].actor_name.as_deref(), Some("Vera Viewer"));
    assert_eq!(rows[0].changes.as_ref().map(|c| c["resolved"]["new"].clone()), Some(serde_json::json!(true)));

    let page = get(&app, &format!("/audit/events/{id}"), "viewer").await.body;
    assert!(page.contains("✓ Resolved") && !page.contains("name=\"notes\""));
    assert_inert(&page, "resolved event");
    let again = post(&app, &uri, "viewer", &[("csrf", &token), ("notes", "again")]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let missing = post(&app, "/audit/events/999999/resolve", "viewer", &[("csrf", &token), ("notes", "x")]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        audit_log::Entity::find().filter(audit_log::Column::Action.eq("RESOLVE")).count(&db.db).await?,
        1
    );
    Ok(())
});

backend_test!(async fn only_a_superuser_prunes_and_it_is_recorded(db) {
    for (i, year) in [2019, 2020, 2024].iter().enumerate() {
        insert_at(&db.db, entry("UPDATE", "post", &i.to_string(), "p"), ("u", "U"), "r", t(*year, 6, 1)).await?;
        login_attempt::ActiveModel {
            username: Set("u".into()),
            status: Set("SUCCESS".into()),
            created_at: Set(t(*year, 6, 1)),
            ..Default::default()
        }
        .insert(&db.db)
        .await?;
    }
    let app = app(&db.db, 50);
    let viewer_page = get(&app, "/audit/prune?before=2021-01-01", "viewer").await;
    assert_eq!(viewer_page.status, StatusCode::FORBIDDEN);
    // The role is checked before the token: a viewer is refused whatever it sends.
    let viewer_token = "0".repeat(64);
    let r = post(&app, "/audit/prune", "viewer", &[("csrf", &viewer_token), ("before", "2021-01-01")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Only a superuser"));
    assert!(!get(&app, "/audit/log", "viewer").await.body.contains("/audit/prune\""), "no Prune link for viewers");

    let confirm = get(&app, "/audit/prune?before=2021-01-01", "superuser").await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Delete 4 rows permanently"), "{}", confirm.body);
    assert_eq!(trail(&db.db).await?.len(), 3, "the confirmation page deletes nothing");
    let token = csrf_of(&confirm.body);
    let done = post(&app, "/audit/prune", "superuser", &[("csrf", &token), ("before", "2021-01-01")]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Deleted 4 rows"), "{}", done.body);

    let left = audit_log::Entity::find().order_by_asc(audit_log::Column::Id).all(&db.db).await?;
    assert_eq!(left.len(), 2);
    assert_eq!(left[0].created_at.date_naive().to_string(), "2024-06-01");
    let prune = &left[1];
    assert_eq!(prune.action, "PRUNE");
    assert_eq!(prune.actor_id.as_deref(), Some("s1"));
    assert_eq!(prune.actor_name.as_deref(), Some("Sam Super"));
    let changes = prune.changes.clone().unwrap_or_default();
    assert_eq!(changes["deleted"]["audit_log"], 2);
    assert_eq!(changes["deleted"]["login_attempt"], 2);
    assert_eq!(login_attempt::Entity::find().count(&db.db).await?, 1);
    Ok(())
});

backend_test!(async fn works_at_the_root_and_pages_every_list(db) {
    for i in 0..5 {
        login_attempt::ActiveModel {
            username: Set(format!("user{i}")),
            status: Set("SUCCESS".into()),
            // Two pairs share a timestamp: the id breaks the tie.
            created_at: Set(t(2025, 1, 1 + i / 2)),
            ..Default::default()
        }
        .insert(&db.db)
        .await?;
    }
    let app = admin::router(db.db.clone(), authorize, AdminOptions::new([5u8; 32]).page_size(2));
    let home = get(&app, "/", "viewer").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("href=\"/admin.css\"") && home.body.contains("href=\"/log\""), "{}", home.body);
    let mut uri = "/logins".to_owned();
    let mut seen = Vec::new();
    loop {
        let r = get(&app, &uri, "viewer").await;
        assert_eq!(r.status, StatusCode::OK);
        seen.extend(
            r.body
                .split("href=\"/logins/")
                .skip(1)
                .filter_map(|s| s.split('"').next()?.parse::<i64>().ok()),
        );
        match next_link(&r.body) {
            Some(next) => uri = next,
            None => break,
        }
    }
    let mut expected: Vec<i64> = login_attempt::Entity::find()
        .order_by_desc(login_attempt::Column::CreatedAt)
        .order_by_desc(login_attempt::Column::Id)
        .all(&db.db)
        .await?
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(seen, expected);
    expected.sort();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, expected, "each row once");
    let css = get(&app, "/admin.css", "nobody").await;
    assert_eq!(css.status, StatusCode::OK, "the stylesheet needs no access");
    Ok(())
});

backend_test!(async fn odd_query_strings_get_a_page_and_every_response_its_headers(db) {
    let app = app(&db.db, 20);
    // The last date chrono knows has no next day; month 0 has no name.
    for uri in [
        "/audit/log?to=%2B262142-12-31",
        "/audit/logins?to=%2B262142-12-31",
        "/audit/log?year=2024&month=0",
        "/audit/log?year=2024&month=0&day=1",
    ] {
        let resp = get(&app, uri, "viewer").await;
        assert_eq!(resp.status, StatusCode::OK, "{uri}: {}", resp.body);
    }
    // axum's own answers (a malformed query, an unknown path, a wrong method) carry the
    // security headers too.
    for (method, uri, status) in [
        ("GET", "/audit/log?year=x", StatusCode::BAD_REQUEST),
        ("GET", "/audit/nowhere", StatusCode::NOT_FOUND),
        ("DELETE", "/audit/log", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("x-test-user", "viewer")
            .body(Body::empty())?;
        let resp = app.clone().oneshot(req).await?;
        assert_eq!(resp.status(), status, "{method} {uri}");
        let csp = resp
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("default-src 'none'"), "{method} {uri}: {csp:?}");
    }
    Ok(())
});
