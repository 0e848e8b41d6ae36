//! The 2.0 entity format: `#[sea_orm::model]` moves the relation fields to a generated
//! `ModelEx`, which inherits `#[derive(Audited)]` and `#[audited]` too.

mod user {
    use sea_orm::entity::prelude::*;
    use sea_orm_audit::Audited;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
    #[sea_orm(table_name = "user")]
    #[audited(mask(email), repr = "name")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub name: String,
        #[sea_orm(unique)]
        pub email: String,
        #[sea_orm(has_many)]
        pub posts: HasMany<super::post::Entity>,
    }
}

mod post {
    use sea_orm::entity::prelude::*;
    use sea_orm_audit::Audited;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
    #[sea_orm(table_name = "post")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub user_id: i64,
        #[audited(exclude)]
        pub body: String,
        #[sea_orm(belongs_to, from = "user_id", to = "id")]
        pub author: BelongsTo<super::user::Entity>,
    }
}

mod tag {
    use sea_orm::entity::prelude::*;
    use sea_orm_audit::Audited;

    #[sea_orm::compact_model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
    #[sea_orm(table_name = "tag")]
    #[audited(unmask(token))]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub token: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}
}

use sea_orm_audit::AuditedModel;

fn main() {
    assert_eq!(user::Model::audit_meta().mask, ["email"]);
    assert_eq!(post::Model::audit_meta().exclude, ["body"]);
    assert_eq!(tag::Model::audit_meta().unmask, ["token"]);
}
