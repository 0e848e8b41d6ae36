//! A crate that re-exports the runtime points the derive at its re-export.

mod reexport {
    pub use sea_orm_audit as audit;
}

use sea_orm::entity::prelude::*;
use sea_orm_audit::Audited;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
#[sea_orm(table_name = "article")]
#[audited(crate = "crate::reexport::audit", mask(title), custom_hooks)]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub title: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl reexport::audit::AuditBehavior for ActiveModel {}

fn main() {
    use reexport::audit::AuditedModel;
    assert_eq!(Model::audit_meta().mask, ["title"]);
}
