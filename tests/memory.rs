//! Nothing is retained per audited write: after warming up, 100,000 writes (a tenth of
//! them failing) leave the heap where it was. A separate test binary, so that its
//! counting allocator sees only this test's allocations.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use sea_orm::ActiveValue::{Set, Unchanged};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr};
use sea_orm_audit_tests::fixtures::article;
use sea_orm_audit_tests::{Backend, TestDb, TestResult, run};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts the bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const WRITES: usize = 100_000;

async fn write_batch(
    db: &sea_orm::DatabaseConnection,
    ids: &[i64],
    round: usize,
) -> Result<usize, DbErr> {
    let mut failed = 0;
    for (k, &id) in ids.iter().enumerate() {
        let title = if k % 10 == 9 {
            // Collides with the unique title of another row: the UPDATE fails.
            format!("title {}", ids[(k + 1) % ids.len()])
        } else {
            format!("title {id}")
        };
        let am = article::ActiveModel {
            id: Unchanged(id),
            title: Set(title),
            views: Set(round as i32),
            ..Default::default()
        };
        if am.update(db).await.is_err() {
            failed += 1;
        }
    }
    Ok(failed)
}

#[tokio::test(flavor = "current_thread")]
async fn no_memory_is_retained_per_write() {
    // `run` drops the database file afterwards, also when an assertion fails.
    run(
        Backend::Sqlite,
        "memory::no_memory_is_retained_per_write",
        |db| Box::pin(async move { retained(&db).await }),
    )
    .await
}

async fn retained(db: &TestDb) -> TestResult {
    // Durability is not what this test is about; fsync per commit would dominate it.
    db.db.execute_unprepared("PRAGMA synchronous = OFF").await?;
    db.db
        .execute_unprepared("CREATE UNIQUE INDEX article_title ON article(title)")
        .await?;
    let mut ids = Vec::new();
    for i in 0..100 {
        let a = article::ActiveModel {
            title: Set(format!("seed {i}")),
            body: Set("b".repeat(230)),
            body_html: Set(String::new()),
            editor_token: Set(None),
            views: Set(0),
            published: Set(false),
            ..Default::default()
        }
        .insert(&db.db)
        .await?;
        ids.push(a.id);
    }
    for id in &ids {
        article::ActiveModel {
            id: Unchanged(*id),
            title: Set(format!("title {id}")),
            ..Default::default()
        }
        .update(&db.db)
        .await?;
    }
    // Warm-up: statement caches, pools and lazily built statics reach their size.
    for round in 0..20 {
        write_batch(&db.db, &ids, round).await?;
    }
    let before = LIVE.load(Ordering::Relaxed);
    let mut failed = 0;
    for round in 0..WRITES / ids.len() {
        failed += write_batch(&db.db, &ids, 1000 + round).await?;
    }
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(failed, WRITES / 10, "a tenth of the writes fail");
    let grown = after - before;
    // One retained before-image per write would be ~100 bytes x 100,000 = ~10 MB.
    assert!(
        grown < 256 * 1024,
        "heap grew by {grown} bytes over {WRITES} writes"
    );
    Ok(())
}
