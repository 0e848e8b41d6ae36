use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm_audit::{AuditBehavior, Audited};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
#[sea_orm(table_name = "article")]
#[audited(custom_hooks)]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub title: String,
    pub revision: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

#[sea_orm_audit::async_trait]
impl AuditBehavior for ActiveModel {
    fn new() -> Self {
        Self {
            revision: Set(1),
            ..<Self as ActiveModelTrait>::default()
        }
    }

    async fn before_save<C>(mut self, _db: &C, insert: bool) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        if !insert {
            let revision = self.revision.clone().take().unwrap_or(0);
            self.revision = Set(revision + 1);
        }
        Ok(self)
    }
}

fn main() {
    let am = <ActiveModel as ActiveModelBehavior>::new();
    assert_eq!(am.revision, Set(1));
}
