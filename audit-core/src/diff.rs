//! Field-by-field diffs of audited rows, with exclusion and masking applied.
//!
//! The shape is `{"field": {"old": ..., "new": ...}}`: `old` is absent on CREATE and
//! `new` on DELETE. A masked field is `{"field": {"masked": true}}`: the row says the
//! field was set or changed, never its value. Excluded fields never appear.
//!
//! Both the hooks and the auditing connection turn rows into [`Image`]s and build
//! their entries here, so a change is described the same way whichever path wrote it.

use sea_orm::sea_query::{TableName, TableRef};
use sea_orm::{
    EntityName, EntityTrait, IdenStatic, Iterable, ModelTrait, PrimaryKeyToColumn, RelationTrait,
    Value,
};
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use crate::config::{AuditConfig, FieldRule};
use crate::model::{AuditMeta, AuditedModel};
use crate::value::to_json;
use crate::writer::AuditEntry;

type Entity<M> = <M as ModelTrait>::Entity;
type Column<M> = <Entity<M> as EntityTrait>::Column;

/// Longest object repr kept, in characters.
pub const MAX_REPR_CHARS: usize = 200;

/// The table name of a model's entity.
pub(crate) fn table_name<M: ModelTrait>() -> &'static str {
    Entity::<M>::default().table_name()
}

/// One row of an audited table, as the audit sees it: every column's value, the
/// primary key as text and the repr.
#[derive(Clone, Debug)]
pub(crate) struct Image {
    pub(crate) pk: String,
    pub(crate) repr: String,
    pub(crate) values: Vec<(&'static str, Value)>,
}

impl Image {
    pub(crate) fn of<M: AuditedModel>(model: &M) -> Self {
        let pk = primary_key_text(model);
        Image {
            repr: repr(model, &pk),
            pk,
            values: Column::<M>::iter()
                .map(|c| (c.as_str(), model.get(c)))
                .collect(),
        }
    }
}

/// Action words of the rows a junction-table write adds to each linked object's trail.
pub(crate) const LINK: &str = "LINK";
pub(crate) const UNLINK: &str = "UNLINK";

/// One side of a many-to-many junction row: the table it points to and the junction
/// columns holding that table's key.
#[derive(Clone, Debug)]
pub(crate) struct LinkSide {
    table: String,
    columns: Vec<String>,
}

/// [`junction_sides`] of `E`, worked out once per entity type: every insert and delete
/// asks.
fn cached_junction_sides<E: EntityTrait>() -> Arc<[LinkSide]> {
    type Cache = HashMap<&'static str, Arc<[LinkSide]>>;
    static CACHE: LazyLock<RwLock<Cache>> = LazyLock::new(RwLock::default);
    let key = std::any::type_name::<E>();
    if let Some(sides) = CACHE.read().ok().and_then(|c| c.get(key).cloned()) {
        return sides;
    }
    let sides: Arc<[LinkSide]> = junction_sides::<E>().into();
    if let Ok(mut c) = CACHE.write() {
        c.insert(key, Arc::clone(&sides));
    }
    sides
}

/// The sides of `E` when it is a junction table: an entity whose primary key is made of
/// the foreign keys of two or more `belongs_to` relations. Empty for any other entity.
fn junction_sides<E: EntityTrait>() -> Vec<LinkSide> {
    let key: Vec<&str> = E::PrimaryKey::iter()
        .map(|k| k.into_column().as_str())
        .collect();
    let sides: Vec<LinkSide> = E::Relation::iter()
        .map(|r| r.def())
        .filter(|d| !d.is_owner)
        .filter_map(|d| {
            let columns: Vec<String> = d.from_col.iter().map(|c| c.inner().into_owned()).collect();
            let TableRef::Table(TableName(_, table), _) = &d.to_tbl else {
                return None;
            };
            columns
                .iter()
                .all(|c| key.contains(&c.as_str()))
                .then(|| LinkSide {
                    table: table.inner().into_owned(),
                    columns,
                })
        })
        .collect();
    let covered = key
        .iter()
        .all(|k| sides.iter().any(|s| s.columns.iter().any(|c| c == k)));
    if sides.len() >= 2 && covered {
        sides
    } else {
        Vec::new()
    }
}

/// Everything that is the same for all rows of one table in one write.
#[derive(Clone, Copy)]
pub(crate) struct TableInfo {
    pub(crate) table: &'static str,
    pub(crate) meta: &'static AuditMeta,
    links: fn() -> Arc<[LinkSide]>,
}

impl TableInfo {
    pub(crate) fn of<M: AuditedModel>() -> Self {
        TableInfo {
            table: table_name::<M>(),
            meta: M::audit_meta(),
            links: cached_junction_sides::<Entity<M>>,
        }
    }

    /// Whether this table is a many-to-many junction, whose writes also add LINK rows.
    pub(crate) fn is_junction(&self) -> bool {
        !(self.links)().is_empty()
    }

    /// For a row of a junction table, the LINK (on CREATE) or UNLINK (on DELETE) rows
    /// that put the change into the trail of each object it links.
    pub(crate) fn link_entries(
        &self,
        created: bool,
        image: &Image,
        cfg: &AuditConfig,
    ) -> Vec<AuditEntry> {
        let action = if created { LINK } else { UNLINK };
        let sides = (self.links)();
        if sides.is_empty() || cfg.is_action_skipped(action) {
            return Vec::new();
        }
        let key_of = |side: &LinkSide| {
            key_text(
                side.columns
                    .iter()
                    .filter_map(|c| {
                        image
                            .values
                            .iter()
                            .find(|(n, _)| n == c)
                            .map(|(_, v)| v.clone())
                    })
                    .collect(),
            )
        };
        let word = if created { "added" } else { "removed" };
        sides
            .iter()
            .filter(|side| !cfg.is_table_skipped(&side.table))
            .map(|side| {
                let pk = key_of(side);
                let mut changes = Map::new();
                for other in sides
                    .iter()
                    .filter(|o| o.table != side.table || o.columns != side.columns)
                {
                    changes.insert(other.table.clone(), one(word, Json::String(key_of(other))));
                }
                AuditEntry {
                    action: action.to_owned(),
                    table_name: Some(side.table.clone()),
                    object_repr: Some(format!("{}#{}", side.table, pk)),
                    object_pk: Some(pk),
                    changes: Some(Json::Object(changes)),
                    module: Some(self.meta.module.to_owned()),
                    metadata: Some(serde_json::json!({ "via": self.table })),
                    ..AuditEntry::default()
                }
            })
            .collect()
    }

    fn entry(&self, action: &str, image: &Image, changes: Map<String, Json>) -> AuditEntry {
        AuditEntry {
            action: action.to_owned(),
            table_name: Some(self.table.to_owned()),
            object_pk: Some(image.pk.clone()),
            object_repr: Some(image.repr.clone()),
            changes: Some(Json::Object(changes)),
            module: Some(self.meta.module.to_owned()),
            ..AuditEntry::default()
        }
    }

    /// The CREATE (`key = "new"`) or DELETE (`key = "old"`) entry of a whole row.
    pub(crate) fn snapshot_entry(
        &self,
        action: &str,
        image: &Image,
        key: &str,
        cfg: &AuditConfig,
    ) -> AuditEntry {
        let mut out = Map::new();
        for (name, value) in &image.values {
            match cfg.field_rule(self.table, name, self.meta) {
                FieldRule::Exclude => {}
                FieldRule::Mask => {
                    out.insert((*name).to_owned(), masked());
                }
                FieldRule::Record => {
                    out.insert((*name).to_owned(), one(key, to_json(value)));
                }
            }
        }
        self.entry(action, image, out)
    }

    /// The UPDATE entry between two images of the same row, or `None` when no recorded
    /// field changed and no-op rows are off.
    pub(crate) fn update_entry(
        &self,
        old: &Image,
        new: &Image,
        cfg: &AuditConfig,
    ) -> Option<AuditEntry> {
        let mut out = Map::new();
        for ((name, a), (_, b)) in old.values.iter().zip(new.values.iter()) {
            let rule = cfg.field_rule(self.table, name, self.meta);
            if rule == FieldRule::Exclude || same(a, b) {
                continue;
            }
            let entry = match rule {
                FieldRule::Mask => masked(),
                _ => {
                    let mut m = Map::with_capacity(2);
                    m.insert("old".into(), to_json(a));
                    m.insert("new".into(), to_json(b));
                    Json::Object(m)
                }
            };
            out.insert((*name).to_owned(), entry);
        }
        if out.is_empty() && !cfg.records_noop_updates() {
            return None;
        }
        Some(self.entry(crate::hooks::UPDATE, new, out))
    }
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

/// Value equality as the audit sees it: two values are the same when their audit JSON
/// is the same, so a value that went through a different SQL type on the way back is
/// not reported as a change.
fn same(a: &Value, b: &Value) -> bool {
    a == b || to_json(a) == to_json(b)
}

/// The primary key of `model` as stored in `audit_log.object_pk`: the bare value for a
/// single key (`42`, a UUID, a string), a JSON array for a composite key (`[1,"en"]`),
/// which cannot be confused with a single key's text because the array keeps each
/// part's type and boundaries.
pub fn primary_key_text<M: ModelTrait>(model: &M) -> String {
    key_text(
        <Entity<M> as EntityTrait>::PrimaryKey::iter()
            .map(|k| model.get(k.into_column()))
            .collect(),
    )
}

pub(crate) fn key_text(values: Vec<Value>) -> String {
    let mut parts: Vec<Json> = values.iter().map(to_json).collect();
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
/// bounded to [`MAX_REPR_CHARS`]. A repr column that the configuration masks or
/// excludes (a secret-looking name, say) falls back to `table#pk`, so the repr never
/// carries a value the diff would hide.
pub(crate) fn repr<M: AuditedModel>(model: &M, pk: &str) -> String {
    let meta = M::audit_meta();
    let hidden = meta.repr.is_some_and(|col| {
        crate::config::current().field_rule(table_name::<M>(), col, meta) != FieldRule::Record
    });
    let raw = (!hidden)
        .then(|| model.audit_repr())
        .flatten()
        .unwrap_or_else(|| format!("{}#{}", table_name::<M>(), pk));
    crate::text::bounded(&raw, MAX_REPR_CHARS)
}
