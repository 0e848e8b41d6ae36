//! Creates `audit_lock`: a fixed set of rows that brute-force bookkeeping locks with
//! `SELECT … FOR UPDATE` on MySQL/MariaDB.
//!
//! Named locks (`GET_LOCK`) belong to the pooled session rather than to a transaction,
//! so one left behind by a cancelled future would leak to the next user of the
//! connection; a row lock ends with the transaction. The rows are created here, once,
//! because inserting a lock row on first use races with itself (two inserts of the
//! same new key deadlock on InnoDB). PostgreSQL and SQLite do not read this table.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::utf8mb4;

/// Number of lock rows; must match the runtime's `LOCK_SLOTS`.
pub(crate) const SLOTS: i32 = 256;

/// Creates `audit_lock` with its rows; `down` drops it.
pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        crate::CREATE_AUDIT_LOCK
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(create_table(manager.get_database_backend()))
            .await?;
        manager.exec_stmt(fill()?).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditLock::Table).take())
            .await
    }
}

#[derive(DeriveIden)]
enum AuditLock {
    Table,
    Slot,
}

pub(crate) fn create_table(backend: sea_orm_migration::sea_orm::DbBackend) -> TableCreateStatement {
    let mut table = Table::create();
    table
        .table(AuditLock::Table)
        .col(integer(AuditLock::Slot).primary_key());
    utf8mb4(backend, &mut table);
    table
}

fn fill() -> Result<InsertStatement, DbErr> {
    let mut insert = Query::insert();
    insert
        .into_table(AuditLock::Table)
        .columns([AuditLock::Slot]);
    for slot in 0..SLOTS {
        insert
            .values([slot.into()])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    Ok(insert)
}
