mod user {
    use sea_orm::entity::prelude::*;
    use sea_orm_audit::Audited;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
    #[sea_orm(table_name = "user")]
    #[audited(exclude(posts))]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub name: String,
        #[sea_orm(has_many)]
        #[audited(mask)]
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
        #[sea_orm(belongs_to, from = "user_id", to = "id")]
        pub author: BelongsTo<super::user::Entity>,
    }
}

fn main() {}
