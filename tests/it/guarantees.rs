//! What the auditing connection and the hooks promise at their edges: a change never
//! commits without its audit row, whatever failed or was cancelled in between; every
//! row an INSERT writes is recorded under the key it was stored with; an audit row
//! records the value stored, not the value sent; and reads, locking ones included,
//! pass through.

use chrono::{TimeZone, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryOrder, QuerySelect,
    TransactionTrait,
};
use sea_orm_audit::entity::audit_log;
use sea_orm_audit::{AuditError, AuditedConnection, WrapperOptions};
use sea_orm_audit_tests::fixtures::article;
use sea_orm_audit_tests::{TestDb, TestResult, backend_only_test, backend_test, create_table};
use serde_json::json;

use crate::common::{art, changes, session_id, trail, until_waiting_on};

/// A table with a nullable UTC time, audited through the hooks.
mod stamp {
    use sea_orm::entity::prelude::*;
    use sea_orm_audit::Audited;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
    #[sea_orm(table_name = "guarantee_stamp")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub label: String,
        pub due: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}
}

fn art_with_id(id: i64, title: &str) -> article::ActiveModel {
    let mut a = art(title);
    a.id = Set(id);
    a
}

async fn articles<C: ConnectionTrait>(db: &C) -> Result<Vec<article::Model>, DbErr> {
    article::Entity::find()
        .order_by_asc(article::Column::Id)
        .all(db)
        .await
}

/// Makes every INSERT into `audit_log` of a row whose repr is `boom` fail.
async fn fail_audit_rows_named_boom(db: &TestDb) -> Result<(), DbErr> {
    let sql = match db.db.get_database_backend() {
        DbBackend::Sqlite => {
            "CREATE TRIGGER audit_boom BEFORE INSERT ON audit_log \
             WHEN NEW.object_repr = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END"
        }
        DbBackend::Postgres => {
            "CREATE FUNCTION audit_boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.object_repr = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER audit_boom BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION audit_boom()"
        }
        _ => {
            "CREATE TRIGGER audit_boom BEFORE INSERT ON audit_log FOR EACH ROW \
             BEGIN IF NEW.object_repr = 'boom' THEN \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom'; END IF; END"
        }
    };
    db.execute_unprepared(sql).await.map(drop)
}

/// Another session's transaction holding the lock on article `id`, and that session's id.
async fn hold_lock_on(db: &TestDb, id: i64) -> Result<(sea_orm::DatabaseTransaction, i64), DbErr> {
    let holder = db.begin().await?;
    holder
        .execute_unprepared(&format!("UPDATE article SET views = views WHERE id = {id}"))
        .await?;
    let holder_id = session_id(&holder).await?;
    Ok((holder, holder_id))
}

fn is_unrecorded(e: &DbErr) -> bool {
    AuditError::audit_message(e).is_some_and(|m| m.contains("may have no audit row"))
}

backend_test!(async fn a_lost_flush_refuses_the_commit(db) {
    sea_orm_audit::register::<article::Entity>();
    fail_audit_rows_named_boom(db).await?;
    // Without the one-statement path, PostgreSQL buffers the rows too.
    let audited = AuditedConnection::with_options(
        (**db).clone(),
        WrapperOptions::default().one_statement(false),
    );
    let a = art("a").insert(&audited).await?;

    let txn = audited.begin().await?;
    let mut edit: article::ActiveModel = a.clone().into();
    edit.title = Set("boom".into());
    edit.update(&txn).await?;
    // Reading the log writes the pending rows first; the trigger refuses them, and a
    // caller who ignores that error goes on to commit.
    let read = audit_log::Entity::find().all(&txn).await;
    assert!(read.is_err(), "the flush should have failed: {read:?}");
    let err = txn.commit().await.expect_err("commit must refuse");
    assert!(is_unrecorded(&err), "{err}");

    // The change went with its lost row: the data is as it was, with its one CREATE row.
    assert_eq!(articles(&**db).await?, vec![a.clone()]);
    let rows = trail(&**db).await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].action, "CREATE");

    // A transaction whose rows were written commits as before.
    let txn = audited.begin().await?;
    let mut edit: article::ActiveModel = a.clone().into();
    edit.title = Set("b".into());
    edit.update(&txn).await?;
    txn.commit().await?;
    assert_eq!(trail(&**db).await?.len(), 2);
    Ok(())
});

backend_test!(async fn a_flush_that_fails_at_commit_rolls_back(db) {
    sea_orm_audit::register::<article::Entity>();
    fail_audit_rows_named_boom(db).await?;
    let audited = AuditedConnection::with_options(
        (**db).clone(),
        WrapperOptions::default().one_statement(false),
    );
    let txn = audited.begin().await?;
    art("boom").insert(&txn).await?;
    assert!(txn.commit().await.is_err());
    assert!(articles(&**db).await?.is_empty());
    assert!(trail(&**db).await?.is_empty());
    Ok(())
});

backend_test!(async fn every_inserted_row_is_recorded_under_its_stored_key(db) {
    sea_orm_audit::register::<article::Entity>();
    let audited = AuditedConnection::new((**db).clone());
    let mysql = db.db.get_database_backend() == DbBackend::MySql;

    // One model sets its key and the other leaves it to the database. SeaORM binds a
    // NULL for the second key; without RETURNING the rows it generates cannot be told
    // apart, so the write is refused, and nothing is written. (PostgreSQL refuses the
    // NULL key itself; SQLite's exec() reads the keys back with RETURNING.)
    let mixed = [art_with_id(500, "set"), art("generated")];
    let outcomes = [
        article::Entity::insert_many(mixed.clone())
            .exec(&audited)
            .await
            .map(drop),
        article::Entity::insert_many(mixed)
            .exec_without_returning(&audited)
            .await
            .map(drop),
    ];
    for outcome in outcomes {
        match outcome {
            Ok(()) => {}
            Err(e) => match AuditError::audit_message(&e) {
                Some(m) => assert!(m.contains("generate the others"), "{e}"),
                None => assert!(!mysql, "MariaDB stores the rows: {e}"),
            },
        }
    }
    if mysql {
        // MariaDB has no INSERT ... RETURNING for SeaORM's exec: both are refused.
        assert!(articles(&**db).await?.is_empty());
    }

    // On MySQL a key of 0 asks for a generated one.
    let zero = article::Entity::insert(art_with_id(0, "zero"))
        .exec(&audited)
        .await?;
    assert!(!mysql || zero.last_insert_id != 0);

    // Whatever was written, each stored row has exactly one CREATE row, under its key.
    let stored = articles(&**db).await?;
    let rows = trail(&**db).await?;
    assert_eq!(rows.len(), stored.len(), "{rows:#?}");
    for a in &stored {
        let row = rows
            .iter()
            .find(|r| r.object_pk.as_deref() == Some(a.id.to_string().as_str()))
            .unwrap_or_else(|| panic!("no audit row for {a:?}: {rows:#?}"));
        assert_eq!(row.action, "CREATE");
        assert_eq!(changes(row)["title"]["new"], json!(a.title));
    }
    Ok(())
});

// MySQL only: the other backends have no key step.
backend_only_test!(MySql, async fn generated_keys_follow_the_servers_step(db) => keys_with_a_step(db));

async fn keys_with_a_step(db: &TestDb) -> TestResult {
    sea_orm_audit::register::<article::Entity>();
    let audited = AuditedConnection::new((**db).clone());
    let txn = audited.begin().await?;
    // The transaction holds one connection, so the session setting holds for the
    // INSERT; statements on `inner()` are not audited.
    txn.inner()
        .execute_unprepared("SET SESSION auto_increment_increment = 3")
        .await?;
    article::Entity::insert_many([art("a"), art("b"), art("c")])
        .exec(&txn)
        .await?;
    txn.inner()
        .execute_unprepared("SET SESSION auto_increment_increment = 1")
        .await?;
    txn.commit().await?;
    let stored = articles(&**db).await?;
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[1].id - stored[0].id, 3);
    let mut recorded: Vec<String> = trail(&**db)
        .await?
        .into_iter()
        .filter_map(|r| r.object_pk)
        .collect();
    recorded.sort();
    let mut expected: Vec<String> = stored.iter().map(|a| a.id.to_string()).collect();
    expected.sort();
    assert_eq!(recorded, expected);
    Ok(())
}

backend_test!(async fn an_update_records_the_time_stored_not_the_time_sent(db) {
    create_table(&**db, stamp::Entity).await?;
    let s = stamp::ActiveModel {
        label: Set("s".into()),
        due: Set(None),
        ..Default::default()
    }
    .insert(&**db)
    .await?;
    // MariaDB binds a UTC time as a TIMESTAMP, so one past 2038 is stored as NULL;
    // the other backends store it.
    let far = Utc.with_ymd_and_hms(2040, 1, 1, 0, 0, 0).single();
    let txn = db.begin().await?;
    let mut edit: stamp::ActiveModel = s.clone().into();
    edit.due = Set(far);
    edit.update(&txn).await?;
    txn.commit().await?;

    let stored = stamp::Entity::find_by_id(s.id)
        .one(&**db)
        .await?
        .ok_or(DbErr::RecordNotFound("stamp".into()))?;
    let updates: Vec<audit_log::Model> = trail(&**db)
        .await?
        .into_iter()
        .filter(|r| r.action == "UPDATE")
        .collect();
    if stored.due == s.due {
        assert!(updates.is_empty(), "no change was stored: {updates:#?}");
    } else {
        assert_eq!(updates.len(), 1);
        let recorded = &changes(&updates[0])["due"]["new"];
        assert_eq!(recorded, &serde_json::to_value(stored.due)?);
    }
    if db.db.get_database_backend() != DbBackend::MySql {
        assert_eq!(stored.due, far);
    }
    Ok(())
});

backend_test!(async fn locking_reads_pass_through(db) {
    sea_orm_audit::register::<article::Entity>();
    let audited = AuditedConnection::new((**db).clone());
    let a = art("locked").insert(&audited).await?;
    let txn = audited.begin().await?;
    let exclusive = article::Entity::find().lock_exclusive().all(&txn).await?;
    let shared = article::Entity::find().lock_shared().all(&txn).await?;
    txn.commit().await?;
    assert_eq!(exclusive, vec![a.clone()]);
    assert_eq!(shared, vec![a.clone()]);
    let direct = article::Entity::find().lock_exclusive().all(&audited).await?;
    assert_eq!(direct, vec![a]);
    assert_eq!(trail(&**db).await?.len(), 1);
    Ok(())
});

// PostgreSQL, READ COMMITTED: a bulk write on the Rust path (here forced with
// `one_statement(false)`) changes exactly the rows whose before-images it locked,
// even when a matching row is committed while it waits for its lock.
backend_only_test!(Postgres, async fn a_bulk_write_changes_only_the_rows_it_recorded(db) => rows_committed_while_waiting(db));

async fn rows_committed_while_waiting(db: &TestDb) -> TestResult {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, QueryFilter};

    sea_orm_audit::register::<article::Entity>();
    let audited = AuditedConnection::with_options(
        (**db).clone(),
        WrapperOptions::default().one_statement(false),
    );
    for (i, delete) in [false, true].into_iter().enumerate() {
        let prefix = format!("x{i}-");
        let a = art(&format!("{prefix}a")).insert(&**db).await?;
        // Another session holds the lock on `a`.
        let (holder, holder_id) = hold_lock_on(db, a.id).await?;
        let conn = audited.clone();
        let filter = article::Column::Title.starts_with(prefix.as_str());
        let write = tokio::spawn(async move {
            if delete {
                article::Entity::delete_many()
                    .filter(filter)
                    .exec(&conn)
                    .await
                    .map(|r| r.rows_affected)
            } else {
                article::Entity::update_many()
                    .col_expr(article::Column::Views, Expr::value(5))
                    .filter(filter)
                    .exec(&conn)
                    .await
                    .map(|r| r.rows_affected)
            }
        });
        until_waiting_on(&**db, holder_id, || write.is_finished()).await?;
        // A matching row commits while the audited write waits.
        art(&format!("{prefix}late")).insert(&**db).await?;
        holder.commit().await?;
        let affected = write.await??;

        let action = if delete { "DELETE" } else { "UPDATE" };
        let mut recorded: Vec<String> = trail(&**db)
            .await?
            .into_iter()
            .filter(|r| r.action == action)
            .filter_map(|r| r.object_repr)
            .filter(|r| r.starts_with(prefix.as_str()))
            .collect();
        recorded.sort();
        let stored = articles(&**db).await?;
        let mut changed: Vec<String> = if delete {
            [format!("{prefix}a"), format!("{prefix}late")]
                .into_iter()
                .filter(|t| !stored.iter().any(|s| &s.title == t))
                .collect()
        } else {
            stored
                .into_iter()
                .filter(|s| s.title.starts_with(prefix.as_str()) && s.views == 5)
                .map(|s| s.title)
                .collect()
        };
        changed.sort();
        // Every row the statement changed has its row, and the count it reported is
        // the number recorded.
        assert_eq!(changed, recorded, "{action}");
        assert_eq!(affected, recorded.len() as u64, "{action}");
    }
    Ok(())
}

/// An audited write cancelled while it waits for a lock. On PostgreSQL the wait is in
/// the write itself (its locked read and the UPDATE are one statement), which the
/// server still runs: the transaction can no longer commit. On MariaDB the wait is in
/// the locked read before the write, so nothing was written and the transaction
/// commits as usual. (On SQLite a write waits in the driver, not on the server.)
async fn cancelled_while_waiting(db: &TestDb) -> TestResult {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, QueryFilter};

    sea_orm_audit::register::<article::Entity>();
    let audited = AuditedConnection::with_options(
        (**db).clone(),
        WrapperOptions::default().one_statement(false),
    );
    let a = art("a").insert(&**db).await?;
    let (holder, holder_id) = hold_lock_on(db, a.id).await?;

    let txn = audited.begin().await?;
    let write = article::Entity::update_many()
        .col_expr(article::Column::Views, Expr::value(7))
        .filter(article::Column::Id.eq(a.id))
        .exec(&txn);
    // Give up on the write (drop it) as soon as it waits for the lock.
    tokio::select! {
        done = write => return Err(format!("the write did not wait: {done:?}").into()),
        waited = until_waiting_on(&**db, holder_id, || false) => waited?,
    }
    holder.commit().await?;
    if db.db.get_database_backend() == DbBackend::Postgres {
        let err = txn.commit().await.expect_err("commit must refuse");
        assert!(is_unrecorded(&err), "{err}");
    } else {
        txn.commit().await?;
    }
    // Either way the data is unchanged, and the trail holds only its CREATE row.
    assert_eq!(articles(&**db).await?, vec![a]);
    let rows = trail(&**db).await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].action, "CREATE");
    Ok(())
}

backend_only_test!(Postgres, async fn a_cancelled_write_refuses_the_commit_postgres(db) => cancelled_while_waiting(db));

backend_only_test!(MySql, async fn a_write_cancelled_before_it_runs_still_commits_mysql(db) => cancelled_while_waiting(db));

backend_test!(async fn an_unaudited_statement_whose_row_fails_refuses_the_commit(db) {
    sea_orm_audit::register::<article::Entity>();
    fail_audit_rows_named_boom(db).await?;
    // The STATEMENT row has no repr; make it fail through its reason instead.
    let sql = match db.db.get_database_backend() {
        DbBackend::Sqlite => "DROP TRIGGER audit_boom; CREATE TRIGGER audit_boom BEFORE INSERT ON audit_log \
             WHEN NEW.reason = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END",
        DbBackend::Postgres => "CREATE OR REPLACE FUNCTION audit_boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.reason = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$",
        _ => "DROP TRIGGER audit_boom",
    };
    db.execute_unprepared(sql).await?;
    if db.db.get_database_backend() == DbBackend::MySql {
        db.execute_unprepared(
            "CREATE TRIGGER audit_boom BEFORE INSERT ON audit_log FOR EACH ROW \
             BEGIN IF NEW.reason = 'boom' THEN \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom'; END IF; END",
        )
        .await?;
    }
    let a = art("a").insert(&**db).await?;
    let audited = AuditedConnection::new((**db).clone());
    let txn = audited.begin().await?;
    let stmt = sea_orm::Statement::from_string(
        db.db.get_database_backend(),
        format!("UPDATE article SET views = 9 WHERE id = {}", a.id),
    );
    assert!(txn.execute_unaudited(stmt, "boom").await.is_err());
    let err = txn.commit().await.expect_err("commit must refuse");
    assert!(is_unrecorded(&err), "{err}");
    assert_eq!(articles(&**db).await?, vec![a]);
    Ok(())
});

// MariaDB: a deadlock rolls back the whole transaction, earlier audited changes
// included. The auditing transaction must then refuse to commit: writing its pending
// rows afterwards would record changes that were undone, outside any transaction.
backend_only_test!(MySql, async fn a_deadlock_refuses_the_commit_mysql(db) => deadlocked(db, false));

// The same with the deadlock in a savepoint: MySQL rolls back the whole transaction,
// so the transaction around it must refuse too.
backend_only_test!(MySql, async fn a_deadlock_in_a_savepoint_refuses_the_outer_commit_mysql(db) => deadlocked(db, true));

async fn deadlocked(db: &TestDb, in_savepoint: bool) -> TestResult {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, QueryFilter};

    sea_orm_audit::register::<article::Entity>();
    let audited = AuditedConnection::new((**db).clone());
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(art(&format!("row {i}")).insert(&**db).await?.id);
    }
    let (first, second) = (ids[0], ids[1]);
    let set_views = |id: i64, views: i32| {
        article::Entity::update_many()
            .col_expr(article::Column::Views, Expr::value(views))
            .filter(article::Column::Id.eq(id))
    };

    // The audited transaction changes the first row (its audit row waits for commit).
    let txn = audited.begin().await?;
    set_views(first, 1).exec(&txn).await?;
    // The other transaction changes more rows, so InnoDB picks the audited one as the
    // deadlock's victim, then holds the second row.
    let other = db.begin().await?;
    for &id in &ids[2..] {
        set_views(id, 5).exec(&other).await?;
    }
    set_views(second, 5).exec(&other).await?;
    let other_id = session_id(&other).await?;
    let waiting = tokio::spawn(async move {
        let nested = if in_savepoint {
            match txn.begin().await {
                Ok(n) => Some(n),
                Err(e) => return (txn, None, Err(e)),
            }
        } else {
            None
        };
        let out = set_views(second, 1)
            .exec(nested.as_ref().unwrap_or(&txn))
            .await;
        (txn, nested, out)
    });
    until_waiting_on(&**db, other_id, || waiting.is_finished()).await?;
    // Closing the cycle: InnoDB rolls back the smaller transaction, the audited one.
    set_views(first, 5).exec(&other).await?;
    other.commit().await?;
    let (txn, nested, out) = waiting.await?;
    let err = out.expect_err("the audited transaction should be the deadlock's victim");
    assert!(err.to_string().contains("1213 (40001)"), "{err}");
    // MySQL would run a retry outside any transaction: it is refused.
    let retry = set_views(second, 1)
        .exec(nested.as_ref().unwrap_or(&txn))
        .await
        .expect_err("a statement after the deadlock must be refused");
    assert!(is_unrecorded(&retry), "{retry}");
    if let Some(nested) = nested {
        assert!(nested.commit().await.is_err());
    }
    let err = txn.commit().await.expect_err("commit must refuse");
    assert!(is_unrecorded(&err), "{err}");
    // No audit row claims the change the deadlock undid.
    let updates = trail(&**db)
        .await?
        .into_iter()
        .filter(|r| r.action == "UPDATE")
        .count();
    assert_eq!(updates, 0);
    let stored = articles(&**db).await?;
    assert!(stored.iter().all(|a| a.views == 5), "{stored:#?}");
    Ok(())
}

backend_test!(async fn raw_sql_naming_an_audited_table_in_another_case_is_refused(db) {
    sea_orm_audit::register::<article::Entity>();
    let audited = AuditedConnection::new((**db).clone());
    let a = art("a").insert(&audited).await?;
    let sql = match db.db.get_database_backend() {
        // SQLite's names ignore case, in brackets too.
        DbBackend::Sqlite => "DELETE FROM [ARTICLE]",
        DbBackend::Postgres => "DELETE FROM ARTICLE",
        _ => "DELETE FROM `ARTICLE`",
    };
    let refused = audited.execute_unprepared(sql).await;
    let err = refused.expect_err("raw SQL writing to an audited table must be refused");
    assert!(
        matches!(AuditError::audit_message(&err), Some(m) if m.contains("raw SQL")),
        "{err}"
    );
    assert_eq!(articles(&**db).await?, vec![a]);
    Ok(())
});
