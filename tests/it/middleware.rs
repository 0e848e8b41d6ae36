//! The middleware through the real tower stack: requests go into an axum `Router`
//! (with `tower::ServiceExt::oneshot`, or a real listener), and the assertions read the
//! rows they produced.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::routing::{get, post};
use http::{HeaderValue, Request, Response, StatusCode};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, QueryOrder};
use sea_orm_audit::RequestContext;
use sea_orm_audit::entity::system_event;
use sea_orm_audit::hash_session;
use sea_orm_audit::middleware::{
    AuditContextLayer, ClientIp, RuleSet, SLOW_REQUEST, SecurityLayer,
};
use sea_orm_audit_tests::backend_test;
use tower::ServiceExt;

use crate::common::{art, trail};

async fn create(
    State(db): State<DatabaseConnection>,
    Path(title): Path<String>,
) -> Result<String, StatusCode> {
    // Yield between writes so concurrent requests interleave on the workers.
    tokio::task::yield_now().await;
    let a = art(&title)
        .insert(&db)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    tokio::task::yield_now().await;
    art(&format!("{title}.2"))
        .insert(&db)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(a.id.to_string())
}

/// A body that is ready only after `delay`: the handler returns at once, the body is slow.
struct SlowBody(Option<Pin<Box<tokio::time::Sleep>>>);

impl http_body::Body for SlowBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match self.0.as_mut() {
            None => Poll::Ready(None),
            Some(sleep) => {
                std::task::ready!(sleep.as_mut().poll(cx));
                self.0 = None;
                Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
                    b"done",
                )))))
            }
        }
    }
}

fn routes(db: DatabaseConnection) -> Router {
    Router::new()
        .route("/articles/{title}", post(create))
        .route("/hello", get(|| async { "hello" }))
        .route("/{*rest}", get(|| async { "catch-all" }))
        .route("/fail", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler blew up");
                }
                "unreachable"
            }),
        )
        .route(
            "/slow-body",
            get(|| async {
                Response::new(Body::new(SlowBody(Some(Box::pin(tokio::time::sleep(
                    Duration::from_millis(300),
                ))))))
            }),
        )
        .with_state(db)
}

fn connect_info_ip() -> ClientIp {
    ClientIp::new().peer_addr_with(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip()))
}

fn context_layer(
    client_ip: ClientIp,
) -> AuditContextLayer<impl Fn(&http::request::Parts) -> Option<(String, String)> + Clone> {
    AuditContextLayer::new()
        .actor(|parts: &http::request::Parts| {
            let user = parts.headers.get("x-user")?.to_str().ok()?;
            Some((format!("id-{user}"), user.to_owned()))
        })
        .client_ip(client_ip)
}

fn request(method: &str, uri: &str, peer: &str) -> http::request::Builder {
    let mut b = Request::builder().method(method).uri(uri);
    let peer: SocketAddr = peer.parse().expect("peer");
    if let Some(ext) = b.extensions_mut() {
        // What axum's `into_make_service_with_connect_info` puts there.
        ext.insert(ConnectInfo(peer));
    }
    b
}

async fn events(db: &DatabaseConnection) -> Result<Vec<system_event::Model>, sea_orm::DbErr> {
    system_event::Entity::find()
        .order_by_asc(system_event::Column::Id)
        .all(db)
        .await
}

backend_test!(async fn context_fields_land_in_audit_rows(db) {
    let app = routes(db.db.clone()).layer(context_layer(connect_info_ip()));

    let res = app
        .clone()
        .oneshot(
            request("POST", "/articles/first", "198.51.100.20:5555")
                .header("x-user", "ada")
                .header("user-agent", "integration-test/1.0")
                .header("cookie", "theme=dark; session=raw-cookie-secret")
                .header("x-request-id", "req-from-client-1")
                .body(Body::empty())?,
        )
        .await?;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-request-id"], "req-from-client-1");

    // No id from the client (and an invalid one): one is generated and returned.
    let res2 = app
        .clone()
        .oneshot(
            request("POST", "/articles/second", "198.51.100.21:5555")
                .header("authorization", "Bearer raw-bearer-token")
                .header("x-request-id", "has spaces, not allowed")
                .body(Body::empty())?,
        )
        .await?;
    let generated = res2.headers()["x-request-id"].to_str()?.to_owned();
    assert_ne!(generated, "has spaces, not allowed");
    assert_eq!(generated.len(), 36);
    assert!(RequestContext::current().is_none(), "nothing leaks out of a request");

    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 4);
    for r in &rows[..2] {
        assert_eq!(r.actor_id.as_deref(), Some("id-ada"));
        assert_eq!(r.actor_name.as_deref(), Some("ada"));
        assert_eq!(r.ip_address.as_deref(), Some("198.51.100.20"));
        assert_eq!(r.user_agent.as_deref(), Some("integration-test/1.0"));
        assert_eq!(r.session_hash.as_deref(), Some(hash_session("raw-cookie-secret").as_str()));
        assert_eq!(r.request_id.as_deref(), Some("req-from-client-1"));
        assert!(!format!("{r:?}").contains("raw-cookie-secret"));
    }
    for r in &rows[2..] {
        assert_eq!(r.actor_id, None, "anonymous");
        assert_eq!(r.ip_address.as_deref(), Some("198.51.100.21"));
        assert_eq!(r.user_agent, None);
        assert_eq!(r.session_hash.as_deref(), Some(hash_session("raw-bearer-token").as_str()));
        assert_eq!(r.request_id.as_deref(), Some(generated.as_str()));
    }
    Ok(())
});

backend_test!(async fn real_listener_records_socket_peer(db) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = routes(db.db.clone()).layer(context_layer(connect_info_ip()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
    });
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"POST /articles/over-tcp HTTP/1.1\r\nHost: localhost\r\nX-User: grace\r\nX-Forwarded-For: 6.6.6.6\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    server.abort();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.to_ascii_lowercase().contains("x-request-id: "), "{response}");

    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].actor_name.as_deref(), Some("grace"));
    assert_eq!(rows[0].ip_address.as_deref(), Some("127.0.0.1"), "the socket peer, not the forged header");
    Ok(())
});

backend_test!(async fn concurrent_requests_never_mix_actors(db) {
    let pool = db.connect_again().await?;
    let app = routes(pool).layer(context_layer(connect_info_ip()));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let req = request("POST", &format!("/articles/u{i}"), &format!("198.51.100.{}:4000", i + 1))
                .header("x-user", format!("user{i}"))
                .header("x-request-id", format!("req-{i}"))
                .body(Body::empty())
                .expect("request");
            app.oneshot(req).await.expect("infallible").status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await?, StatusCode::OK);
    }
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 32);
    for r in rows {
        let title = r.object_repr.clone().unwrap_or_default();
        let i: usize = title.trim_start_matches('u').split('.').next().unwrap_or_default().parse()?;
        assert_eq!(r.actor_name.as_deref(), Some(format!("user{i}").as_str()), "{title}");
        assert_eq!(r.request_id.as_deref(), Some(format!("req-{i}").as_str()), "{title}");
        assert_eq!(r.ip_address.as_deref(), Some(format!("198.51.100.{}", i + 1).as_str()), "{title}");
    }
    Ok(())
});

backend_test!(async fn forwarded_for_believed_only_from_trusted_proxies(db) {
    let client_ip = connect_info_ip().trust_proxy("10.0.0.0/8")?;
    let app = routes(db.db.clone()).layer(context_layer(client_ip));
    for (title, peer, xff) in [
        ("untrusted", "198.51.100.7:1000", "1.2.3.4"),
        ("trusted", "10.0.0.2:1000", "6.6.6.6, 203.0.113.9"),
        ("garbage", "10.0.0.2:1000", "not-an-ip<b>"),
    ] {
        let req = request("POST", &format!("/articles/{title}"), peer)
            .header("x-forwarded-for", xff)
            .body(Body::empty())?;
        assert_eq!(app.clone().oneshot(req).await?.status(), StatusCode::OK);
    }
    let rows = trail(&db.db).await?;
    let ip = |t: &str| rows.iter().find(|r| r.object_repr.as_deref() == Some(t)).and_then(|r| r.ip_address.clone());
    assert_eq!(ip("untrusted").as_deref(), Some("198.51.100.7"), "a forged header from an untrusted peer changes nothing");
    assert_eq!(ip("trusted").as_deref(), Some("203.0.113.9"), "right-most untrusted address");
    assert_eq!(ip("garbage").as_deref(), Some("10.0.0.2"), "garbage is never stored as an IP");
    Ok(())
});

const PROBES: &[(&str, Option<&str>, &str)] = &[
    ("/../../etc/passwd", None, "path_traversal"),
    ("/static/%2e%2e/%2e%2e/etc/passwd", None, "path_traversal"),
    (
        "/download?file=..%2F..%2Fetc%2Fpasswd",
        None,
        "path_traversal",
    ),
    ("/.env", None, "secret_file_probe"),
    ("/.git/config", None, "secret_file_probe"),
    ("/wp-admin/install.php", None, "admin_tool_probe"),
    ("/phpmyadmin/index.php", None, "admin_tool_probe"),
    (
        "/items?id=1%20UNION%20SELECT%20password%20FROM%20users",
        None,
        "injection",
    ),
    ("/items?name=x'%20or%201=1--", None, "injection"),
    (
        "/search/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        None,
        "injection",
    ),
    (
        "/hello",
        Some("sqlmap/1.7.2#stable (https://sqlmap.org)"),
        "scanner_user_agent",
    ),
    (
        "/hello",
        Some("Mozilla/5.00 (Nikto/2.1.6) (Evasions:None)"),
        "scanner_user_agent",
    ),
    (
        "/hello",
        Some("Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"),
        "scanner_user_agent",
    ),
    (
        "/hello",
        Some("masscan/1.3 (https://github.com/robertdavidgraham/masscan)"),
        "scanner_user_agent",
    ),
];

const LOOK_ALIKES: &[(&str, Option<&str>)] = &[
    ("/blog/postgresql-tips", None),
    ("/configuration", None),
    ("/admin-guide", None),
    ("/admin/users", None),
    ("/backups-explained", None),
    ("/docs/v1..v2", None),
    ("/environment", None),
    ("/search?q=select+a+union+rep", None),
    (
        "/hello",
        Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    ),
    (
        "/hello",
        Some("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
    ),
];

backend_test!(async fn rules_fire_on_probes_and_not_on_look_alikes(db) {
    let security = SecurityLayer::new(db.db.clone());
    let app = routes(db.db.clone())
        .layer(security.clone())
        .layer(context_layer(connect_info_ip()));
    // One client per request, so de-duplication does not hide a finding.
    for (i, (uri, ua, _)) in PROBES.iter().enumerate() {
        let mut b = request("GET", uri, &format!("203.0.113.{}:80", i + 1)).header("x-user", "mallory");
        if let Some(ua) = ua {
            b = b.header("user-agent", *ua);
        }
        let res = app.clone().oneshot(b.body(Body::empty())?).await?;
        assert_ne!(res.status(), StatusCode::FORBIDDEN, "not blocking by default");
    }
    for (i, (uri, ua)) in LOOK_ALIKES.iter().enumerate() {
        let mut b = request("GET", uri, &format!("198.51.100.{}:80", i + 1));
        if let Some(ua) = ua {
            b = b.header("user-agent", *ua);
        }
        assert_eq!(app.clone().oneshot(b.body(Body::empty())?).await?.status(), StatusCode::OK, "{uri}");
    }
    // Header size: a 9 KiB value is a probe, a 4 KiB cookie is not.
    let big = request("GET", "/hello", "203.0.113.200:80").header("x-padding", "a".repeat(9 * 1024));
    app.clone().oneshot(big.body(Body::empty())?).await?;
    let cookie = request("GET", "/hello", "198.51.100.200:80").header("cookie", format!("prefs={}", "b".repeat(4 * 1024)));
    assert_eq!(app.clone().oneshot(cookie.body(Body::empty())?).await?.status(), StatusCode::OK);
    security.flush().await;

    let rows = events(&db.db).await?;
    for (i, (uri, ua, rule)) in PROBES.iter().enumerate() {
        let ip = format!("203.0.113.{}", i + 1);
        let row = rows
            .iter()
            .find(|r| r.ip_address.as_deref() == Some(ip.as_str()) && r.error_code.as_deref() == Some(*rule))
            .unwrap_or_else(|| panic!("{uri} should fire {rule}: {rows:#?}"));
        assert_eq!(row.event_type, "SECURITY");
        assert_eq!(row.request_path.as_deref(), Some(uri.split('?').next().unwrap_or_default()));
        assert_eq!(row.actor_name.as_deref(), Some("mallory"));
        assert_eq!(row.request_id.as_ref().map(String::len), Some(36), "the context's request id");
        let description = row.description.clone().unwrap_or_default();
        assert!(description.starts_with("GET "), "{description}");
        if let Some(ua) = ua {
            assert!(description.contains(ua), "{description}");
        }
    }
    assert!(
        rows.iter().any(|r| r.ip_address.as_deref() == Some("203.0.113.200") && r.error_code.as_deref() == Some("oversized_headers")),
        "oversized headers: {rows:#?}"
    );
    let noise: Vec<_> = rows.iter().filter(|r| r.ip_address.as_deref().is_some_and(|ip| ip.starts_with("198.51.100."))).collect();
    assert!(noise.is_empty(), "look-alikes fired: {noise:#?}");
    assert_eq!(security.stats().failed, 0);
    Ok(())
});

backend_test!(async fn a_flood_writes_a_bounded_number_of_events(db) {
    const BOUND: usize = 20;
    let security = SecurityLayer::new(db.db.clone()).rate_limit(Duration::from_secs(3600), BOUND);
    let client_ip = connect_info_ip().trust_proxy("10.0.0.1")?;
    let app = routes(db.db.clone())
        .layer(security.clone())
        .layer(context_layer(client_ip));
    let mut ok = 0;
    for i in 0..10_000u32 {
        let (uri, ua, _) = PROBES[i as usize % PROBES.len()];
        // Half of them from a few clients, half from ever new (forwarded) addresses.
        let xff = if i % 2 == 0 { format!("203.0.113.{}", i % 5) } else { std::net::Ipv4Addr::from(0x0a01_0000 + i).to_string() };
        let mut b = request("GET", uri, "10.0.0.1:80").header("x-forwarded-for", xff);
        if let Some(ua) = ua {
            b = b.header("user-agent", ua);
        }
        if app.clone().oneshot(b.body(Body::empty())?).await?.status() != StatusCode::FORBIDDEN {
            ok += 1;
        }
    }
    assert_eq!(ok, 10_000);
    security.flush().await;
    let rows = events(&db.db).await?;
    let stats = security.stats();
    assert!(rows.len() <= BOUND, "{} rows for a bound of {BOUND}", rows.len());
    assert_eq!(rows.len() as u64, stats.written);
    assert!(stats.suppressed >= 10_000 - BOUND as u64, "{stats:?}");
    Ok(())
});

backend_test!(async fn slow_failing_and_panicking_handlers_are_recorded(db) {
    // The body takes 300 ms (a timer, which never fires early) against a 150 ms
    // threshold, so `/slow-body` is slow on every machine. The other requests are fast
    // only on an idle one: a loaded machine may flag them slow too, so the assertions
    // below are about each path's own event, not about the absence of slow ones.
    let security = SecurityLayer::new(db.db.clone()).slow_threshold(Some(Duration::from_millis(150)));
    let app = routes(db.db.clone())
        .layer(security.clone())
        .layer(context_layer(connect_info_ip()));

    let res = app.clone().oneshot(request("GET", "/slow-body", "192.0.2.1:1").body(Body::empty())?).await?;
    assert_eq!(res.status(), StatusCode::OK, "the handler itself returns at once");
    let body = axum::body::to_bytes(res.into_body(), 1024).await?;
    assert_eq!(&body[..], b"done");

    // Each response is read to its end, which is when the layer decides about "slow",
    // so every event is queued before the flush below.
    let res = app.clone().oneshot(request("GET", "/fail", "192.0.2.2:1").body(Body::empty())?).await?;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "the response is passed through");
    axum::body::to_bytes(res.into_body(), 1024).await?;

    let res = app.clone().oneshot(request("GET", "/panic", "192.0.2.3:1").header("x-user", "ada").body(Body::empty())?).await?;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.headers().contains_key("x-request-id"), "the context layer still answers");
    assert!(RequestContext::current().is_none());
    axum::body::to_bytes(res.into_body(), 1024).await?;

    let res = app.clone().oneshot(request("GET", "/hello", "192.0.2.4:1").body(Body::empty())?).await?;
    axum::body::to_bytes(res.into_body(), 1024).await?;

    security.flush().await;
    let rows = events(&db.db).await?;
    let of = |rule: &str, path: &str| -> Vec<system_event::Model> {
        rows.iter()
            .filter(|r| r.error_code.as_deref() == Some(rule) && r.request_path.as_deref() == Some(path))
            .cloned()
            .collect()
    };
    let slow = of("slow_request", "/slow-body");
    assert_eq!(slow.len(), 1, "{rows:#?}");
    assert_eq!(slow[0].event_type, "PERFORMANCE");
    assert_eq!(slow[0].ip_address.as_deref(), Some("192.0.2.1"));
    let fail = of("server_error", "/fail");
    assert_eq!(fail.len(), 1, "{rows:#?}");
    assert_eq!(fail[0].event_type, "ERROR");
    assert!(fail[0].title.contains("503"), "{}", fail[0].title);
    let panic = of("handler_panic", "/panic");
    assert_eq!(panic.len(), 1, "{rows:#?}");
    assert_eq!(panic[0].event_type, "ERROR");
    assert!(panic[0].title.contains("handler blew up"), "{}", panic[0].title);
    assert_eq!(panic[0].actor_name.as_deref(), Some("ada"));
    // Nothing else: no error events for other paths, and no other kinds of event; only
    // a slow_request may come on top, from a fast path on a loaded machine.
    for r in &rows {
        let expected = matches!(
            (r.error_code.as_deref(), r.request_path.as_deref()),
            (Some("slow_request"), _) | (Some("server_error"), Some("/fail")) | (Some("handler_panic"), Some("/panic"))
        );
        assert!(expected, "unexpected event {r:#?}");
    }

    // A streaming endpoint exempted by name is not "slow": nothing is queued for it.
    let exempt = SecurityLayer::new(db.db.clone())
        .slow_threshold(Some(Duration::from_millis(150)))
        .rules(RuleSet::default().allow_rule_on_path(SLOW_REQUEST, "/slow-body"));
    let app = routes(db.db.clone()).layer(exempt.clone());
    let res = app.oneshot(request("GET", "/slow-body", "192.0.2.5:1").body(Body::empty())?).await?;
    axum::body::to_bytes(res.into_body(), 1024).await?;
    exempt.flush().await;
    assert_eq!(exempt.stats().queued, 0);
    assert_eq!(events(&db.db).await?.len(), rows.len());
    Ok(())
});

backend_test!(async fn blocking_mode_answers_403_before_the_handler(db) {
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&reached);
    let security = SecurityLayer::new(db.db.clone())
        .rules(RuleSet::default().allow_path("/webhooks"))
        .blocking(true);
    let app = Router::new()
        .route(
            "/{*rest}",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { "reached" }
            }),
        )
        .layer(security.clone())
        .layer(context_layer(connect_info_ip()));

    let send = |uri: &'static str| {
        let app = app.clone();
        async move {
            let req = request("GET", uri, "203.0.113.50:1").body(Body::empty()).expect("request");
            app.oneshot(req).await.expect("infallible")
        }
    };
    let blocked = send("/.env").await;
    assert_eq!(blocked.status(), StatusCode::FORBIDDEN);
    assert!(blocked.headers().get("x-request-id").is_some_and(|v: &HeaderValue| !v.is_empty()));
    assert_eq!(send("/search?q=%3Cscript%3E").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(reached.load(Ordering::SeqCst), 0, "blocked requests never reach the handler");
    assert_eq!(send("/blog/postgresql-tips").await.status(), StatusCode::OK);
    assert_eq!(send("/webhooks/in?payload=%3Cscript%3E").await.status(), StatusCode::OK, "allowlisted");
    assert_eq!(reached.load(Ordering::SeqCst), 2);

    security.flush().await;
    let rows = events(&db.db).await?;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows.iter().all(|r| r.event_type == "SECURITY"));
    assert!(rows.iter().all(|r| r.description.as_deref().unwrap_or_default().contains("blocked with 403")));
    Ok(())
});

/// No database needed: the context is read by the inner service itself.
#[tokio::test]
async fn an_inner_services_call_sees_the_context() -> Result<(), Box<dyn std::error::Error>> {
    // Work an inner service does in `call`, before its future runs, sees the request's
    // context too (a tower service may do work there, not only in its future).
    use tower::Layer;
    let svc = context_layer(ClientIp::new()).layer(tower::service_fn(|_req: Request<Body>| {
        let seen = RequestContext::current().and_then(|c| c.actor_name().map(str::to_owned));
        async move {
            Ok::<_, std::convert::Infallible>(Response::new(Body::from(seen.unwrap_or_default())))
        }
    }));
    let req = request("GET", "/", "192.0.2.1:5000")
        .header("x-user", "ada")
        .body(Body::empty())?;
    let resp = svc.oneshot(req).await?;
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
    assert_eq!(&body[..], b"ada");
    Ok(())
}
