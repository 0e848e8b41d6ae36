use std::sync::Arc;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_audit::entity::system_event;
use sea_orm_audit::{
    AuditError, EventType, RequestContext, SystemEvent, SystemEventLayer, install_panic_hook,
    log_system_event, resolve_event, spawn_event_writer, system_event,
};
use sea_orm_audit_tests::{Backend, backend_test};
use tracing_subscriber::layer::SubscriberExt;

async fn events(
    db: &sea_orm::DatabaseConnection,
) -> Result<Vec<system_event::Model>, sea_orm::DbErr> {
    system_event::Entity::find()
        .order_by_asc(system_event::Column::Id)
        .all(db)
        .await
}

backend_test!(async fn events_capture_caller_location_and_context(db) {
    let ctx = RequestContext::new().actor("5", "Ops").ip("192.0.2.1").request_id("req-sys");
    let line = line!() + 1;
    let ev = system_event!(EventType::Error, "payment gateway timeout")
        .description("upstream took 31 s")
        .error_code("GW_TIMEOUT")
        .stack_trace("frame 1\nframe 2")
        .request_path("/checkout?step=pay")
        .function("pay");
    let id = ctx.scope(log_system_event(&db.db, ev)).await?;
    let plain_line = line!() + 1;
    let plain = log_system_event(&db.db, SystemEvent::new(EventType::Maintenance, "  \u{7}vacuum\n")).await?;

    let rows = events(&db.db).await?;
    let r = rows.iter().find(|r| r.id == id).expect("row");
    assert_eq!(r.event_type, "ERROR");
    assert_eq!(r.title, "payment gateway timeout");
    assert_eq!(r.description.as_deref(), Some("upstream took 31 s"));
    assert_eq!(r.error_code.as_deref(), Some("GW_TIMEOUT"));
    assert_eq!(r.stack_trace.as_deref(), Some("frame 1\nframe 2"));
    assert_eq!(r.request_path.as_deref(), Some("/checkout?step=pay"));
    assert_eq!(r.module.as_deref(), Some(module_path!()));
    assert_eq!(r.function.as_deref(), Some("pay"));
    assert_eq!(r.file.as_deref(), Some(file!()));
    assert_eq!(r.line, Some(line as i32));
    assert_eq!(r.actor_id.as_deref(), Some("5"));
    assert_eq!(r.actor_name.as_deref(), Some("Ops"));
    assert_eq!(r.ip_address.as_deref(), Some("192.0.2.1"));
    assert_eq!(r.request_id.as_deref(), Some("req-sys"));
    assert!(!r.resolved && r.resolved_at.is_none() && r.resolved_by.is_none());

    let p = rows.iter().find(|r| r.id == plain).expect("row");
    assert_eq!(p.event_type, "MAINTENANCE");
    assert_eq!(p.title, "vacuum");
    assert_eq!(p.line, Some(plain_line as i32));
    assert!(p.module.is_none(), "SystemEvent::new cannot see the module; the macro can");
    assert!(p.actor_id.is_none() && p.ip_address.is_none());

    let huge = log_system_event(&db.db, SystemEvent::new(EventType::Info, &"🦀".repeat(900))).await?;
    let h = system_event::Entity::find_by_id(huge).one(&db.db).await?.expect("row");
    assert_eq!(h.title.chars().count(), sea_orm_audit::MAX_TITLE_CHARS);
    Ok(())
});

backend_test!(async fn resolving_once_twice_and_unknown(db) {
    let id = log_system_event(&db.db, SystemEvent::new(EventType::Security, "odd login pattern")).await?;
    let row = resolve_event(&db.db, id, "Ada", Some("false alarm")).await?;
    assert!(row.resolved);
    assert_eq!(row.resolved_by.as_deref(), Some("Ada"));
    assert_eq!(row.resolution_notes.as_deref(), Some("false alarm"));
    let first_at = row.resolved_at.expect("stamped");

    match resolve_event(&db.db, id, "Bob", Some("again")).await {
        Err(AuditError::AlreadyResolved { id: got, resolved_at }) => {
            assert_eq!(got, id);
            assert_eq!(resolved_at, first_at);
        }
        other => panic!("expected AlreadyResolved, got {other:?}"),
    }
    let kept = system_event::Entity::find_by_id(id).one(&db.db).await?.expect("row");
    assert_eq!(kept.resolved_by.as_deref(), Some("Ada"), "the first resolution is kept");
    assert!(matches!(
        resolve_event(&db.db, id + 100, "Ada", None).await,
        Err(AuditError::NotFound { table: "system_event", .. })
    ));

    // Concurrent resolutions: exactly one wins.
    let id = log_system_event(&db.db, SystemEvent::new(EventType::Error, "race")).await?;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let conn = db.db.clone();
        set.spawn(async move { resolve_event(&conn, id, &format!("op{i}"), None).await });
    }
    let (mut won, mut lost) = (0, 0);
    while let Some(r) = set.join_next().await {
        match r? {
            Ok(_) => won += 1,
            Err(AuditError::AlreadyResolved { .. }) => lost += 1,
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!((won, lost), (1, 7));
    Ok(())
});

backend_test!(async fn tracing_layer_counts_drops_and_flushes_on_shutdown(db) {
    // Flush on shutdown: everything queued is written.
    let (sink, handle) = spawn_event_writer(db.connect_again().await?, 1000)?;
    let layer = SystemEventLayer::new(sink.clone());
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..10 {
            tracing::warn!(attempt = i, "disk almost full");
        }
        tracing::error!(error_code = "E42", "payment failed");
        tracing::info!("below WARN: not recorded");
        tracing::warn!(target: "sqlx::query", "ignored target");
    });
    let stats = handle.shutdown().await;
    assert_eq!((stats.written, stats.dropped, stats.failed), (11, 0, 0));
    let rows = events(&db.db).await?;
    assert_eq!(rows.len(), 11);
    assert_eq!(rows.iter().filter(|r| r.event_type == "WARNING").count(), 10);
    let err = rows.iter().find(|r| r.event_type == "ERROR").expect("error row");
    assert_eq!(err.title, "payment failed");
    assert_eq!(err.error_code.as_deref(), Some("E42"));
    assert_eq!(err.file.as_deref(), Some(file!()));
    assert!(err.module.as_deref().unwrap_or_default().contains("::system"));
    assert!(rows[0].description.as_deref().unwrap_or_default().contains("attempt=0"));
    // After shutdown the sink only counts drops; it never blocks or panics.
    assert!(!sink.try_record(SystemEvent::new(EventType::Info, "late")));
    assert_eq!(sink.stats().dropped, 1);

    // A full queue drops and counts instead of blocking the application. The writer is
    // stalled on purpose: another connection holds the write lock on `system_event`, so
    // the writer's first insert waits. With a queue of 1, at most two events get past
    // the sink (one in the stalled insert, one queued) and the other 298 must be
    // dropped, at once: a sink that waited for room would never return, because the
    // lock is only released after the burst.
    let (sink, handle) = spawn_event_writer(db.connect_again().await?, 1)?;
    let locker = db.connect_again().await?;
    let lock = lock_system_event(&locker, db.backend).await?;
    let burst = tokio::task::spawn_blocking(move || {
        let subscriber = tracing_subscriber::registry().with(SystemEventLayer::new(sink));
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..300 {
                tracing::error!(n = i, "burst");
            }
        });
    });
    // A guard against a hang, not a measure of speed: the burst needs microseconds.
    let emitted = tokio::time::timeout(std::time::Duration::from_secs(120), burst).await;
    release(lock, db.backend).await?;
    locker.close().await?;
    emitted.map_err(|_| "emitting into a full queue blocked while the writer was stalled")??;
    let stats = handle.shutdown().await;
    assert_eq!(stats.failed, 0, "{stats:?}");
    assert_eq!(stats.written + stats.dropped, 300, "{stats:?}");
    assert!((1..=2).contains(&stats.written), "{stats:?}");
    assert_eq!(events(&db.db).await?.len() as u64, 11 + stats.written);
    Ok(())
});

/// Takes the write lock on `system_event` from `conn` until [`release`]: writers on
/// other connections wait (readers do not, except on MariaDB).
async fn lock_system_event(
    conn: &DatabaseConnection,
    backend: Backend,
) -> Result<DatabaseTransaction, DbErr> {
    let txn = match backend {
        // BEGIN IMMEDIATE takes SQLite's one write lock for the whole database.
        Backend::Sqlite => {
            conn.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?
        }
        Backend::Postgres => {
            let txn = conn.begin().await?;
            txn.execute_unprepared("LOCK TABLE system_event IN EXCLUSIVE MODE")
                .await?;
            txn
        }
        // LOCK TABLES belongs to the session (and commits the transaction it runs in);
        // the transaction only keeps the same pooled connection for UNLOCK TABLES.
        Backend::MySql => {
            let txn = conn.begin().await?;
            txn.execute_unprepared("LOCK TABLES system_event WRITE")
                .await?;
            txn
        }
    };
    Ok(txn)
}

async fn release(lock: DatabaseTransaction, backend: Backend) -> Result<(), DbErr> {
    if backend == Backend::MySql {
        lock.execute_unprepared("UNLOCK TABLES").await?;
    }
    lock.rollback().await
}

backend_test!(async fn tracing_layer_ignores_its_own_writes(db) {
    // Everything on one thread, so the writer's task and the application share the
    // thread-local subscriber: without the writer-task check, every statement the
    // writer runs (sqlx logs them, logging is on for this connection) would be queued
    // and written again, forever.
    let written = tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            s.spawn(|| -> Result<(u64, u64), Box<dyn std::error::Error + Send + Sync>> {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                let conn = rt.block_on(db.connect_again_logging())?;
                let _enter = rt.enter();
                let (sink, handle) = spawn_event_writer(conn, 1000)?;
                let layer = SystemEventLayer::new(sink)
                    .min_level(tracing::Level::TRACE)
                    .clear_ignored_targets();
                let subscriber = tracing_subscriber::registry().with(layer);
                tracing::subscriber::with_default(subscriber, || {
                    rt.block_on(async {
                        for i in 0..3 {
                            tracing::warn!(n = i, "application event");
                        }
                        handle.flush().await?;
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        let mid = handle.stats().written;
                        let stats = handle.shutdown().await;
                        Ok((mid, stats.written))
                    })
                })
            })
            .join()
            .map_err(|_| "writer thread panicked")?
        })
    })?;
    assert_eq!(written, (3, 3));
    let rows = events(&db.db).await?;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.title == "application event"));
    Ok(())
});

static PANIC_HOOK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type PanicHook = dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync;

backend_test!(async fn panic_hook_records_panics_without_blocking(db) {
    let _one_hook_at_a_time = PANIC_HOOK.lock().await;
    let (sink, handle) = spawn_event_writer(db.connect_again().await?, 64)?;
    // The hook is process-wide: whatever was installed before (the test harness's, or
    // another library's) must be back afterwards. A hook cannot be cloned, so the
    // previous one is shared between the hook chain and the restore.
    let previous: Arc<PanicHook> = Arc::from(std::panic::take_hook());
    let chained = Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| chained(info)));
    install_panic_hook(sink);
    let marker = format!("boom {}", db.backend.name());
    let m = marker.clone();
    let line = line!() + 1;
    let spawned = std::thread::Builder::new().name("worker-7".into()).spawn(move || panic!("{m}"));
    let joined = spawned.map(|t| t.join());
    drop(std::panic::take_hook());
    std::panic::set_hook(Box::new(move |info| previous(info)));
    assert!(joined?.is_err());
    handle.flush().await?;
    handle.shutdown().await;

    let rows = system_event::Entity::find()
        .filter(system_event::Column::Title.eq(format!("panic: {marker}")))
        .all(&db.db)
        .await?;
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.event_type, "ERROR");
    assert_eq!(r.error_code.as_deref(), Some("PANIC"));
    assert_eq!(r.description.as_deref(), Some(marker.as_str()));
    assert_eq!(r.file.as_deref(), Some(file!()));
    assert_eq!(r.line, Some(line as i32));
    assert_eq!(r.function.as_deref(), Some("thread 'worker-7'"));
    assert!(!r.stack_trace.as_deref().unwrap_or_default().is_empty());
    Ok(())
});

backend_test!(async fn a_writer_whose_handle_is_dropped_keeps_writing(db) {
    // As its documentation says: dropping the handle leaves the writer running for as
    // long as a sink can still send.
    let (sink, handle) = spawn_event_writer(db.connect_again().await?, 16)?;
    drop(handle);
    assert!(sink.try_record(SystemEvent::new(EventType::Info, "after the handle")));
    // Wait, boundedly, for the background writer to store it.
    for _ in 0..200 {
        let stored = system_event::Entity::find()
            .filter(system_event::Column::Title.eq("after the handle"))
            .all(&db.db)
            .await?;
        if stored.len() == 1 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    Err("the event was never written".into())
});
