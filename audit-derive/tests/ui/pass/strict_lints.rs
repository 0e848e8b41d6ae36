//! The expansion stays quiet under a user's strict lints.

#![deny(
    warnings,
    unused_qualifications,
    missing_debug_implementations,
    unreachable_pub
)]
#![deny(rust_2018_idioms, unused_results, trivial_casts, trivial_numeric_casts)]

use sea_orm::entity::prelude::*;
use sea_orm_audit::Audited;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
#[sea_orm(table_name = "article")]
#[audited(repr = "id")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

fn main() {}
