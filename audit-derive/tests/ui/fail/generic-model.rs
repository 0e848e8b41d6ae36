use sea_orm_audit::Audited;

#[derive(Clone, Debug, Audited)]
pub struct Model<T> {
    pub id: i64,
    pub payload: T,
}

fn main() {}
