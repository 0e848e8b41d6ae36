//! Object history and time travel: the rows of one object, its state at an instant,
//! and restoring it to that state through the audited write path.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IdenStatic,
    IntoActiveModel, Iterable, PrimaryKeyToColumn, PrimaryKeyTrait, QueryFilter,
    TransactionSession, TransactionTrait, TryIntoModel,
};
use serde_json::{Map, Value as Json, json};

use super::{AuditQuery, decode, pk_text};
use crate::context::RequestContext;
use crate::entity::audit_log;
use crate::error::AuditError;
use crate::events::{
    self, ACTION_CREATE, ACTION_DELETE, ACTION_RESTORE, ACTION_UPDATE, AuditEvent,
};
use crate::model::AuditedModel;
use crate::value::to_json;

type Entity<M> = <M as sea_orm::ModelTrait>::Entity;
type PkValue<E> = <<E as EntityTrait>::PrimaryKey as PrimaryKeyTrait>::ValueType;

/// Every audit row of one object, oldest first.
///
/// For long histories page with
/// [`AuditQuery::object_of`](crate::AuditQuery::object_of) instead.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::{setup, post};
/// use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};
/// use sea_orm_audit::object_history;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let db = setup().await?;
/// let p = post::ActiveModel { title: Set("v1".into()), ..Default::default() }.insert(&db).await?;
/// let mut am = p.clone().into_active_model();
/// am.title = Set("v2".into());
/// am.update(&db).await?;
/// let rows = object_history::<post::Entity>(&db, p.id).await?;
/// let actions: Vec<_> = rows.iter().map(|r| r.action.as_str()).collect();
/// assert_eq!(actions, ["CREATE", "UPDATE"]);
/// # Ok(()) }
/// ```
pub async fn object_history<E>(
    db: &impl ConnectionTrait,
    pk: PkValue<E>,
) -> Result<Vec<audit_log::Model>, AuditError>
where
    E: EntityTrait,
{
    let query = AuditQuery::new().object_of::<E>(pk).oldest_first();
    query
        .select_for(db.get_database_backend())
        .all(db)
        .await
        .map_err(crate::writer::classify)
}

/// Whether the object existed at the requested time, as far as the trail says.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::{setup, post};
/// use sea_orm_audit::{ObjectStatus, state_at};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = setup().await?;
/// let never = state_at::<post::Model>(&db, 404, chrono::Utc::now()).await?;
/// assert_eq!(never.status, ObjectStatus::NotRecorded);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectStatus {
    /// No CREATE, UPDATE or DELETE row at or before that time: not created yet, or
    /// never audited.
    NotRecorded,
    /// It existed.
    Exists,
    /// It had been deleted.
    Deleted,
}

/// An object's state at an instant, rebuilt from its CREATE, UPDATE and DELETE rows.
///
/// `state` holds the recorded value of every column the trail knows, in audit JSON
/// form; for a deleted object it is the state just before deletion. Columns the trail
/// cannot know (excluded or masked fields, or fields never written since auditing
/// began) are listed in `missing` and absent from `state`: they are never invented.
/// `model` is the typed model when nothing is missing.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::{setup, post};
/// use sea_orm::{ActiveModelTrait, ActiveValue::Set};
/// use sea_orm_audit::state_at;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let db = setup().await?;
/// let p = post::ActiveModel { title: Set("hi".into()), ..Default::default() }.insert(&db).await?;
/// let now = state_at::<post::Model>(&db, p.id, chrono::Utc::now()).await?;
/// assert!(now.missing.is_empty());
/// assert_eq!(now.state["title"], "hi");
/// assert_eq!(now.model, Some(p));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StateAt<M> {
    /// Existed, deleted, or nothing recorded.
    pub status: ObjectStatus,
    /// Known column values (audit JSON).
    pub state: Map<String, Json>,
    /// Columns without a recorded value, in column order.
    pub missing: Vec<String>,
    /// The rebuilt model, when every column is known and decodes.
    pub model: Option<M>,
    /// The last audit row applied (`None` with [`ObjectStatus::NotRecorded`]).
    pub last_entry_id: Option<i64>,
}

/// Rebuilds the state of the `M` with primary key `pk` as of `at` (UTC, inclusive).
///
/// ```
/// # use sea_orm_audit::doc_fixtures::{setup, post};
/// use chrono::Utc;
/// use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};
/// use sea_orm_audit::{ObjectStatus, state_at};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let db = setup().await?;
/// let p = post::ActiveModel { title: Set("v1".into()), ..Default::default() }.insert(&db).await?;
/// let t1 = Utc::now();
/// # tokio::time::sleep(std::time::Duration::from_millis(2)).await;
/// let mut am = p.clone().into_active_model();
/// am.title = Set("v2".into());
/// am.update(&db).await?;
///
/// let then = state_at::<post::Model>(&db, p.id, t1).await?;
/// assert_eq!(then.status, ObjectStatus::Exists);
/// assert_eq!(then.model.unwrap().title, "v1");
/// # Ok(()) }
/// ```
pub async fn state_at<M>(
    db: &impl ConnectionTrait,
    pk: PkValue<Entity<M>>,
    at: DateTime<Utc>,
) -> Result<StateAt<M>, AuditError>
where
    M: AuditedModel,
    <Entity<M> as EntityTrait>::ActiveModel: TryIntoModel<M>,
{
    state_at_key::<M, _>(db, pk_text::<Entity<M>>(pk), at).await
}

async fn state_at_key<M, C>(db: &C, pk: String, at: DateTime<Utc>) -> Result<StateAt<M>, AuditError>
where
    M: AuditedModel,
    <Entity<M> as EntityTrait>::ActiveModel: TryIntoModel<M>,
    C: ConnectionTrait,
{
    let table = <Entity<M> as Default>::default().table_name().to_owned();
    let rows = AuditQuery::new()
        .object(table, pk)
        .action(ACTION_CREATE)
        .action(ACTION_UPDATE)
        .action(ACTION_DELETE)
        .until(
            at.checked_add_signed(chrono::TimeDelta::microseconds(1))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
        .oldest_first()
        .select_for(db.get_database_backend())
        .all(db)
        .await
        .map_err(crate::writer::classify)?;
    Ok(replay::<M>(&rows))
}

/// The JSON half of [`state_at`]: replays CREATE/UPDATE/DELETE rows (oldest first) into
/// the status, the known column values and the id of the last row applied. The admin
/// viewer, which has a table name and key text but no entity type, calls this directly.
pub(crate) fn replay_json(
    rows: &[audit_log::Model],
) -> (ObjectStatus, Map<String, Json>, Option<i64>) {
    let mut status = ObjectStatus::NotRecorded;
    let mut state = Map::new();
    let mut last = None;
    for row in rows {
        let changes = row.changes.as_ref().and_then(Json::as_object);
        match row.action.as_str() {
            ACTION_CREATE | ACTION_UPDATE => {
                if row.action == ACTION_CREATE || status == ObjectStatus::Deleted {
                    state.clear();
                }
                for (field, change) in changes.into_iter().flatten() {
                    match change.get("new") {
                        Some(v) => {
                            state.insert(field.clone(), v.clone());
                        }
                        // Masked (or any shape without a value): the old value is stale.
                        None => {
                            state.remove(field);
                        }
                    }
                }
                status = ObjectStatus::Exists;
            }
            ACTION_DELETE => {
                state.clear();
                for (field, change) in changes.into_iter().flatten() {
                    if let Some(v) = change.get("old") {
                        state.insert(field.clone(), v.clone());
                    }
                }
                status = ObjectStatus::Deleted;
            }
            _ => continue,
        }
        last = Some(row.id);
    }
    (status, state, last)
}

fn replay<M>(rows: &[audit_log::Model]) -> StateAt<M>
where
    M: AuditedModel,
    <Entity<M> as EntityTrait>::ActiveModel: TryIntoModel<M>,
{
    let (status, state, last) = replay_json(rows);
    let mut missing = Vec::new();
    let mut am = <Entity<M> as EntityTrait>::ActiveModel::default();
    for col in <Entity<M> as EntityTrait>::Column::iter() {
        let name = col.as_str();
        let Some(j) = state.get(name) else {
            missing.push(name.to_owned());
            continue;
        };
        let ct = col.def().get_column_type().clone();
        let ok = decode::candidates(&ct, j)
            .into_iter()
            .any(|v| am.try_set(col, v).is_ok());
        if !ok {
            missing.push(name.to_owned());
        }
    }
    let model = if status != ObjectStatus::NotRecorded && missing.is_empty() {
        am.try_into_model().ok()
    } else {
        None
    };
    StateAt {
        status,
        state,
        missing,
        model,
        last_entry_id: last,
    }
}

/// What [`restore`] did.
///
/// ```
/// use sea_orm_audit::RestoreKind;
/// let kind = RestoreKind::Inserted;
/// assert_ne!(kind, RestoreKind::Updated);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreKind {
    /// The object had been deleted and was inserted again (a CREATE row).
    Inserted,
    /// The object existed and was updated (an UPDATE row with the diff).
    Updated,
    /// The object already had that state; only the RESTORE row was written.
    Unchanged,
}

/// The result of [`restore`]; see its example.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::post;
/// fn report(r: &sea_orm_audit::Restored<post::Model>) -> String {
///     format!("{:?} {} (entry {:?})", r.kind, r.model.title, r.restore_entry_id)
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Restored<M> {
    /// The object as stored after the restore.
    pub model: M,
    /// Insert, update, or nothing to do.
    pub kind: RestoreKind,
    /// Id of the RESTORE `audit_log` row that carries the reason (`None` if RESTORE is
    /// a skipped action).
    pub restore_entry_id: Option<i64>,
}

/// Puts the object with primary key `pk` back into its state at `at`, through the
/// audited write path, and says why.
///
/// In one transaction (a savepoint inside the caller's): if the object exists it is
/// updated (an UPDATE row with the diff), if it was deleted it is inserted again with
/// its old primary key (a CREATE row); both rows carry
/// `metadata.restore = {"to": at, "reason": reason, "source_entry_id": id}`, where `id`
/// is the audit row the state at `at` comes from. A RESTORE row then records the
/// reason in `reason` and the source entry in `changes`.
///
/// Errors: [`AuditError::NoState`] when nothing was recorded at `at` or the object was
/// deleted at that time; [`AuditError::IncompleteState`] when some columns have no
/// recorded value (excluded or masked fields), since writing a guess would be worse
/// than refusing.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::{setup, post};
/// use chrono::Utc;
/// use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
/// use sea_orm_audit::{RestoreKind, restore};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let db = setup().await?;
/// let p = post::ActiveModel { title: Set("keep me".into()), ..Default::default() }.insert(&db).await?;
/// let before_delete = Utc::now();
/// # tokio::time::sleep(std::time::Duration::from_millis(2)).await;
/// p.clone().into_active_model().delete(&db).await?;
///
/// let back = restore::<post::ActiveModel>(&db, p.id, before_delete, "deleted by mistake").await?;
/// assert_eq!(back.kind, RestoreKind::Inserted);
/// assert_eq!(post::Entity::find_by_id(p.id).one(&db).await?.unwrap().title, "keep me");
/// # Ok(()) }
/// ```
pub async fn restore<A>(
    db: &(impl ConnectionTrait + TransactionTrait),
    pk: PkValue<A::Entity>,
    at: DateTime<Utc>,
    reason: &str,
) -> Result<Restored<<A::Entity as EntityTrait>::Model>, AuditError>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send + Sync,
    <A::Entity as EntityTrait>::Model: AuditedModel + IntoActiveModel<A>,
    <A::Entity as EntityTrait>::ActiveModel: TryIntoModel<<A::Entity as EntityTrait>::Model>,
{
    let table = <A::Entity as Default>::default().table_name().to_owned();
    let pk_str = pk_text::<A::Entity>(pk);
    let target =
        state_at_key::<<A::Entity as EntityTrait>::Model, _>(db, pk_str.clone(), at).await?;
    let no_state = || AuditError::NoState {
        table: table.clone(),
        pk: pk_str.clone(),
    };
    if target.status != ObjectStatus::Exists {
        return Err(no_state());
    }
    let Some(model) = target.model else {
        return Err(AuditError::IncompleteState {
            table: table.clone(),
            pk: pk_str.clone(),
            missing: target.missing,
        });
    };
    let reason = crate::text::bounded(reason, events::MAX_REASON_CHARS);
    let at_json = json!(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    let base = RequestContext::current()
        .map(|c| (*c).clone())
        .unwrap_or_default();
    let mut meta = base
        .metadata_value()
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    meta.insert(
        "restore".into(),
        json!({"to": at_json, "reason": reason, "source_entry_id": target.last_entry_id}),
    );
    let ctx = base.metadata(Json::Object(meta));

    let txn = db.begin().await?;
    let outcome = ctx
        .clone()
        .scope(async {
            let mut find = A::Entity::find();
            for key in <A::Entity as EntityTrait>::PrimaryKey::iter() {
                let col = key.into_column();
                find = find.filter(col.eq(sea_orm::ModelTrait::get(&model, col)));
            }
            let current = find.one(&txn).await?;
            let mut am: A = model.clone().into_active_model();
            let kind = match current {
                Some(cur)
                    if <A::Entity as EntityTrait>::Column::iter().all(|col| {
                        let (a, b) = (
                            sea_orm::ModelTrait::get(&cur, col),
                            sea_orm::ModelTrait::get(&model, col),
                        );
                        a == b || to_json(&a) == to_json(&b)
                    }) =>
                {
                    RestoreKind::Unchanged
                }
                Some(_) => {
                    for col in <A::Entity as EntityTrait>::Column::iter() {
                        let is_key =
                            <A::Entity as EntityTrait>::PrimaryKey::from_column(col).is_some();
                        if !is_key {
                            am.set(col, sea_orm::ModelTrait::get(&model, col));
                        }
                    }
                    RestoreKind::Updated
                }
                None => {
                    for col in <A::Entity as EntityTrait>::Column::iter() {
                        am.set(col, sea_orm::ModelTrait::get(&model, col));
                    }
                    RestoreKind::Inserted
                }
            };
            let stored = match kind {
                RestoreKind::Unchanged => model.clone(),
                RestoreKind::Updated => am.update(&txn).await?,
                RestoreKind::Inserted => am.insert(&txn).await?,
            };
            Ok::<_, AuditError>((stored, kind))
        })
        .await?;
    let (stored, kind) = outcome;
    let entry = if events::is_skipped(ACTION_RESTORE) {
        None
    } else {
        let event = AuditEvent::new(ACTION_RESTORE)?
            .object(&stored)
            .reason(&reason)
            .changes(json!({
                "restored_to": at_json,
                "source_entry_id": target.last_entry_id,
                "result": match kind {
                    RestoreKind::Inserted => "inserted",
                    RestoreKind::Updated => "updated",
                    RestoreKind::Unchanged => "unchanged",
                },
            }));
        Some(events::insert_entry(&txn, event, Some(&ctx)).await?)
    };
    txn.commit().await?;
    Ok(Restored {
        model: stored,
        kind,
        restore_entry_id: entry,
    })
}

use sea_orm::EntityName as _;
