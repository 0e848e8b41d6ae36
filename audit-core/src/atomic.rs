//! One-call atomic writes on a plain connection.
//!
//! SeaORM hooks cannot tell a transaction from a pooled connection, so on a plain
//! `DatabaseConnection` a change and its audit row are separate statements that commit
//! separately. These methods wrap a single audited write in its own transaction, so the
//! change and its audit row commit together or not at all.

use std::future::Future;

use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, DbErr, DeleteResult, EntityTrait, IntoActiveModel,
    TransactionSession, TransactionTrait,
};

use crate::model::AuditedModel;

type Model<A> = <<A as ActiveModelTrait>::Entity as EntityTrait>::Model;

/// `insert`/`update`/`save`/`delete`, each in a transaction of its own.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::{setup, post};
/// use sea_orm::{ActiveValue::Set, EntityTrait};
/// use sea_orm_audit::AtomicWrite;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm::DbErr> {
/// # let db = setup().await?;
/// let post = post::ActiveModel { title: Set("Hello".into()), ..Default::default() }
///     .insert_atomic(&db)
///     .await?;
/// assert_eq!(post.title, "Hello");
/// # Ok(()) }
/// ```
pub trait AtomicWrite: ActiveModelTrait + ActiveModelBehavior + Send + Sized
where
    Model<Self>: AuditedModel + IntoActiveModel<Self>,
{
    /// [`ActiveModelTrait::insert`] and its audit row in one transaction.
    fn insert_atomic<'a, C>(
        self,
        db: &'a C,
    ) -> impl Future<Output = Result<Model<Self>, DbErr>> + Send + 'a
    where
        C: TransactionTrait + Sync,
        Self: 'a,
    {
        async move {
            let txn = db.begin().await?;
            let model = self.insert(&txn).await?;
            txn.commit().await?;
            Ok(model)
        }
    }

    /// [`ActiveModelTrait::update`] and its audit row in one transaction.
    fn update_atomic<'a, C>(
        self,
        db: &'a C,
    ) -> impl Future<Output = Result<Model<Self>, DbErr>> + Send + 'a
    where
        C: TransactionTrait + Sync,
        Self: 'a,
    {
        async move {
            let txn = db.begin().await?;
            let model = self.update(&txn).await?;
            txn.commit().await?;
            Ok(model)
        }
    }

    /// [`ActiveModelTrait::save`] and its audit row in one transaction.
    fn save_atomic<'a, C>(self, db: &'a C) -> impl Future<Output = Result<Self, DbErr>> + Send + 'a
    where
        C: TransactionTrait + Sync,
        Self: 'a,
    {
        async move {
            let txn = db.begin().await?;
            let saved = self.save(&txn).await?;
            txn.commit().await?;
            Ok(saved)
        }
    }

    /// [`ActiveModelTrait::delete`] and its audit row in one transaction.
    fn delete_atomic<'a, C>(
        self,
        db: &'a C,
    ) -> impl Future<Output = Result<DeleteResult, DbErr>> + Send + 'a
    where
        C: TransactionTrait + Sync,
        Self: 'a,
    {
        async move {
            let txn = db.begin().await?;
            let res = self.delete(&txn).await?;
            txn.commit().await?;
            Ok(res)
        }
    }
}

impl<A> AtomicWrite for A
where
    A: ActiveModelTrait + ActiveModelBehavior + Send + Sized,
    Model<A>: AuditedModel + IntoActiveModel<A>,
{
}
