//! Every SeaORM 2.0 write path that can change an audited entity's rows, through the
//! auditing connection: each either records exactly what the single-row hook path
//! records for the same change, or is refused with the documented error.

use sea_orm::ActiveValue::{Set, Unchanged};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, Statement, TransactionTrait,
};
use sea_orm_audit::entity::audit_log;
use sea_orm_audit::{AuditError, AuditedConnection, WrapperOptions, without_audit};
use sea_orm_audit_tests::fixtures::{article, plain};
use sea_orm_audit_tests::{Backend, TestDb, backend_test};
use serde_json::json;

use crate::common::{changes, counting, keys, session_id, sqlite_busy, trail, until_waiting_on};

fn art(title: &str) -> article::ActiveModel {
    article::ActiveModel {
        title: Set(title.into()),
        body: Set(format!("body of {title}")),
        body_html: Set(String::new()),
        editor_token: Set(None),
        views: Set(0),
        published: Set(false),
        ..Default::default()
    }
}

fn art_with_id(id: i64, title: &str) -> article::ActiveModel {
    let mut a = art(title);
    a.id = Set(id);
    a
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    InsertExec,
    InsertExecWithReturning,
    InsertExecWithoutReturningAutoKey,
    InsertManyExec,
    InsertManyExplicitKeysWithoutReturning,
    InsertManyWithReturning,
    ActiveModelInsert,
    ActiveModelSave,
    UpdateOneExec,
    UpdateOneWithoutReturning,
    UpdateManyExec,
    UpdateManyExpression,
    UpdateManyExpressionWithReturning,
    UpdateManyWithReturning,
    ActiveModelUpdate,
    ActiveModelUpdateWithoutReturning,
    DeleteOneExec,
    DeleteById,
    DeleteManyExec,
    DeleteManyWithReturning,
    ActiveModelDelete,
    RawUpdate,
    RawDelete,
    Upsert,
    KeyChange,
}

const PATHS: &[Path] = &[
    Path::InsertExec,
    Path::InsertExecWithReturning,
    Path::InsertExecWithoutReturningAutoKey,
    Path::InsertManyExec,
    Path::InsertManyExplicitKeysWithoutReturning,
    Path::InsertManyWithReturning,
    Path::ActiveModelInsert,
    Path::ActiveModelSave,
    Path::UpdateOneExec,
    Path::UpdateOneWithoutReturning,
    Path::UpdateManyExec,
    Path::UpdateManyExpression,
    Path::UpdateManyExpressionWithReturning,
    Path::UpdateManyWithReturning,
    Path::ActiveModelUpdate,
    Path::ActiveModelUpdateWithoutReturning,
    Path::DeleteOneExec,
    Path::DeleteById,
    Path::DeleteManyExec,
    Path::DeleteManyWithReturning,
    Path::ActiveModelDelete,
    Path::RawUpdate,
    Path::RawDelete,
    Path::Upsert,
    Path::KeyChange,
];

enum Expect {
    /// Same audit rows as the single-row hook path.
    SameAsHooks,
    /// Refused with `AuditError::Unauditable`, nothing written.
    Refused,
    /// SeaORM itself does not offer this path on the backend.
    NotOnBackend,
}

fn expect(path: Path, backend: Backend) -> Expect {
    match (path, backend) {
        (Path::RawUpdate | Path::RawDelete | Path::Upsert | Path::KeyChange, _) => Expect::Refused,
        // SeaORM offers no multi-row RETURNING on MySQL/MariaDB.
        (
            Path::UpdateManyWithReturning
            | Path::UpdateManyExpressionWithReturning
            | Path::DeleteManyWithReturning
            | Path::InsertManyWithReturning,
            Backend::MySql,
        ) => Expect::NotOnBackend,
        _ => Expect::SameAsHooks,
    }
}

/// The change made through the single-row hook path on a plain connection.
async fn through_hooks(path: Path, db: &DatabaseConnection) -> Result<(), DbErr> {
    match path {
        Path::InsertExec
        | Path::InsertExecWithReturning
        | Path::InsertExecWithoutReturningAutoKey
        | Path::ActiveModelInsert
        | Path::ActiveModelSave => {
            art("new").insert(db).await?;
        }
        Path::InsertManyExec | Path::InsertManyWithReturning => {
            art("new 1").insert(db).await?;
            art("new 2").insert(db).await?;
        }
        Path::InsertManyExplicitKeysWithoutReturning => {
            art_with_id(100, "new 100").insert(db).await?;
            art_with_id(101, "new 101").insert(db).await?;
        }
        Path::UpdateOneExec
        | Path::UpdateOneWithoutReturning
        | Path::ActiveModelUpdate
        | Path::ActiveModelUpdateWithoutReturning => {
            article::ActiveModel {
                id: Unchanged(2),
                views: Set(5),
                title: Set("B!".into()),
                ..Default::default()
            }
            .update(db)
            .await?;
        }
        Path::UpdateManyExec | Path::UpdateManyWithReturning => {
            for id in [1, 2] {
                article::ActiveModel {
                    id: Unchanged(id),
                    published: Set(true),
                    ..Default::default()
                }
                .update(db)
                .await?;
            }
        }
        Path::UpdateManyExpression | Path::UpdateManyExpressionWithReturning => {
            for id in [1, 2, 3] {
                article::ActiveModel {
                    id: Unchanged(id),
                    views: Set(10),
                    ..Default::default()
                }
                .update(db)
                .await?;
            }
        }
        Path::DeleteOneExec | Path::DeleteById | Path::ActiveModelDelete => {
            article::ActiveModel {
                id: Set(2),
                ..Default::default()
            }
            .delete(db)
            .await?;
        }
        Path::DeleteManyExec | Path::DeleteManyWithReturning => {
            for id in [1, 3] {
                article::ActiveModel {
                    id: Set(id),
                    ..Default::default()
                }
                .delete(db)
                .await?;
            }
        }
        Path::RawUpdate | Path::RawDelete | Path::Upsert | Path::KeyChange => {}
    }
    Ok(())
}

/// The same change through the path under test, on the auditing connection.
async fn through_path(path: Path, db: &AuditedConnection) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    match path {
        Path::InsertExec => {
            article::Entity::insert(art("new")).exec(db).await?;
        }
        Path::InsertExecWithReturning => {
            article::Entity::insert(art("new"))
                .exec_with_returning(db)
                .await?;
        }
        Path::InsertExecWithoutReturningAutoKey => {
            article::Entity::insert(art("new"))
                .exec_without_returning(db)
                .await?;
        }
        Path::InsertManyExec => {
            article::Entity::insert_many([art("new 1"), art("new 2")])
                .exec(db)
                .await?;
        }
        Path::InsertManyExplicitKeysWithoutReturning => {
            article::Entity::insert_many([
                art_with_id(100, "new 100"),
                art_with_id(101, "new 101"),
            ])
            .exec_without_returning(db)
            .await?;
        }
        Path::InsertManyWithReturning => {
            let rows = article::Entity::insert_many([art("new 1"), art("new 2")])
                .exec_with_returning(db)
                .await?;
            assert_eq!(rows.len(), 2);
        }
        Path::ActiveModelInsert => {
            art("new").insert(db).await?;
        }
        Path::ActiveModelSave => {
            art("new").save(db).await?;
        }
        Path::UpdateOneExec => {
            let am = article::ActiveModel {
                id: Unchanged(2),
                views: Set(5),
                title: Set("B!".into()),
                ..Default::default()
            };
            article::Entity::update(am).exec(db).await?;
        }
        Path::UpdateOneWithoutReturning => {
            let am = article::ActiveModel {
                id: Unchanged(2),
                views: Set(5),
                title: Set("B!".into()),
                ..Default::default()
            };
            article::Entity::update(am)
                .exec_without_returning(db)
                .await?;
        }
        Path::UpdateManyExec => {
            article::Entity::update_many()
                .col_expr(article::Column::Published, Expr::value(true))
                .filter(article::Column::Id.lte(2))
                .exec(db)
                .await?;
        }
        Path::UpdateManyExpression => {
            article::Entity::update_many()
                .col_expr(
                    article::Column::Views,
                    Expr::col(article::Column::Views).add(10),
                )
                .exec(db)
                .await?;
        }
        Path::UpdateManyExpressionWithReturning => {
            // The SET reads the column it writes: the before-images must not make
            // `views` ambiguous in the one-statement PostgreSQL form.
            let rows = article::Entity::update_many()
                .col_expr(
                    article::Column::Views,
                    Expr::col(article::Column::Views).add(10),
                )
                .exec_with_returning(db)
                .await?;
            assert_eq!(rows.len(), 3);
            assert!(rows.iter().all(|r| r.views == 10), "{rows:?}");
        }
        Path::UpdateManyWithReturning => {
            let rows = article::Entity::update_many()
                .col_expr(article::Column::Published, Expr::value(true))
                .filter(article::Column::Id.lte(2))
                .exec_with_returning(db)
                .await?;
            assert_eq!(rows.len(), 2);
        }
        Path::ActiveModelUpdate => {
            article::ActiveModel {
                id: Unchanged(2),
                views: Set(5),
                title: Set("B!".into()),
                ..Default::default()
            }
            .update(db)
            .await?;
        }
        Path::ActiveModelUpdateWithoutReturning => {
            article::ActiveModel {
                id: Unchanged(2),
                views: Set(5),
                title: Set("B!".into()),
                ..Default::default()
            }
            .update_without_returning(db)
            .await?;
        }
        Path::DeleteOneExec => {
            article::Entity::delete(article::ActiveModel {
                id: Set(2),
                ..Default::default()
            })
            .exec(db)
            .await?;
        }
        Path::DeleteById => {
            let res = article::Entity::delete_by_id(2).exec(db).await?;
            assert_eq!(res.rows_affected, 1);
        }
        Path::DeleteManyExec => {
            let res = article::Entity::delete_many()
                .filter(article::Column::Id.is_in([1, 3]))
                .exec(db)
                .await?;
            assert_eq!(res.rows_affected, 2);
        }
        Path::DeleteManyWithReturning => {
            let rows = article::Entity::delete_many()
                .filter(article::Column::Id.is_in([1, 3]))
                .exec_with_returning(db)
                .await?;
            assert_eq!(rows.len(), 2);
        }
        Path::ActiveModelDelete => {
            article::ActiveModel {
                id: Set(2),
                ..Default::default()
            }
            .delete(db)
            .await?;
        }
        Path::RawUpdate => {
            db.execute_raw(Statement::from_string(
                backend,
                "UPDATE article SET views = 1",
            ))
            .await?;
        }
        Path::RawDelete => {
            db.execute_unprepared("DELETE FROM article WHERE id = 1")
                .await?;
        }
        Path::Upsert => {
            article::Entity::insert(art_with_id(1, "dup"))
                .on_conflict(
                    OnConflict::column(article::Column::Id)
                        .update_column(article::Column::Title)
                        .to_owned(),
                )
                .exec(db)
                .await?;
        }
        Path::KeyChange => {
            article::Entity::update_many()
                .col_expr(article::Column::Id, Expr::col(article::Column::Id).add(100))
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

type Row = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    serde_json::Value,
    Option<String>,
);

fn normalized(rows: Vec<audit_log::Model>) -> Vec<Row> {
    let mut out: Vec<Row> = rows
        .into_iter()
        .map(|r| {
            let c = changes(&r);
            (
                r.action,
                r.table_name,
                r.object_pk,
                r.object_repr,
                c,
                r.module,
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.2, &a.0).cmp(&(&b.2, &b.0)));
    out
}

/// Empties the article table (restarting its key sequence) and the audit log.
async fn reset(db: &TestDb) -> Result<(), DbErr> {
    let sqls: &[&str] = match db.backend {
        Backend::Postgres => &["TRUNCATE article RESTART IDENTITY", "DELETE FROM audit_log"],
        Backend::MySql => &["TRUNCATE TABLE article", "DELETE FROM audit_log"],
        Backend::Sqlite => &[
            "DELETE FROM article",
            "DELETE FROM sqlite_sequence WHERE name = 'article'",
            "DELETE FROM audit_log",
        ],
    };
    for sql in sqls {
        db.db.execute_unprepared(sql).await?;
    }
    without_audit(async {
        for t in ["a", "b", "c"] {
            art(t).insert(&db.db).await?;
        }
        Ok::<_, DbErr>(())
    })
    .await
}

/// Every article, by id.
async fn articles<C: ConnectionTrait>(db: &C) -> Result<Vec<article::Model>, DbErr> {
    article::Entity::find()
        .order_by_asc(article::Column::Id)
        .all(db)
        .await
}

backend_test!(async fn every_write_path_is_audited_like_the_hooks_or_refused(db) {
    sea_orm_audit::register::<article::Entity>();
    let wrapped = AuditedConnection::new(db.db.clone());
    for &path in PATHS {
        reset(db).await?;
        let data_before = articles(&db.db).await?;
        let expectation = expect(path, db.backend);
        let outcome = through_path(path, &wrapped).await;
        let got = normalized(trail(&db.db).await?);
        let data_after = articles(&db.db).await?;
        match expectation {
            Expect::Refused => {
                let err = outcome.expect_err(&format!("{path:?} must be refused"));
                assert!(AuditError::is_audit_error(&err), "{path:?}: {err}");
                assert!(err.to_string().contains("refused a write to audited table `article`"), "{path:?}: {err}");
                assert!(got.is_empty(), "{path:?} wrote audit rows");
                assert_eq!(data_after, data_before, "{path:?} changed data");
            }
            Expect::NotOnBackend => {
                assert!(outcome.is_err(), "{path:?} unexpectedly works on {:?}", db.backend);
                assert!(got.is_empty());
            }
            Expect::SameAsHooks => {
                outcome.map_err(|e| format!("{path:?}: {e}"))?;
                reset(db).await?;
                through_hooks(path, &db.db).await?;
                let reference = normalized(trail(&db.db).await?);
                let data_ref = articles(&db.db).await?;
                assert!(!reference.is_empty(), "{path:?}: the reference wrote nothing");
                assert_eq!(got, reference, "{path:?}: audit rows differ from the hook path");
                assert_eq!(data_after, data_ref, "{path:?}: data differs from the hook path");
            }
        }
    }
    Ok(())
});

backend_test!(async fn raw_sql_escape_hatch_records_a_statement_row(db) {
    sea_orm_audit::register::<article::Entity>();
    art("x").insert(&db.db).await?;
    let wrapped = AuditedConnection::new(db.db.clone());
    let stmt = Statement::from_string(db.db.get_database_backend(), "UPDATE article SET views = views + 1");
    let res = wrapped.execute_unaudited(stmt, "backfill view counts").await?;
    assert_eq!(res.rows_affected(), 1);
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 2);
    let r = &rows[1];
    assert_eq!(r.action, "STATEMENT");
    assert_eq!(r.table_name.as_deref(), Some("article"));
    assert_eq!(r.reason.as_deref(), Some("backfill view counts"));
    assert_eq!(changes(r), json!({"statement": {"sql": "UPDATE article SET views = views + 1", "rows": 1}}));
    // Reads and writes to unaudited tables pass straight through, unrecorded.
    db.db.execute_unprepared("INSERT INTO plain (id, name) VALUES (1, 'x'), (2, 'x')").await?;
    let res = wrapped.execute_unprepared("UPDATE plain SET name = 'y' WHERE id = 1").await?;
    assert_eq!(res.rows_affected(), 1);
    let names: Vec<(i64, String)> = plain::Entity::find()
        .order_by_asc(plain::Column::Id)
        .all(&db.db)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    assert_eq!(names, [(1, "y".to_owned()), (2, "x".to_owned())]);
    let read = wrapped
        .query_all_raw(Statement::from_string(db.db.get_database_backend(), "SELECT title, views FROM article"))
        .await?;
    let read: Vec<(String, i32)> = read
        .iter()
        .map(|r| Ok((r.try_get("", "title")?, r.try_get("", "views")?)))
        .collect::<Result<_, DbErr>>()?;
    assert_eq!(read, [("x".to_owned(), 1)]);
    assert_eq!(trail(&db.db).await?.len(), 2, "no row for the unaudited table or the read");
    Ok(())
});

backend_test!(async fn bulk_ten_thousand_rows_in_one_transaction(db) {
    sea_orm_audit::register::<article::Entity>();
    // Rows buffered until commit, and (PostgreSQL) written by the statement itself.
    bulk_ten_thousand(db, buffered(db), true).await?;
    audit_log::Entity::delete_many().exec(&db.db).await?;
    if db.backend == Backend::Postgres {
        bulk_ten_thousand(db, AuditedConnection::new(db.db.clone()), false).await?;
    }
    Ok(())
});

async fn bulk_ten_thousand(
    db: &TestDb,
    wrapped: AuditedConnection,
    buffers: bool,
) -> sea_orm_audit_tests::TestResult {
    const N: usize = 10_000;
    without_audit(async {
        for chunk in (0..N).collect::<Vec<_>>().chunks(1000) {
            article::Entity::insert_many(chunk.iter().map(|i| art(&format!("bulk {i}"))))
                .exec(&db.db)
                .await?;
        }
        Ok::<_, DbErr>(())
    })
    .await?;

    // Rolled back: neither the changes nor their rows remain.
    let txn = wrapped.begin().await?;
    article::Entity::update_many()
        .col_expr(article::Column::Views, Expr::value(3))
        .exec(&txn)
        .await?;
    // Pending rows are written before anything reads audit_log through the transaction.
    let seen = trail(txn.inner()).await?.len();
    assert_eq!(
        seen,
        if buffers { 0 } else { N },
        "rows wait for commit or a read only when buffered"
    );
    assert_eq!(audit_log::Entity::find().all(&txn).await?.len(), N);
    txn.rollback().await?;
    assert!(trail(&db.db).await?.is_empty());
    assert!(
        article::Entity::find()
            .filter(article::Column::Views.ne(0))
            .all(&db.db)
            .await?
            .is_empty()
    );

    let txn = wrapped.begin().await?;
    let res = article::Entity::update_many()
        .col_expr(
            article::Column::Views,
            Expr::col(article::Column::Views).add(7),
        )
        .col_expr(article::Column::Published, Expr::value(true))
        .exec(&txn)
        .await?;
    assert_eq!(res.rows_affected, N as u64);
    let res = article::Entity::delete_many().exec(&txn).await?;
    assert_eq!(res.rows_affected, N as u64);
    txn.commit().await?;

    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 2 * N);
    let (updates, deletes): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.action == "UPDATE");
    assert_eq!(updates.len(), N);
    assert_eq!(deletes.len(), N);
    for r in &updates {
        assert_eq!(
            changes(r),
            json!({"views": {"old": 0, "new": 7}, "published": {"old": false, "new": true}})
        );
    }
    let mut pks: Vec<i64> = deletes
        .iter()
        .filter_map(|r| r.object_pk.as_deref()?.parse().ok())
        .collect();
    pks.sort();
    pks.dedup();
    assert_eq!(pks.len(), N);
    assert!(
        deletes
            .iter()
            .all(|r| changes(r)["views"] == json!({"old": 7}))
    );
    Ok(())
}

backend_test!(async fn summary_rows_are_opt_in(db) {
    sea_orm_audit::register::<article::Entity>();
    for t in ["a", "b", "c"] {
        art(t).insert(&db.db).await?;
    }
    let wrapped = AuditedConnection::with_options(db.db.clone(), WrapperOptions::default().summary_over(2));
    article::Entity::update_many().col_expr(article::Column::Views, Expr::value(1)).exec(&wrapped).await?;
    article::Entity::delete_by_id(1).exec(&wrapped).await?;
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[3].action, "UPDATE");
    assert_eq!(rows[3].object_pk, None);
    assert_eq!(changes(&rows[3])["statement"]["rows"], json!(3));
    assert_eq!(rows[4].action, "DELETE", "below the threshold: one row per object");
    assert_eq!(rows[4].object_pk.as_deref(), Some("1"));
    Ok(())
});

/// An audited entity of its own for each backend's run of
/// `hooks_stand_aside_behind_the_wrapper`: registration is process-wide, so an entity
/// any other test (or another backend's run) writes would already be registered.
macro_rules! first_use_entity {
    ($module:ident, $table:tt) => {
        mod $module {
            use sea_orm::entity::prelude::*;
            use sea_orm_audit::Audited;

            pub const TABLE: &str = $table;

            #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                #[sea_orm(primary_key)]
                pub id: i64,
                pub name: String,
                pub views: i32,
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}
        }
    };
}

first_use_entity!(first_use_sqlite, "first_use_sqlite");
first_use_entity!(first_use_postgres, "first_use_postgres");
first_use_entity!(first_use_mysql, "first_use_mysql");

/// Creates, updates and deletes one row of `$module` through `wrapped`, checking that
/// the entity is registered by its hooks on the first write and not before.
macro_rules! write_on_first_use {
    ($module:ident, $db:expr, $wrapped:expr) => {{
        use $module as m;
        sea_orm_audit_tests::create_table(&$db.db, m::Entity).await?;
        assert!(
            !sea_orm_audit::is_registered(m::TABLE),
            "registered before its first write"
        );
        let row = m::ActiveModel {
            name: Set("once".into()),
            views: Set(0),
            ..Default::default()
        }
        .insert($wrapped)
        .await?;
        assert!(
            sea_orm_audit::is_registered(m::TABLE),
            "the hooks did not register the entity"
        );
        let mut am = row.into_active_model();
        am.views = Set(1);
        let row = am.update($wrapped).await?;
        assert_eq!(
            m::Entity::find_by_id(row.id)
                .one(&$db.db)
                .await?
                .map(|r| r.views),
            Some(1)
        );
        row.into_active_model().delete($wrapped).await?;
        assert!(m::Entity::find().one(&$db.db).await?.is_none());
        m::TABLE
    }};
}

backend_test!(async fn hooks_stand_aside_behind_the_wrapper(db) {
    let wrapped = AuditedConnection::new(db.db.clone());
    // No explicit registration: the hooks register the entity on first use, and the
    // wrapper then records each change once.
    let table = match db.backend {
        Backend::Sqlite => write_on_first_use!(first_use_sqlite, db, &wrapped),
        Backend::Postgres => write_on_first_use!(first_use_postgres, db, &wrapped),
        Backend::MySql => write_on_first_use!(first_use_mysql, db, &wrapped),
    };
    let rows = trail(&db.db).await?;
    let actions: Vec<(Option<String>, String)> = rows.into_iter().map(|r| (r.table_name, r.action)).collect();
    let of = |action: &str| (Some(table.to_owned()), action.to_owned());
    assert_eq!(actions, [of("CREATE"), of("UPDATE"), of("DELETE")], "each change recorded exactly once");
    Ok(())
});

backend_test!(async fn many_to_many_links_appear_in_both_trails(db) {
    use sea_orm_audit_tests::fixtures::links::{jpost, jpost_tag, jtag};
    sea_orm_audit::register::<jpost_tag::Entity>();
    let wrapped = AuditedConnection::new(db.db.clone());

    // Linking through the nested ActiveModel: the junction row's insert runs its hooks.
    let post = jpost::ActiveModel::builder()
        .set_title("Nice weather")
        .add_tag(jtag::ActiveModel::builder().set_name("sunny"))
        .save(&db.db)
        .await?;
    let tag_id = jtag::Entity::find().one(&db.db).await?.map(|t| t.id).unwrap_or_default();
    let post_id = post.id.clone().unwrap();

    // Unlinking goes through delete_many, which only the auditing connection sees.
    jpost_tag::Entity::delete_many()
        .filter(jpost_tag::Column::JpostId.eq(post_id))
        .exec(&wrapped)
        .await?;

    let rows = trail(&db.db).await?;
    let of = |table: &str, action: &str| -> Vec<audit_log::Model> {
        rows.iter().filter(|r| r.table_name.as_deref() == Some(table) && r.action == action).cloned().collect()
    };
    assert_eq!(of("jpost", "CREATE").len(), 1);
    assert_eq!(of("jtag", "CREATE").len(), 1);
    assert_eq!(of("jpost_tag", "CREATE").len(), 1);
    assert_eq!(of("jpost_tag", "DELETE").len(), 1);
    let link = of("jpost", "LINK");
    assert_eq!(link.len(), 1);
    assert_eq!(link[0].object_pk, Some(post_id.to_string()));
    assert_eq!(changes(&link[0]), json!({"jtag": {"added": tag_id.to_string()}}));
    assert_eq!(link[0].metadata, Some(json!({"via": "jpost_tag"})));
    let back = of("jtag", "LINK");
    assert_eq!(changes(&back[0]), json!({"jpost": {"added": post_id.to_string()}}));
    let unlink = of("jpost", "UNLINK");
    assert_eq!(unlink.len(), 1);
    assert_eq!(changes(&unlink[0]), json!({"jtag": {"removed": tag_id.to_string()}}));
    assert_eq!(of("jtag", "UNLINK").len(), 1);
    Ok(())
});

/// An auditing connection that buffers a transaction's rows until commit on every
/// backend (PostgreSQL's one-statement path writes them with each statement).
fn buffered(db: &TestDb) -> AuditedConnection {
    AuditedConnection::with_options(
        db.db.clone(),
        WrapperOptions::default().one_statement(false),
    )
}

backend_test!(async fn transaction_rows_are_written_together_at_commit(db) {
    use sea_orm_audit::RequestContext;
    sea_orm_audit::register::<article::Entity>();
    let wrapped = buffered(db);
    let txn = wrapped.begin().await?;
    let a = RequestContext::new().actor("1", "Ada").scope(art("first").insert(&txn)).await?;
    let mut am = a.into_active_model();
    am.views = Set(4);
    RequestContext::new().actor("2", "Bob").scope(am.update(&txn)).await?;
    assert!(trail(txn.inner()).await?.is_empty(), "nothing written before commit");
    txn.commit().await?;
    let rows = trail(&db.db).await?;
    assert_eq!(rows.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["CREATE", "UPDATE"]);
    assert_eq!(rows[0].actor_name.as_deref(), Some("Ada"), "each row keeps the context it was recorded under");
    assert_eq!(rows[1].actor_name.as_deref(), Some("Bob"));
    assert!(rows[0].created_at <= rows[1].created_at);

    // A commit whose rows cannot be written fails, and the changes roll back with them.
    let sql = match db.backend {
        Backend::MySql => "RENAME TABLE `audit_log` TO `audit_log_moved`",
        _ => "ALTER TABLE audit_log RENAME TO audit_log_moved",
    };
    db.db.execute_unprepared(sql).await?;
    let txn = wrapped.begin().await?;
    art("never").insert(&txn).await?;
    let err = txn.commit().await.expect_err("commit must fail without audit_log");
    assert!(AuditError::is_audit_error(&err), "{err}");
    let back = match db.backend {
        Backend::MySql => "RENAME TABLE `audit_log_moved` TO `audit_log`",
        _ => "ALTER TABLE audit_log_moved RENAME TO audit_log",
    };
    db.db.execute_unprepared(back).await?;
    assert!(article::Entity::find().filter(article::Column::Title.eq("never")).one(&db.db).await?.is_none());
    assert_eq!(trail(&db.db).await?.len(), 2);
    Ok(())
});

backend_test!(async fn rows_written_together_keep_awkward_text_exactly(db) {
    // Rows flushed together take the multi-row writer (array parameters on
    // PostgreSQL): quoting, escapes, NULLs and non-ASCII text must come back unchanged.
    use sea_orm_audit::RequestContext;
    sea_orm_audit::register::<article::Entity>();
    let titles = [
        r#"say "hi""#,
        r#"back\slash \\ and \""#,
        "{braces, commas}",
        "NULL",
        "",
        "ünïcødé ✓ 日本",
        "it's 'quoted'",
    ];
    let wrapped = buffered(db);
    let txn = wrapped.begin().await?;
    let actor = r#"Ada "the \ admin""#;
    RequestContext::new()
        .actor("1", actor)
        .scope(async {
            for t in titles {
                art(t).insert(&txn).await?;
            }
            Ok::<_, DbErr>(())
        })
        .await?;
    txn.commit().await?;
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), titles.len());
    for (row, title) in rows.iter().zip(titles) {
        assert_eq!(changes(row)["title"], json!({ "new": title }), "{row:?}");
        assert_eq!(row.actor_name.as_deref(), Some(actor));
        assert_eq!(row.ip_address, None, "an absent value stays NULL, not the text NULL");
        if !title.is_empty() {
            assert_eq!(row.object_repr.as_deref(), Some(title));
        }
    }
    Ok(())
});

backend_test!(async fn mysql_read_back_is_answered_from_the_audit_read(db) {
    // Without RETURNING, the audit and SeaORM both read a written row back. Inside an
    // auditing transaction SeaORM's read is answered from the audit's, and only that
    // very read: the model must still be the stored row, and any other statement in
    // between must go to the database.
    use std::sync::atomic::Ordering;
    sea_orm_audit::register::<article::Entity>();
    let (wrapped, selects) = counting_selects(db);
    let txn = wrapped.begin().await?;
    let before = selects.load(Ordering::Relaxed);
    let a = art("kept").insert(&txn).await?;
    let insert_selects = selects.load(Ordering::Relaxed) - before;
    let before = selects.load(Ordering::Relaxed);
    let mut am = a.clone().into_active_model();
    am.views = Set(7);
    let updated = am.update(&txn).await?;
    let update_selects = selects.load(Ordering::Relaxed) - before;
    let stored = article::Entity::find_by_id(a.id).one(txn.inner()).await?;
    assert_eq!(stored.as_ref(), Some(&updated), "the returned model is the stored row");
    assert_eq!(updated.views, 7);
    // Kept after an exec() that SeaORM does not follow with a read: a different read
    // next goes to the database, and so does the same read once `inner()` was used.
    article::Entity::insert(art("other")).exec(&txn).await?;
    let found = article::Entity::find_by_id(a.id).one(&txn).await?;
    assert_eq!(found.map(|m| m.title), Some("kept".to_owned()));
    let third_id = article::Entity::insert(art("third")).exec(&txn).await?.last_insert_id;
    txn.inner()
        .execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            match db.backend {
                Backend::Postgres => "UPDATE article SET title = 'changed' WHERE id = $1",
                _ => "UPDATE article SET title = 'changed' WHERE id = ?",
            },
            [third_id.into()],
        ))
        .await?;
    let third = article::Entity::find_by_id(third_id).one(&txn).await?;
    assert_eq!(third.map(|m| m.title), Some("changed".to_owned()));
    txn.commit().await?;
    match db.backend {
        // INSERT: the audit's SELECT only; UPDATE: FOR UPDATE and the audit's SELECT.
        Backend::MySql => assert_eq!((insert_selects, update_selects), (1, 2)),
        // RETURNING: nothing to read back; SQLite reads the before-image of the UPDATE,
        // PostgreSQL gets it from the UPDATE itself.
        Backend::Sqlite => assert_eq!((insert_selects, update_selects), (0, 1)),
        Backend::Postgres => assert_eq!((insert_selects, update_selects), (0, 0)),
    }
    Ok(())
});

backend_test!(async fn concurrent_bulk_increments_give_a_consistent_chain(db) {
    // Six writers increment the same row through auditing transactions with an
    // expression UPDATE. Each audit row's old value must be the previous row's new
    // value, ending at the stored value: on PostgreSQL this checks the one-statement
    // form (locked before-images, UPDATE, RETURNING) under concurrent writers.
    use std::sync::Arc;
    sea_orm_audit::register::<article::Entity>();
    let a = art("counter").insert(&db.db).await?;
    let pool = AuditedConnection::new(db.connect_again().await?);
    let pool = Arc::new(pool);
    let mysql = db.backend == Backend::MySql;
    // Busy retries per writer (SQLite): a bound, so a writer that never gets the lock
    // fails the test instead of hanging it.
    const MAX_ATTEMPTS: usize = 1000;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let pool = Arc::clone(&pool);
        let id = a.id;
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            let mut attempts = 0;
            while done < 4 {
                attempts += 1;
                if attempts > MAX_ATTEMPTS {
                    return Err(DbErr::Custom(format!(
                        "{done} of 4 increments after {MAX_ATTEMPTS} attempts: SQLite stayed busy"
                    )));
                }
                let txn = pool.begin().await?;
                let update = article::Entity::update_many()
                    .col_expr(article::Column::Views, Expr::col(article::Column::Views).add(1))
                    .filter(article::Column::Id.eq(id));
                // SeaORM has no multi-row RETURNING on MySQL.
                let res = if mysql {
                    update.exec(&txn).await.map(|r| r.rows_affected)
                } else {
                    update.exec_with_returning(&txn).await.map(|rows| rows.len() as u64)
                };
                match res {
                    Ok(1) => {
                        txn.commit().await?;
                        done += 1;
                    }
                    Ok(n) => return Err(DbErr::Custom(format!("updated {n} rows"))),
                    // SQLite refuses a second writer with "database is locked": retry.
                    Err(e) if sqlite_busy(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, DbErr>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| DbErr::Custom(e.to_string()))??;
    }
    let rows: Vec<_> = trail(&db.db).await?.into_iter().filter(|r| r.action == "UPDATE").collect();
    assert_eq!(rows.len(), 24);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(changes(r)["views"], json!({"old": i, "new": i + 1}), "row {}", r.id);
    }
    let stored = article::Entity::find_by_id(a.id).one(&db.db).await?.map(|m| m.views);
    assert_eq!(stored, Some(24));
    Ok(())
});

/// An auditing connection counting the SELECTs it sends, and the counter.
fn counting_selects(
    db: &TestDb,
) -> (
    AuditedConnection,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let selects = Arc::new(AtomicUsize::new(0));
    let mut conn = db.db.clone();
    let counter = Arc::clone(&selects);
    conn.set_metric_callback(move |info| {
        if info.statement.sql.trim_start().starts_with("SELECT") {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    (AuditedConnection::new(conn), selects)
}

backend_test!(async fn queried_delete_takes_its_before_images_from_returning(db) {
    // A DELETE queried for rows returns its own before-images on all three backends
    // (MariaDB is recognised once, by its version): no separate SELECT.
    use sea_orm::sea_query::Query;
    use std::sync::atomic::Ordering;
    sea_orm_audit::register::<article::Entity>();
    for t in ["a", "b"] {
        art(t).insert(&db.db).await?;
    }
    let (wrapped, selects) = counting_selects(db);
    let delete = |id: i64| {
        Query::delete()
            .from_table(article::Entity)
            .and_where(Expr::col(article::Column::Id).eq(id))
            .to_owned()
    };
    let first = wrapped.query_all(&delete(1)).await?;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].try_get::<String>("", "title")?, "a", "the caller gets the deleted row");
    let before = selects.load(Ordering::Relaxed);
    let second = wrapped.query_all(&delete(2)).await?;
    assert_eq!(second.len(), 1);
    assert_eq!(selects.load(Ordering::Relaxed) - before, 0, "no SELECT for the before-image");
    let rows: Vec<_> = trail(&db.db).await?.into_iter().filter(|r| r.action == "DELETE").collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(changes(&rows[0])["title"], json!({"old": "a"}));
    assert_eq!(changes(&rows[1])["title"], json!({"old": "b"}));
    assert_eq!(article::Entity::find().all(&db.db).await?.len(), 0);
    Ok(())
});

backend_test!(async fn a_delete_by_key_needs_no_separate_read(db) {
    // `ActiveModel::delete` and `delete_by_id` run exec(): the before-image comes from
    // DELETE ... RETURNING (or, on PostgreSQL, the one statement) and exec() answers
    // with the real count, also when nothing was deleted.
    use std::sync::atomic::Ordering;
    sea_orm_audit::register::<article::Entity>();
    let a = art("a").insert(&db.db).await?;
    art("b").insert(&db.db).await?;
    let (wrapped, selects) = counting_selects(db);
    let res = a.into_active_model().delete(&wrapped).await?;
    assert_eq!(res.rows_affected, 1);
    // MariaDB is recognised once per connection, by its version.
    let probe = selects.load(Ordering::Relaxed);
    assert_eq!(probe, usize::from(db.backend == Backend::MySql));
    let res = article::Entity::delete_by_id(2).exec(&wrapped).await?;
    assert_eq!(res.rows_affected, 1);
    let res = article::Entity::delete_by_id(99).exec(&wrapped).await?;
    assert_eq!(res.rows_affected, 0, "nothing deleted");
    assert_eq!(selects.load(Ordering::Relaxed), probe, "no SELECT for the before-images");
    let rows: Vec<_> = trail(&db.db).await?.into_iter().filter(|r| r.action == "DELETE").collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(changes(&rows[0])["title"], json!({"old": "a"}));
    assert_eq!(rows[1].object_pk.as_deref(), Some("2"));
    // Rolled back with the transaction it ran in.
    let c = art("c").insert(&db.db).await?;
    let txn = wrapped.begin().await?;
    assert_eq!(c.into_active_model().delete(&txn).await?.rows_affected, 1);
    txn.rollback().await?;
    assert_eq!(article::Entity::find().all(&db.db).await?.len(), 1);
    assert_eq!(trail(&db.db).await?.iter().filter(|r| r.action == "DELETE").count(), 2);
    Ok(())
});

backend_test!(async fn a_queried_update_is_one_call_on_sqlite_and_postgres(db) {
    // SQLite sends the before-image SELECT and the UPDATE ... RETURNING in one call;
    // PostgreSQL sends one statement. The rows still pair each before with its after.
    use std::sync::atomic::Ordering;
    sea_orm_audit::register::<article::Entity>();
    for t in ["a", "b", "c"] {
        art(t).insert(&db.db).await?;
    }
    let (conn, calls) = counting(&db.db);
    let wrapped = AuditedConnection::new(conn);
    let txn = wrapped.begin().await?;
    let b = article::Entity::find_by_id(2).one(&txn).await?.ok_or("no b")?;
    let before = calls.load(Ordering::Relaxed);
    let mut am = b.into_active_model();
    am.views = Set(9);
    am.title = Set("B".into());
    let saved = am.update(&txn).await?;
    let used = calls.load(Ordering::Relaxed) - before;
    assert_eq!((saved.title.as_str(), saved.views), ("B", 9));
    if db.backend != Backend::MySql {
        let updated = article::Entity::update_many()
            .col_expr(article::Column::Views, Expr::col(article::Column::Views).add(1))
            .exec_with_returning(&txn)
            .await?;
        assert_eq!(updated.len(), 3);
    }
    txn.commit().await?;
    if db.backend != Backend::MySql {
        assert_eq!(used, 1, "one call for the update");
    }
    let rows: Vec<_> = trail(&db.db).await?.into_iter().filter(|r| r.action == "UPDATE").collect();
    assert_eq!(changes(&rows[0]), json!({"title": {"old": "b", "new": "B"}, "views": {"old": 0, "new": 9}}));
    if db.backend != Backend::MySql {
        assert_eq!(rows.len(), 4);
        let by_pk = |pk: &str| rows[1..].iter().find(|r| r.object_pk.as_deref() == Some(pk)).map(changes);
        assert_eq!(by_pk("1"), Some(json!({"views": {"old": 0, "new": 1}})));
        assert_eq!(by_pk("2"), Some(json!({"views": {"old": 9, "new": 10}})));
    }
    Ok(())
});

backend_test!(async fn summary_rows_on_the_one_statement_paths(db) {
    // summary_over also applies where the UPDATE (PostgreSQL) or the DELETE returns the
    // images itself.
    use sea_orm::sea_query::Query;
    sea_orm_audit::register::<article::Entity>();
    for t in ["a", "b", "c"] {
        art(t).insert(&db.db).await?;
    }
    let wrapped = AuditedConnection::with_options(db.db.clone(), WrapperOptions::default().summary_over(2));
    let mut want = vec!["CREATE", "CREATE", "CREATE"];
    // SeaORM has no multi-row RETURNING on MySQL.
    if db.backend != Backend::MySql {
        let updated = article::Entity::update_many()
            .col_expr(article::Column::Views, Expr::value(1))
            .exec_with_returning(&wrapped)
            .await?;
        assert_eq!(updated.len(), 3);
        want.push("UPDATE");
    }
    let deleted = wrapped.query_all(&Query::delete().from_table(article::Entity).to_owned()).await?;
    assert_eq!(deleted.len(), 3);
    want.push("DELETE");
    let rows = trail(&db.db).await?;
    assert_eq!(rows.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), want);
    for r in &rows[3..] {
        assert_eq!(r.object_pk, None, "{r:?}");
        assert_eq!(changes(r)["statement"]["rows"], json!(3));
    }
    Ok(())
});

backend_test!(async fn kept_read_back_is_dropped_by_statements_past_the_statement_path(db) {
    // On MySQL an auditing transaction keeps the row it read after a write for SeaORM's
    // read-back. Statements that bypass its statement path (execute_unaudited, a nested
    // transaction) must drop it, or the next read would see the row as it was.
    sea_orm_audit::register::<article::Entity>();
    let wrapped = AuditedConnection::new(db.db.clone());
    let txn = wrapped.begin().await?;
    let param = if db.backend == Backend::Postgres { "$1" } else { "?" };
    let x = article::Entity::insert(art("x")).exec(&txn).await?.last_insert_id;
    txn.execute_unaudited(
        Statement::from_sql_and_values(
            txn.get_database_backend(),
            format!("UPDATE article SET title = 'u' WHERE id = {param}"),
            [x.into()],
        ),
        "test",
    )
    .await?;
    let seen = article::Entity::find_by_id(x).one(&txn).await?.map(|m| m.title);
    assert_eq!(seen.as_deref(), Some("u"));
    let y = article::Entity::insert(art("y")).exec(&txn).await?.last_insert_id;
    let nested = txn.begin().await?;
    article::Entity::update_many()
        .col_expr(article::Column::Title, Expr::value("n"))
        .filter(article::Column::Id.eq(y))
        .exec(&nested)
        .await?;
    nested.commit().await?;
    let seen = article::Entity::find_by_id(y).one(&txn).await?.map(|m| m.title);
    assert_eq!(seen.as_deref(), Some("n"));
    txn.commit().await?;
    Ok(())
});

backend_test!(async fn a_waiting_writer_records_the_value_it_waited_for(db) {
    // Writer A updates a row and holds its lock; writer B's update of the same row
    // starts while A is still open and must record, as its old value, what A
    // committed, not what B's statement saw when it began. On PostgreSQL this needs
    // the lock inside the one-statement UPDATE. (SQLite has one writer at a time.)
    if db.backend == Backend::Sqlite {
        return Ok(());
    }
    sea_orm_audit::register::<article::Entity>();
    let a = art("contended").insert(&db.db).await?;
    let wrapped = AuditedConnection::new(db.connect_again().await?);
    let mysql = db.backend == Backend::MySql;
    let increment = move |wrapped: AuditedConnection, id: i64| async move {
        let txn = wrapped.begin().await?;
        let update = article::Entity::update_many()
            .col_expr(article::Column::Views, Expr::col(article::Column::Views).add(1))
            .filter(article::Column::Id.eq(id));
        if mysql {
            update.exec(&txn).await?;
        } else {
            update.exec_with_returning(&txn).await?;
        }
        Ok::<_, DbErr>(txn)
    };
    let first = increment(wrapped.clone(), a.id).await?;
    let holder = session_id(&first).await?;
    let second = tokio::spawn(async move {
        let txn = increment(wrapped, a.id).await?;
        txn.commit().await
    });
    // Commit only once the second writer is blocked on the first one's lock, or the
    // test could pass with the two writes one after the other.
    until_waiting_on(&db.db, holder, || second.is_finished()).await?;
    first.commit().await?;
    second.await.map_err(|e| DbErr::Custom(e.to_string()))??;
    let rows: Vec<_> = trail(&db.db).await?.into_iter().filter(|r| r.action == "UPDATE").collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(changes(&rows[0])["views"], json!({"old": 0, "new": 1}));
    assert_eq!(changes(&rows[1])["views"], json!({"old": 1, "new": 2}));
    Ok(())
});

backend_test!(async fn rows_written_together_keep_nulls_metadata_and_times(db) {
    // The multi-row writer (one array per column on PostgreSQL) with columns that mix
    // values and NULLs from row to row, JSON metadata with escapes, and the time each
    // row was recorded.
    use sea_orm_audit::RequestContext;
    sea_orm_audit::register::<article::Entity>();
    let metadata = json!({"q": "a \"b\" \\ c {d,e}", "n": null, "list": [1, "x"]});
    let wrapped = buffered(db);
    let start = chrono::Utc::now() - chrono::Duration::milliseconds(1);
    let txn = wrapped.begin().await?;
    for i in 0..4 {
        let ctx = if i % 2 == 0 {
            RequestContext::new().ip("203.0.113.5").metadata(metadata.clone())
        } else {
            RequestContext::new()
        };
        ctx.scope(art(&format!("row {i}")).insert(&txn)).await?;
    }
    txn.commit().await?;
    let end = chrono::Utc::now();
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 4);
    for (i, row) in rows.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(row.ip_address.as_deref(), Some("203.0.113.5"), "row {i}");
            assert_eq!(row.metadata.as_ref(), Some(&metadata), "row {i}");
        } else {
            assert_eq!(row.ip_address, None, "row {i}");
            assert_eq!(row.metadata, None, "row {i}");
        }
        assert!(start <= row.created_at && row.created_at <= end, "row {i}: {}", row.created_at);
    }
    Ok(())
});

backend_test!(async fn a_scoped_config_applies_through_the_wrapper(db) {
    // Skipped tables and actions, the off switch and without_audit hold for the bulk
    // paths, which only the auditing connection sees, as they do for the hooks.
    use sea_orm_audit::AuditConfig;
    use sea_orm_audit_tests::fixtures::tag;
    sea_orm_audit::register::<article::Entity>();
    sea_orm_audit::register::<tag::Entity>();
    let wrapped = AuditedConnection::new(db.db.clone());
    let new_tag = |label: &str| tag::ActiveModel { id: Set(uuid::Uuid::new_v4()), label: Set(label.into()) };
    // Sorted: the rows of one statement follow its rows' order, which nothing fixes.
    let recorded = || async {
        let rows = trail(&db.db).await?;
        let mut rows: Vec<_> = rows.into_iter().map(|r| (r.action, r.object_repr.unwrap_or_default())).collect();
        rows.sort();
        Ok::<_, DbErr>(rows)
    };
    let row = |action: &str, repr: &str| (action.to_owned(), repr.to_owned());

    AuditConfig::new()
        .skip_table("tag")
        .scope(async {
            tag::Entity::insert_many([new_tag("t1"), new_tag("t2")]).exec(&wrapped).await?;
            tag::Entity::update_many().col_expr(tag::Column::Label, Expr::value("t")).exec(&wrapped).await?;
            article::Entity::insert_many([art("a"), art("b"), art("c")]).exec(&wrapped).await?;
            Ok::<_, DbErr>(())
        })
        .await?;
    let labels: Vec<String> = tag::Entity::find().all(&db.db).await?.into_iter().map(|t| t.label).collect();
    assert_eq!(labels, ["t", "t"], "the skipped table's writes took effect");
    assert_eq!(recorded().await?, [row("CREATE", "a"), row("CREATE", "b"), row("CREATE", "c")]);

    let b = articles(&db.db).await?.into_iter().find(|a| a.title == "b").ok_or("no b")?;
    AuditConfig::new()
        .skip_action("delete")
        .scope(async {
            article::Entity::update_many()
                .col_expr(article::Column::Views, Expr::value(1))
                .filter(article::Column::Title.ne("c"))
                .exec(&wrapped)
                .await?;
            article::Entity::delete_many().filter(article::Column::Title.eq("a")).exec(&wrapped).await?;
            let txn = wrapped.begin().await?;
            article::Entity::delete_by_id(b.id).exec(&txn).await?;
            txn.commit().await
        })
        .await?;
    assert_eq!(articles(&db.db).await?.iter().map(|a| a.title.as_str()).collect::<Vec<_>>(), ["c"]);
    let want = [row("CREATE", "a"), row("CREATE", "b"), row("CREATE", "c"), row("UPDATE", "a"), row("UPDATE", "b")];
    assert_eq!(recorded().await?, want, "UPDATEs recorded, DELETEs not");

    AuditConfig::new()
        .enabled(false)
        .scope(async {
            article::Entity::update_many().col_expr(article::Column::Views, Expr::value(2)).exec(&wrapped).await?;
            let txn = wrapped.begin().await?;
            article::Entity::insert(art("d")).exec(&txn).await?;
            txn.commit().await
        })
        .await?;
    without_audit(async {
        article::Entity::update_many().col_expr(article::Column::Published, Expr::value(true)).exec(&wrapped).await?;
        article::Entity::insert_many([art("e")]).exec(&wrapped).await?;
        article::Entity::delete_many().filter(article::Column::Title.eq("d")).exec(&wrapped).await?;
        Ok::<_, DbErr>(())
    })
    .await?;
    let now: Vec<(String, i32, bool)> =
        articles(&db.db).await?.into_iter().map(|a| (a.title, a.views, a.published)).collect();
    assert_eq!(now, [("c".to_owned(), 2, true), ("e".to_owned(), 0, false)], "unrecorded writes took effect");
    assert_eq!(recorded().await?, want, "nothing recorded while disabled or suppressed");

    // Outside the scopes the same wrapper records again.
    article::Entity::delete_many().exec(&wrapped).await?;
    let mut want = want.to_vec();
    want.extend([row("DELETE", "c"), row("DELETE", "e")]);
    want.sort();
    assert_eq!(recorded().await?, want);
    Ok(())
});

backend_test!(async fn config_masking_applies_through_the_wrapper(db) {
    // Fields masked, excluded or named secret by the configuration (no attribute) on
    // the bulk paths, including PostgreSQL's one-statement path, which builds the
    // `changes` JSON in SQL.
    use sea_orm_audit::AuditConfig;
    use sea_orm_audit_tests::fixtures::member;
    use std::sync::atomic::Ordering;
    sea_orm_audit::register::<member::Entity>();
    let (conn, statements) = counting(&db.db);
    let wrapped = AuditedConnection::new(conn);
    let cfg = AuditConfig::new()
        .mask_field("member.email")
        .exclude_field("member.api_key")
        .secret_name("display_name");
    let new_member = |i: u8| member::ActiveModel {
        email: Set(format!("mail-{i}@example.com")),
        password_hash: Set(format!("pw-hash-{i}")),
        api_key: Set(Some(format!("sk-live-{i}"))),
        access_token: Set(Some(format!("at-{i}"))),
        reset_token: Set(Some(format!("rt-{i}"))),
        display_name: Set(format!("Name {i}")),
        ..Default::default()
    };
    let count = |before: usize| statements.load(Ordering::Relaxed) - before;
    let (inserted, updated) = cfg
        .scope(async {
            let before = statements.load(Ordering::Relaxed);
            member::Entity::insert_many([new_member(1), new_member(2)]).exec(&wrapped).await?;
            let inserted = count(before);
            let before = statements.load(Ordering::Relaxed);
            member::Entity::update_many()
                .col_expr(member::Column::Email, Expr::value("mail-new@example.com"))
                .col_expr(member::Column::PasswordHash, Expr::value("pw-hash-new"))
                .col_expr(member::Column::ApiKey, Expr::value("sk-live-new"))
                .col_expr(member::Column::DisplayName, Expr::value("Name new"))
                .col_expr(member::Column::ResetToken, Expr::value("rt-new"))
                .exec(&wrapped)
                .await?;
            let updated = count(before);
            // A change to an excluded field alone records nothing.
            member::Entity::update_many()
                .col_expr(member::Column::ApiKey, Expr::value("sk-live-newer"))
                .exec(&wrapped)
                .await?;
            Ok::<_, DbErr>((inserted, updated))
        })
        .await?;
    if db.backend == Backend::Postgres {
        assert_eq!((inserted, updated), (1, 1), "the one-statement path was taken");
    }
    let stored = member::Entity::find().all(&db.db).await?;
    assert!(stored.iter().all(|m| m.api_key.as_deref() == Some("sk-live-newer")));
    let rows = trail(&db.db).await?;
    assert_eq!(rows.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["CREATE", "CREATE", "UPDATE", "UPDATE"]);
    let masked = json!({"masked": true});
    for r in &rows {
        let c = changes(r);
        let pk = r.object_pk.clone().unwrap_or_default();
        assert_eq!(r.object_repr, Some(format!("member#{pk}")), "the masked repr column is not shown");
        for field in ["email", "display_name", "password_hash"] {
            assert_eq!(c[field], masked, "{field} in {c}");
        }
        assert!(c.get("api_key").is_none(), "the excluded field is recorded: {c}");
        let all = format!("{r:?}");
        for secret in ["mail-", "pw-hash-", "sk-live-", "Name "] {
            assert!(!all.contains(secret), "{secret} leaked into {all}");
        }
    }
    for r in &rows[..2] {
        assert_eq!(changes(r)["access_token"], masked);
        assert!(changes(r)["reset_token"]["new"].as_str().is_some_and(|t| t.starts_with("rt-")));
    }
    for r in &rows[2..] {
        let c = changes(r);
        assert_eq!(c["reset_token"]["new"], json!("rt-new"), "unmasked by its attribute: {c}");
        assert_eq!(keys(&c), ["display_name", "email", "password_hash", "reset_token"]);
    }
    Ok(())
});

backend_test!(async fn a_rolled_back_savepoint_leaves_no_rows(db) {
    // A transaction nested in an auditing transaction is a savepoint: rolled back, its
    // changes and their audit rows go; the outer transaction's rows, recorded before
    // and after it, stay. Both with rows buffered until commit and (PostgreSQL) written
    // by each statement.
    sea_orm_audit::register::<article::Entity>();
    for wrapped in [AuditedConnection::new(db.db.clone()), buffered(db)] {
        db.db.execute_unprepared("DELETE FROM article").await?;
        db.db.execute_unprepared("DELETE FROM audit_log").await?;
        let txn = wrapped.begin().await?;
        art("outer 1").insert(&txn).await?;
        article::Entity::insert_many([art("outer 2")]).exec(&txn).await?;

        let nested = txn.begin().await?;
        art("inner").insert(&nested).await?;
        article::Entity::update_many().col_expr(article::Column::Views, Expr::value(5)).exec(&nested).await?;
        article::Entity::delete_many().filter(article::Column::Title.eq("outer 1")).exec(&nested).await?;
        nested.rollback().await?;

        let kept = txn.begin().await?;
        art("kept").insert(&kept).await?;
        kept.commit().await?;
        article::Entity::update_many()
            .col_expr(article::Column::Published, Expr::value(true))
            .filter(article::Column::Title.eq("outer 2"))
            .exec(&txn)
            .await?;
        txn.commit().await?;

        let stored: Vec<(String, i32, bool)> =
            articles(&db.db).await?.into_iter().map(|a| (a.title, a.views, a.published)).collect();
        let art_row = |t: &str, published: bool| (t.to_owned(), 0, published);
        assert_eq!(stored, [art_row("outer 1", false), art_row("outer 2", true), art_row("kept", false)]);
        let rows = trail(&db.db).await?;
        let recorded: Vec<(String, String)> =
            rows.iter().map(|r| (r.action.clone(), r.object_repr.clone().unwrap_or_default())).collect();
        let row = |action: &str, repr: &str| (action.to_owned(), repr.to_owned());
        assert_eq!(
            recorded,
            [row("CREATE", "outer 1"), row("CREATE", "outer 2"), row("CREATE", "kept"), row("UPDATE", "outer 2")]
        );
        assert_eq!(changes(&rows[3]), json!({"published": {"old": false, "new": true}}));
    }
    Ok(())
});
