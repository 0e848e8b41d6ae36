//! The admin viewer in a real browser: headless Chromium, driven through chromedriver,
//! against a small service on 127.0.0.1 that mounts the admin at `/audit` behind a
//! cookie-based fake login, and stores an XSS payload through an audited entity.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test is skipped
//! with a loud message, except under `CI=true`, where it fails. Screenshots go to
//! `docs/screenshots/` when `UPDATE_SCREENSHOTS=1`, otherwise to a temporary directory.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{TimeZone, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use sea_orm::{ActiveModelTrait, DatabaseConnection, QueryOrder};
use sea_orm_audit::admin::{self, Access, AdminOptions, AdminUser};
use sea_orm_audit::entity::{audit_log, login_attempt, system_event};
use sea_orm_audit::{AuditEntry, RequestContext, write_entries};
use sea_orm_audit_tests::webdriver::{Browser, find_browser};
use sea_orm_audit_tests::{Backend, BoxFuture, TestDb, TestResult};
use serde::Deserialize;

use crate::admin::seed_hostile;
use sea_orm_audit_tests::fixtures::article;

/// Runs script if injected: sets a flag and changes the title.
const PAYLOAD: &str = "<img src=x onerror=\"window.__xss=1;document.title='pwned'\"><script>window.__xss=1;document.title='pwned'</script>";

fn say(msg: &str) {
    // Straight to stderr, past the test harness's capture, so the steps show in every run.
    let _ = writeln!(std::io::stderr(), "[admin e2e] {msg}");
}

fn ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1"))
}

// === the demo service ===

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("demo_session=").map(str::to_owned))
}

/// The demo's identity: a cookie set by `/login`. A real application checks its own
/// session store here; the admin only sees what this returns.
fn authorize(parts: &Parts) -> Access {
    let Some(session) = session_cookie(&parts.headers) else {
        return Access::NoAccess;
    };
    if session.starts_with("superuser-") {
        Access::Superuser(AdminUser::new("1", "Sam Super").session(session))
    } else if session.starts_with("viewer-") {
        Access::Viewer(AdminUser::new("2", "Vera Viewer").session(session))
    } else {
        Access::NoAccess
    }
}

const LOGIN_PAGE: &str = r#"<!DOCTYPE html><title>Log in</title>
<form method="post" action="/login"><select name="role"><option value="viewer">viewer</option>
<option value="superuser">superuser</option></select><button id="login" type="submit">Log in</button></form>"#;

const ARTICLE_PAGE: &str = r#"<!DOCTYPE html><title>New article</title>
<form method="post" action="/articles"><input name="title"><button id="save" type="submit">Save</button></form>"#;

#[derive(Deserialize)]
struct LoginForm {
    role: String,
}

async fn login(Form(f): Form<LoginForm>) -> Response {
    let role = if f.role == "superuser" {
        "superuser"
    } else {
        "viewer"
    };
    let cookie = format!(
        "demo_session={role}-{}; Path=/; HttpOnly; SameSite=Lax",
        uuid::Uuid::new_v4().simple()
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/audit".into()),
        ],
    )
        .into_response()
}

#[derive(Deserialize)]
struct ArticleForm {
    title: String,
}

async fn create_article(
    State(db): State<DatabaseConnection>,
    headers: HeaderMap,
    Form(f): Form<ArticleForm>,
) -> Response {
    let actor = session_cookie(&headers).unwrap_or_default();
    let ctx = RequestContext::new()
        .actor(actor.split('-').next().unwrap_or_default(), "demo user")
        .request_id("req-article");
    let saved = ctx
        .scope(
            article::ActiveModel {
                title: Set(f.title),
                body: Set("written in the browser".into()),
                body_html: Set(String::new()),
                editor_token: Set(None),
                views: Set(0),
                published: Set(true),
                ..Default::default()
            }
            .insert(&db),
        )
        .await;
    match saved {
        Ok(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/audit/log")]).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn demo_app(db: DatabaseConnection) -> Router {
    let options = AdminOptions::new("demo secret: at least 32 bytes!!").page_size(10);
    Router::new()
        .route("/login", get(|| async { Html(LOGIN_PAGE) }).post(login))
        .route(
            "/articles",
            get(|| async { Html(ARTICLE_PAGE) }).post(create_article),
        )
        .with_state(db.clone())
        .nest("/audit", admin::router(db, authorize, options))
}

async fn seed(db: &DatabaseConnection) -> Result<(), DbErr> {
    seed_hostile(db)
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    let entries: Vec<AuditEntry> = (0..25)
        .map(|i| {
            let mut e = AuditEntry::new("UPDATE");
            e.table_name = Some("invoice".into());
            e.object_pk = Some(format!("{i}"));
            e.object_repr = Some(format!("Invoice #{i}"));
            e.changes = Some(serde_json::json!({"total": {"old": i, "new": i + 1}}));
            e
        })
        .collect();
    let ctx = RequestContext::new().actor("7", "Billing bot");
    write_entries(db, &entries, Some(&ctx))
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    for year in [2019, 2020] {
        audit_log::ActiveModel {
            action: Set("UPDATE".into()),
            table_name: Set(Some("legacy".into())),
            object_pk: Set(Some(year.to_string())),
            created_at: Set(Utc
                .with_ymd_and_hms(year, 5, 1, 8, 0, 0)
                .single()
                .unwrap_or_default()),
            ..Default::default()
        }
        .insert(db)
        .await?;
        login_attempt::ActiveModel {
            username: Set("old-user".into()),
            status: Set("SUCCESS".into()),
            created_at: Set(Utc
                .with_ymd_and_hms(year, 5, 1, 8, 0, 0)
                .single()
                .unwrap_or_default()),
            ..Default::default()
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

// === the test ===

fn screenshot_dir() -> PathBuf {
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
    } else {
        std::env::temp_dir().join("sea-orm-audit-screenshots")
    }
}

/// Nothing injected ran, and the DOM holds no element the payload would have created.
async fn assert_no_xss(
    b: &Browser,
    page: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let flag = b.eval("return window.__xss === undefined").await?;
    assert_eq!(flag, serde_json::json!(true), "{page}: injected script ran");
    assert!(!b.title().await?.contains("pwned"), "{page}: title changed");
    assert!(
        b.find_all("img[src='x'], script").await?.is_empty(),
        "{page}: payload became markup"
    );
    Ok(())
}

#[test]
fn admin_in_headless_chromium() {
    if find_browser().is_none() {
        if ci() {
            panic!(
                "chromium/chromedriver not found under CI=true: apt-get install chromium chromium-driver"
            );
        }
        say("!!!!!!!!!! SKIPPING the browser test: chromium or chromedriver not found.");
        say(
            "!!!!!!!!!! apt-get install -y chromium chromium-driver, or set CI=true to make this a failure.",
        );
        return;
    }
    fn boxed(db: Arc<TestDb>) -> BoxFuture<TestResult> {
        Box::pin(drive(db))
    }
    // Debug builds of a real hyper server plus the admin's handlers outgrow tokio's
    // default 2 MiB worker stacks; the router tests, without hyper, do not.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(16 * 1024 * 1024)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(sea_orm_audit_tests::run(
        Backend::Sqlite,
        "it::admin_e2e::admin_in_headless_chromium",
        boxed,
    ));
}

async fn drive(db: Arc<TestDb>) -> TestResult {
    let (chrome, driver) = find_browser().ok_or("browser vanished")?;
    seed(&db.db).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(axum::serve(listener, demo_app(db.db.clone())).into_future());
    say(&format!(
        "demo service on {base}, admin mounted at {base}/audit"
    ));
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots)?;

    let b = Arc::new(Browser::start(&chrome, &driver).await?);
    say(&format!("{} via {}", chrome.display(), driver.display()));
    // In a task of its own, so that a failed assertion still closes the browser below.
    let outcome = tokio::spawn({
        let (b, db) = (Arc::clone(&b), Arc::clone(&db));
        async move { steps(&b, &base, &shots, &db).await }
    })
    .await;
    if let Ok(b) = Arc::try_unwrap(b) {
        b.close().await;
    }
    server.abort();
    match outcome {
        Ok(result) => result?,
        Err(join) => match join.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => return Err(e.into()),
        },
    }
    say(&format!(
        "all steps passed; screenshots in {}",
        screenshot_dir().display()
    ));
    Ok(())
}

async fn steps(b: &Browser, base: &str, shots: &std::path::Path, db: &TestDb) -> TestResult {
    let shot = |name: &'static str| {
        let path = shots.join(format!("{name}.png"));
        async move { b.screenshot(&path).await }
    };

    // No login: 403 from the admin.
    b.goto(&format!("{base}/audit/log")).await?;
    assert_eq!(b.title().await?, "Forbidden · Audit");
    say("no session: 403 Forbidden");

    // Viewer.
    b.goto(&format!("{base}/login")).await?;
    b.click("select[name=role] option[value=viewer]").await?;
    b.click_nav("#login").await?;
    b.wait_title("Dashboard · Audit").await?;
    assert!(b.texts("header .who").await?[0].contains("Vera Viewer · viewer"));
    shot("dashboard").await?;
    say("logged in as viewer: dashboard");

    // The XSS payload, stored through an audited entity from a browser form.
    b.goto(&format!("{base}/articles")).await?;
    b.type_into("input[name=title]", PAYLOAD).await?;
    b.click_nav("#save").await?;
    b.wait_title("Audit log · Audit").await?;
    assert!(b.url().await?.ends_with("/audit/log"));
    let objects = b
        .texts("table.list tbody tr:first-child td:nth-child(4)")
        .await?;
    // Shown as text, cut to the list column's 80 characters.
    assert!(objects[0].starts_with(&PAYLOAD[..70]), "{objects:?}");
    assert_no_xss(b, "log list").await?;
    shot("log-list").await?;
    say("XSS payload stored through the audited article entity shows as text, did not run");

    // Filter by action.
    b.click("select[name=action] option[value=CREATE]").await?;
    b.click_nav("form.filters button[type=submit]").await?;
    b.wait_title("Audit log").await?;
    let actions = b.texts("table.list td.action").await?;
    assert!(
        !actions.is_empty() && actions.iter().all(|a| a == "CREATE"),
        "{actions:?}"
    );
    say(&format!(
        "filter action=CREATE: {} rows, all CREATE",
        actions.len()
    ));

    // Search by repr prefix.
    b.goto(&format!("{base}/audit/log")).await?;
    b.type_into("input[name=q]", "Invoice #1").await?;
    b.click("select[name=in] option[value=repr]").await?;
    b.click_nav("form.filters button[type=submit]").await?;
    b.wait_title("Audit log").await?;
    let found = b.texts("table.list tbody td:nth-child(4)").await?;
    let mut expected: Vec<String> = std::iter::once(1)
        .chain(10..20)
        .map(|i| format!("Invoice #{i}"))
        .collect();
    let mut got = found.clone();
    got.sort();
    expected.sort();
    // Page size is 10: the 11 matches fill this page and one more.
    assert_eq!(found.len(), 10, "{found:?}");
    assert!(got.iter().all(|g| expected.contains(g)), "{found:?}");
    say("search 'Invoice #1' in repr (prefix): 10 rows on page 1");

    // Page forward on a filtered list: page 2 starts right after page 1.
    b.goto(&format!("{base}/audit/log?table=invoice")).await?;
    let page1 = b.texts("table.list tbody td:nth-child(4)").await?;
    b.click_nav("a.next").await?;
    b.wait_title("Audit log").await?;
    assert!(b.url().await?.contains("after="));
    let page2 = b.texts("table.list tbody td:nth-child(4)").await?;
    shot("log-page-2").await?;
    b.click_nav("a.next").await?;
    let page3 = b.texts("table.list tbody td:nth-child(4)").await?;
    assert!(b.find_all("a.next").await?.is_empty(), "no page 4");
    let all: Vec<String> = page1.iter().chain(&page2).chain(&page3).cloned().collect();
    let want: Vec<String> = (0..25).rev().map(|i| format!("Invoice #{i}")).collect();
    assert_eq!(all, want, "pages 1-3 in order, nothing skipped or repeated");
    say("paged forward 10 + 10 + 5 rows: every invoice once, newest first");

    // Open a diff: the hostile article's UPDATE entry from the fixtures.
    b.goto(&format!("{base}/audit/log?table=article&action=UPDATE"))
        .await?;
    b.click_nav("table.list tbody tr:first-child td:first-child a")
        .await?;
    b.wait_title("Audit entry #").await?;
    let fields = b.texts("table.changes tbody th").await?;
    assert!(fields.contains(&"title".to_owned()), "{fields:?}");
    assert!(
        b.texts("table.changes .masked").await?.len() >= 2,
        "masked token shown as masked"
    );
    assert_no_xss(b, "entry detail").await?;
    shot("entry-detail").await?;
    say(&format!("opened a diff: fields {fields:?}"));

    b.click_nav("p.links a:nth-child(2)").await?;
    b.wait_title("History of article").await?;
    assert_no_xss(b, "history").await?;
    shot("object-history").await?;
    say("object history and state at now");

    // Resolve an event as the viewer.
    b.goto(&format!("{base}/audit/events?resolved=no")).await?;
    shot("events").await?;
    b.click_nav("table.list tbody tr:first-child td:first-child a")
        .await?;
    b.wait_title("System event #").await?;
    assert_no_xss(b, "event detail").await?;
    b.type_into("textarea[name=notes]", "Restarted the worker <b>ok</b>")
        .await?;
    shot("event-detail").await?;
    b.click_nav("form.resolve button").await?;
    b.wait_title("System event #").await?;
    for _ in 0..50 {
        if b.find_all("form.resolve").await?.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let status = b.texts("table.fields tr:nth-child(16) td").await?;
    assert_eq!(status, ["✓ Resolved"], "{status:?}");
    assert!(b.find_all("form.resolve").await?.is_empty());
    say("resolved the event as viewer (notes with markup kept as text)");

    // The viewer may not prune.
    b.goto(&format!("{base}/audit/prune")).await?;
    assert_eq!(b.title().await?, "Forbidden · Audit");
    say("viewer on /prune: 403");

    // Superuser.
    b.clear_cookies().await?;
    b.goto(&format!("{base}/login")).await?;
    b.click("select[name=role] option[value=superuser]").await?;
    b.click_nav("#login").await?;
    b.wait_title("Dashboard · Audit").await?;
    assert!(b.texts("header .who").await?[0].contains("superuser"));
    b.click_nav("header nav a[href$='/prune']").await?;
    b.wait_title("Prune old rows · Audit").await?;
    // Date inputs take locale-formatted keystrokes; the form is a GET, so load its result.
    b.goto(&format!("{base}/audit/prune?before=2021-01-01"))
        .await?;
    let confirm = b.texts("form.danger button").await?;
    assert_eq!(confirm, ["Delete 4 rows permanently"], "{confirm:?}");
    shot("prune-confirm").await?;
    b.click_nav("form.danger button").await?;
    b.wait_title("Pruned · Audit").await?;
    let msg = b.texts("p.message").await?;
    assert!(
        msg[0].starts_with("Deleted 4 rows older than 2021-01-01"),
        "{msg:?}"
    );
    say(&format!("superuser pruned: {}", msg[0]));

    b.click_nav("main a").await?;
    b.wait_title("Audit log").await?;
    let rows = b.texts("table.list tbody td.action").await?;
    assert_eq!(rows, ["PRUNE"]);
    shot("log-prune-entry").await.ok();

    let recorded = audit_log::Entity::find()
        .filter(audit_log::Column::Action.is_in(["RESOLVE", "PRUNE"]))
        .order_by_asc(audit_log::Column::Id)
        .all(&db.db)
        .await?;
    let who: Vec<(String, Option<String>)> = recorded
        .iter()
        .map(|r| (r.action.clone(), r.actor_name.clone()))
        .collect();
    assert_eq!(
        who,
        [
            ("RESOLVE".to_owned(), Some("Vera Viewer".to_owned())),
            ("PRUNE".to_owned(), Some("Sam Super".to_owned()))
        ]
    );
    let ev = system_event::Entity::find()
        .one(&db.db)
        .await?
        .ok_or("event")?;
    assert!(ev.resolved);
    say("RESOLVE (Vera Viewer) and PRUNE (Sam Super) are in the audit log");
    Ok(())
}

// === the example service ===

/// `examples/examples/axum_app.rs` itself, compiled into this test so the browser drives
/// the example's real router: its fake auth, both middleware layers, the admin at `/admin`.
#[path = "../../examples/examples/axum_app.rs"]
#[allow(dead_code, unreachable_pub)]
mod axum_app;

#[test]
fn example_service_admin_in_headless_chromium() {
    if find_browser().is_none() {
        if ci() {
            panic!("chromium/chromedriver not found under CI=true");
        }
        say(
            "!!!!!!!!!! SKIPPING the example-service browser test: chromium or chromedriver not found.",
        );
        return;
    }
    fn boxed(db: Arc<TestDb>) -> BoxFuture<TestResult> {
        Box::pin(drive_example(db))
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(16 * 1024 * 1024)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(sea_orm_audit_tests::run(
        Backend::Sqlite,
        "it::admin_e2e::example_service_admin_in_headless_chromium",
        boxed,
    ));
}

async fn drive_example(db: Arc<TestDb>) -> TestResult {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;
    use sea_orm_audit::middleware::{ClientIp, SecurityLayer};
    use tower::ServiceExt;

    let (chrome, driver) = find_browser().ok_or("browser vanished")?;
    axum_app::create_tables(&db.db).await?;
    let client_ip = ClientIp::new()
        .peer_addr_with(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip()));
    let app = axum_app::app(db.db.clone(), SecurityLayer::new(db.db.clone()), client_ip);

    // The payload goes in through the example's JSON API, as an audited project's name.
    let created = app
        .clone()
        .oneshot(
            Request::post("/projects")
                .header("x-user", "mallory")
                .header("content-type", "application/json")
                .body(Body::from(
                    serde_json::json!({ "name": PAYLOAD }).to_string(),
                ))?,
        )
        .await?;
    assert_eq!(created.status(), StatusCode::CREATED);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .into_future(),
    );
    say(&format!(
        "example service (examples/examples/axum_app.rs) on {base}, admin at {base}/admin"
    ));
    let b = Arc::new(Browser::start(&chrome, &driver).await?);
    let outcome = tokio::spawn({
        let (b, db) = (Arc::clone(&b), Arc::clone(&db));
        async move { example_steps(&b, &base, &db).await }
    })
    .await;
    if let Ok(b) = Arc::try_unwrap(b) {
        b.close().await;
    }
    server.abort();
    match outcome {
        Ok(result) => result,
        Err(join) => match join.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => Err(e.into()),
        },
    }
}

async fn example_steps(b: &Browser, base: &str, db: &TestDb) -> TestResult {
    // No session: the example redirects to its sign-in form.
    b.goto(&format!("{base}/admin")).await?;
    b.wait_title("Sign in").await?;
    b.type_into("input[name=user]", "ada").await?;
    b.click_nav("form button").await?;
    b.wait_title("Dashboard · Audit").await?;
    say("example: redirected to /admin-login, signed in as ada (viewer)");

    b.goto(&format!("{base}/admin/log?table=project")).await?;
    let objects = b
        .texts("table.list tbody tr:first-child td:nth-child(4)")
        .await?;
    assert!(objects[0].starts_with(&PAYLOAD[..70]), "{objects:?}");
    assert_no_xss(b, "example log list").await?;
    b.click_nav("table.list tbody tr:first-child td:first-child a")
        .await?;
    b.wait_title("Audit entry #").await?;
    assert_no_xss(b, "example entry detail").await?;
    let actor = b.texts("table.fields tr:nth-child(8) td").await?;
    assert_eq!(
        actor,
        ["mallory"],
        "attributed by the example's context layer"
    );
    say("example: the project named with the XSS payload shows as text, attributed to mallory");

    b.goto(&format!("{base}/admin/prune")).await?;
    assert_eq!(b.title().await?, "Forbidden · Audit");

    b.clear_cookies().await?;
    b.goto(&format!("{base}/admin-login")).await?;
    b.type_into("input[name=user]", "admin").await?;
    b.click_nav("form button").await?;
    b.wait_title("Dashboard · Audit").await?;
    b.goto(&format!("{base}/admin/prune?before=2999-01-01"))
        .await?;
    let confirm = b.texts("form.danger button").await?;
    assert!(confirm[0].starts_with("Delete "), "{confirm:?}");
    b.click_nav("form.danger button").await?;
    b.wait_title("Pruned · Audit").await?;
    let prune = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("PRUNE"))
        .one(&db.db)
        .await?
        .ok_or("no PRUNE row")?;
    assert_eq!(prune.actor_name.as_deref(), Some("admin"));
    assert_eq!(
        prune.ip_address.as_deref(),
        Some("127.0.0.1"),
        "IP from the context layer"
    );
    assert!(
        prune.request_id.is_some(),
        "request id from the context layer"
    );
    say(&format!(
        "example: viewer refused on /admin/prune; admin pruned ({}); PRUNE row by admin from {} in request {}",
        confirm[0],
        prune.ip_address.as_deref().unwrap_or_default(),
        prune.request_id.as_deref().unwrap_or_default()
    ));
    Ok(())
}
