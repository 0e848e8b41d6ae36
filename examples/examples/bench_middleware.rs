//! What the middleware costs per request, against the same router without it, measured
//! in the same run.
//!
//! Run with `cargo run --release -p sea-orm-audit-examples --example bench_middleware`.
//! Requests go through `tower::ServiceExt::oneshot` (no sockets), to a handler that
//! writes nothing, so the figures are the layers' own overhead: building the request
//! context, checking the rules and timing the body. A hostile path adds the (rate
//! limited, queued) event.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use sea_orm::Database;
use sea_orm_audit::middleware::{AuditContextLayer, SecurityLayer};
use sea_orm_audit_migration::Migrator;
use sea_orm_migration::MigratorTrait;
use tower::ServiceExt;

const REQUESTS: u32 = 50_000;

async fn run(app: &Router, uri: &str) -> Duration {
    let start = Instant::now();
    for _ in 0..REQUESTS {
        let req = Request::get(uri)
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) bench/1.0")
            .header("cookie", "session=abc123")
            .body(Body::empty())
            .expect("request");
        let res = app.clone().oneshot(req).await.expect("infallible");
        axum::body::to_bytes(res.into_body(), 1024)
            .await
            .expect("body");
    }
    start.elapsed()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = Database::connect("sqlite::memory:").await?;
    Migrator::up(&db, None).await?;
    let routes = || Router::new().route("/{*path}", get(|| async { "ok" }));

    let plain = routes();
    let context = routes().layer(AuditContextLayer::new());
    let security = SecurityLayer::new(db.clone());
    let both = routes()
        .layer(security.clone())
        .layer(AuditContextLayer::new());

    // Warm up allocators and the writer task.
    run(&both, "/warm/up").await;

    let uri = "/projects/42/tasks?page=2&sort=-created_at";
    let base = run(&plain, uri).await;
    let ctx = run(&context, uri).await;
    let full = run(&both, uri).await;
    let hostile = run(&both, "/static/%2e%2e/.env?id=1%20UNION%20SELECT%201").await;
    security.flush().await;

    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(REQUESTS);
    println!("{REQUESTS} requests each, µs per request (ratio to the plain router)");
    println!("plain router           {:>7.2}", per(base));
    for (name, d) in [
        ("+ context layer", ctx),
        ("+ context + security", full),
        ("  hostile path", hostile),
    ] {
        println!(
            "{name:<22} {:>7.2}  ({:.2}x, +{:.2} µs)",
            per(d),
            d.as_secs_f64() / base.as_secs_f64(),
            per(d) - per(base)
        );
    }
    let stats = security.stats();
    println!(
        "events: {} written, {} suppressed by the rate limit, {} dropped",
        stats.written, stats.suppressed, stats.dropped
    );
    Ok(())
}
