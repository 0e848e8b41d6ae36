//! Adds the `audit_log` indexes behind the admin viewer's search box.

use sea_orm_migration::prelude::*;

/// Creates the search indexes; `down` drops them.
pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        crate::ADD_AUDIT_LOG_SEARCH_INDEXES
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in create_indexes() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in create_indexes() {
            let name = index
                .get_index_spec()
                .get_name()
                .unwrap_or_default()
                .to_owned();
            manager
                .drop_index(Index::drop().name(name).table(AuditLog::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    ObjectPk,
    ObjectRepr,
    ActorName,
    CreatedAt,
}

// Search by primary key without a table, and prefix search on the repr and the actor's
// name, are answered from these instead of a scan of the whole log (the original's
// `icontains` search fields were scans, D20).
pub(crate) fn create_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_audit_log_object_pk_created_at")
            .table(AuditLog::Table)
            .col(AuditLog::ObjectPk)
            .col(AuditLog::CreatedAt)
            .take(),
        Index::create()
            .name("idx_audit_log_object_repr")
            .table(AuditLog::Table)
            .col(AuditLog::ObjectRepr)
            .take(),
        Index::create()
            .name("idx_audit_log_actor_name")
            .table(AuditLog::Table)
            .col(AuditLog::ActorName)
            .take(),
    ]
}
