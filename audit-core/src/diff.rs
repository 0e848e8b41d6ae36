//! Field-by-field diffs of audited models, with exclusion and masking applied.
//!
//! The shape is `{"field": {"old": ..., "new": ...}}`: `old` is absent on CREATE and
//! `new` on DELETE. A masked field is `{"field": {"masked": true}}`: the row says the
//! field was set or changed, never its value. Excluded fields never appear.

use sea_orm::{
    EntityName, EntityTrait, IdenStatic, Iterable, ModelTrait, PrimaryKeyToColumn, Value,
};
use serde_json::{Map, Value as Json};

use crate::config::{AuditConfig, FieldRule};
use crate::model::AuditedModel;
use crate::value::to_json;

type Entity<M> = <M as ModelTrait>::Entity;
type Column<M> = <Entity<M> as EntityTrait>::Column;

/// Longest object repr kept, in characters.
pub const MAX_REPR_CHARS: usize = 200;

/// The table name of a model's entity.
pub(crate) fn table_name<M: ModelTrait>() -> &'static str {
    Entity::<M>::default().table_name()
}

fn masked() -> Json {
    let mut m = Map::with_capacity(1);
    m.insert("masked".into(), Json::Bool(true));
    Json::Object(m)
}

fn one(key: &str, value: Json) -> Json {
    let mut m = Map::with_capacity(1);
    m.insert(key.into(), value);
    Json::Object(m)
}

/// Every recorded field of `model` under `key` (`"new"` for CREATE, `"old"` for DELETE).
pub(crate) fn snapshot<M: AuditedModel>(
    model: &M,
    key: &str,
    cfg: &AuditConfig,
) -> Map<String, Json> {
    let table = table_name::<M>();
    let meta = M::audit_meta();
    let mut out = Map::new();
    for col in Column::<M>::iter() {
        let name = col.as_str();
        match cfg.field_rule(table, name, meta) {
            FieldRule::Exclude => {}
            FieldRule::Mask => {
                out.insert(name.to_owned(), masked());
            }
            FieldRule::Record => {
                out.insert(name.to_owned(), one(key, to_json(&model.get(col))));
            }
        }
    }
    out
}

/// The fields whose values differ between `old` and `new`, each with both values.
pub(crate) fn changed<M: AuditedModel>(old: &M, new: &M, cfg: &AuditConfig) -> Map<String, Json> {
    let table = table_name::<M>();
    let meta = M::audit_meta();
    let mut out = Map::new();
    for col in Column::<M>::iter() {
        let name = col.as_str();
        let rule = cfg.field_rule(table, name, meta);
        if rule == FieldRule::Exclude {
            continue;
        }
        let (a, b) = (old.get(col), new.get(col));
        if same(&a, &b) {
            continue;
        }
        let entry = match rule {
            FieldRule::Mask => masked(),
            _ => {
                let mut m = Map::with_capacity(2);
                m.insert("old".into(), to_json(&a));
                m.insert("new".into(), to_json(&b));
                Json::Object(m)
            }
        };
        out.insert(name.to_owned(), entry);
    }
    out
}

/// Value equality as the audit sees it: two values are the same when their audit JSON
/// is the same, so `Some(1.0)` written and `1.0` read back are not reported as a change
/// just because one side went through a different SQL type.
fn same(a: &Value, b: &Value) -> bool {
    a == b || to_json(a) == to_json(b)
}

/// The primary key as text: the bare value for a single key (`42`, a UUID, a string),
/// a JSON array for a composite key (`[1,"en"]`), which cannot be confused with a
/// single key's text because the array keeps each part's type and boundaries.
pub fn primary_key_text<M: ModelTrait>(model: &M) -> String {
    let mut parts: Vec<Json> = <Entity<M> as EntityTrait>::PrimaryKey::iter()
        .map(|k| to_json(&model.get(k.into_column())))
        .collect();
    if parts.len() == 1 {
        match parts.pop() {
            Some(Json::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        }
    } else {
        Json::Array(parts).to_string()
    }
}

/// The object's repr: the `repr` field when the entity names one, else `table#pk`;
/// bounded to [`MAX_REPR_CHARS`].
pub(crate) fn repr<M: AuditedModel>(model: &M, pk: &str) -> String {
    let raw = model
        .audit_repr()
        .unwrap_or_else(|| format!("{}#{}", table_name::<M>(), pk));
    crate::text::bounded(&raw, MAX_REPR_CHARS)
}
