use sea_orm::entity::prelude::*;
use sea_orm_audit::Audited;

// SeaORM's expanded entity format: the primary key and the columns live in separate enums,
// out of the derive's sight.
#[derive(Copy, Clone, Default, Debug, DeriveEntity)]
pub struct Entity;

impl EntityName for Entity {
    fn table_name(&self) -> &'static str {
        "article"
    }
}

#[derive(Clone, Debug, PartialEq, DeriveModel, DeriveActiveModel, Audited)]
#[audited(exclude(body_html))]
pub struct Model {
    pub id: i64,
    pub body_html: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveColumn)]
pub enum Column {
    Id,
    BodyHtml,
}

#[derive(Copy, Clone, Debug, EnumIter, DerivePrimaryKey)]
pub enum PrimaryKey {
    Id,
}

impl PrimaryKeyTrait for PrimaryKey {
    type ValueType = i64;

    fn auto_increment() -> bool {
        true
    }
}

impl ColumnTrait for Column {
    type EntityName = Entity;

    fn def(&self) -> ColumnDef {
        match self {
            Self::Id => ColumnType::BigInteger.def(),
            Self::BodyHtml => ColumnType::Text.def(),
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

fn main() {}
