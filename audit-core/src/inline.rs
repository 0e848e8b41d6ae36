//! PostgreSQL: an audited write and its audit rows in one statement.
//!
//! PostgreSQL runs data-modifying statements inside `WITH`, so the auditing connection
//! can send a write and the INSERT of its audit rows together:
//!
//! ```text
//! WITH "__audit_rows" AS (DELETE FROM t WHERE ... RETURNING <columns>),
//!      "__audit_write" AS (INSERT INTO audit_log (...)
//!                          SELECT <row built from each returned row> FROM "__audit_rows")
//! SELECT <columns> FROM "__audit_rows"
//! ```
//!
//! One round trip instead of two or three, no before-image read for `exec()` (the
//! final SELECT's row count is the statement's `rows_affected`), and the rows are
//! exactly the rows written, under the statement's own locks.
//!
//! The audit JSON is built in SQL, so it must be exactly what [`crate::value::to_json`]
//! builds in Rust. That holds for the column types listed in [`Enc::of`]; an entity
//! with a recorded column of any other type (floats, decimals, arrays, ...), a
//! composite key, a many-to-many junction or a summary limit takes the Rust path.
//!
//! Those SQL expressions depend only on the entity, the write and the configuration's
//! field rules, so each entity's [`Shape`] builds them once per set of rules and every
//! later write reuses them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use sea_orm::PrimaryKeyToColumn;
use sea_orm::{ColumnTrait, ColumnType, EntityTrait, IdenStatic, Iterable};

use chrono::Utc;
use sea_orm::{DbBackend, DbErr, Statement};

use crate::config::{AuditConfig, FieldRule};
use crate::context::RequestContext;
use crate::diff::MAX_REPR_CHARS;
use crate::hooks::{CREATE, DELETE, UPDATE};
use crate::model::{AuditMeta, AuditedModel};
use crate::registry::OLD;
use crate::registry::TableAuditor;
use crate::sqlscan::Scan;
use crate::writer::{self, AuditEntry};

/// PostgreSQL's limit on a statement's bind parameters.
const PG_MAX_PARAMS: usize = 65_535;

/// Name of the CTE holding the rows the write returned.
pub(crate) const ROWS: &str = "\"__audit_rows\"";

/// How a column's value becomes audit JSON in SQL, matching `to_json` for its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enc {
    /// `to_jsonb`: booleans, integers and UUIDs already have the same JSON form on
    /// both sides.
    Plain,
    /// `to_jsonb` of text, and of enums (cast to text by SeaORM's RETURNING list).
    Text,
    /// `to_jsonb` of a `json` or `jsonb` column.
    Json,
    /// `%Y-%m-%d`.
    Date,
    /// `%H:%M:%S%.f`.
    Time,
    /// `%Y-%m-%dT%H:%M:%S%.f`.
    Naive,
    /// RFC 3339 in UTC, `Z`, fraction digits in groups of three.
    Utc,
    /// Standard base64 with padding.
    Bytes,
}

impl Enc {
    fn of(ty: &ColumnType) -> Option<Enc> {
        use ColumnType as T;
        Some(match ty {
            T::Boolean
            | T::TinyInteger
            | T::SmallInteger
            | T::Integer
            | T::BigInteger
            | T::TinyUnsigned
            | T::SmallUnsigned
            | T::Unsigned
            | T::BigUnsigned
            | T::Uuid => Enc::Plain,
            T::String(_) | T::Text | T::Enum { .. } => Enc::Text,
            T::Json | T::JsonBinary => Enc::Json,
            T::Date => Enc::Date,
            T::Time => Enc::Time,
            T::DateTime | T::Timestamp => Enc::Naive,
            T::TimestampWithTimeZone => Enc::Utc,
            T::Binary(_) | T::VarBinary(_) | T::Blob => Enc::Bytes,
            _ => return None,
        })
    }

    /// The `jsonb` of the column value `x` (NULL stays SQL NULL, which
    /// `jsonb_build_object` stores as JSON null, as `to_json` does).
    fn json(self, x: &str) -> String {
        match self {
            Enc::Plain | Enc::Text | Enc::Json => format!("to_jsonb({x})"),
            Enc::Date => format!("to_jsonb({} || to_char({x}, '-MM-DD'))", year(x)),
            Enc::Time => {
                let t = format!("(DATE '2000-01-01' + {x})");
                format!("to_jsonb(to_char({t}, 'HH24:MI:SS') || {})", fraction(&t))
            }
            Enc::Naive => format!(
                "to_jsonb({} || to_char({x}, '-MM-DD\"T\"HH24:MI:SS') || {})",
                year(x),
                fraction(x)
            ),
            Enc::Utc => {
                let u = format!("({x} AT TIME ZONE 'UTC')");
                format!(
                    "to_jsonb({} || to_char({u}, '-MM-DD\"T\"HH24:MI:SS') || {} || 'Z')",
                    year(&u),
                    fraction(&u)
                )
            }
            Enc::Bytes => format!("to_jsonb(translate(encode({x}, 'base64'), chr(10), ''))"),
        }
    }
}

/// The year of `x` as chrono writes it: four digits, with a sign past 9999 and before
/// year 0, counting 1 BC as year 0 (PostgreSQL calls it -1 and has no year 0).
fn year(x: &str) -> String {
    let y = format!("extract(year FROM {x})::bigint");
    format!(
        "CASE WHEN {y} > 9999 THEN '+' || {y}::text \
         WHEN {y} = -1 THEN '0000' \
         WHEN {y} < -1 THEN '-' || lpad((-{y} - 1)::text, 4, '0') \
         ELSE to_char({x}, 'YYYY') END"
    )
}

/// chrono's fraction of a second: nothing, or 3 or 6 digits, whichever shows every
/// non-zero digit (PostgreSQL keeps microseconds).
fn fraction(x: &str) -> String {
    let us = format!("(extract(microseconds FROM {x})::bigint % 1000000)");
    format!(
        "CASE WHEN {us} = 0 THEN '' WHEN {us} % 1000 = 0 THEN to_char({x}, '.MS') ELSE to_char({x}, '.US') END"
    )
}

/// What the one-statement path needs to know of an entity, worked out once per type.
pub(crate) struct Shape {
    table: &'static str,
    meta: &'static AuditMeta,
    /// Every column in entity order, with its encoding where it has one.
    columns: Vec<(&'static str, Option<Enc>)>,
    /// The columns whose `::text` is what Rust's `Display` prints (text, integers,
    /// UUIDs), which a `repr` column must be.
    displayable: Vec<&'static str>,
    /// The single key column and whether its text form needs `::text`; `None` for a
    /// composite key or a key of another type.
    key: Option<(&'static str, bool)>,
    /// Whether the entity is a many-to-many junction (its writes add LINK rows).
    junction: bool,
    /// [`RowExprs`] already built, by the write and the field rules that shaped them:
    /// the SQL is the same for every write under the same rules, and building it is
    /// most of the Rust time of a one-statement write.
    built: Mutex<Vec<(BuiltKey, Option<Arc<RowExprs>>)>>,
}

/// What a [`RowExprs`] depends on besides the entity: the write, whether updates that
/// change nothing are recorded, and each column's rule (the `repr` column's last).
#[derive(PartialEq, Eq)]
struct BuiltKey {
    write: Write,
    noop_updates: bool,
    rules: Vec<FieldRule>,
}

/// How many rule sets one entity keeps built; more only comes from many distinct
/// scoped configurations, and the oldest is then built again when asked for.
const BUILT_PER_SHAPE: usize = 16;

/// The [`Shape`] of `E`, cached per entity type.
pub(crate) fn shape<E>() -> Arc<Shape>
where
    E: EntityTrait,
    E::Model: AuditedModel,
{
    type Cache = HashMap<&'static str, Arc<Shape>>;
    static CACHE: LazyLock<RwLock<Cache>> = LazyLock::new(RwLock::default);
    let name = std::any::type_name::<E>();
    if let Some(s) = CACHE.read().ok().and_then(|c| c.get(name).cloned()) {
        return s;
    }
    // Whether a column's text is its `Display`, and whether that needs `::text`.
    let text_of = |c: &E::Column| match c.def().get_column_type() {
        ColumnType::String(_) | ColumnType::Text => Some(false),
        ColumnType::TinyInteger
        | ColumnType::SmallInteger
        | ColumnType::Integer
        | ColumnType::BigInteger
        | ColumnType::TinyUnsigned
        | ColumnType::SmallUnsigned
        | ColumnType::Unsigned
        | ColumnType::BigUnsigned
        | ColumnType::Uuid => Some(true),
        _ => None,
    };
    let mut keys = E::PrimaryKey::iter().map(|k| k.into_column());
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) => text_of(&k).map(|cast| (k.as_str(), cast)),
        _ => None,
    };
    let s = Arc::new(Shape {
        table: E::default().table_name(),
        meta: E::Model::audit_meta(),
        columns: E::Column::iter()
            .map(|c| (c.as_str(), Enc::of(c.def().get_column_type())))
            .collect(),
        displayable: E::Column::iter()
            .filter(|c| text_of(c).is_some())
            .map(|c| c.as_str())
            .collect(),
        key,
        junction: crate::diff::TableInfo::of::<E::Model>().is_junction(),
        built: Mutex::default(),
    });
    if let Ok(mut c) = CACHE.write() {
        c.insert(name, Arc::clone(&s));
    }
    s
}

/// Which write a one-statement form is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    Insert,
    Update,
    Delete,
}

/// The SQL expressions, over a row of [`ROWS`], of the three audit columns
/// that depend on the row: `object_pk`, `object_repr` and `changes`; and the filter
/// that drops an update that changed no recorded field. `None` when this entity's
/// audit cannot be written in SQL under `cfg`.
pub(crate) struct RowExprs {
    pub(crate) object_pk: String,
    pub(crate) object_repr: String,
    pub(crate) changes: String,
    pub(crate) only_changed: bool,
}

impl Shape {
    /// The row expressions for `write` under `cfg`, built once per set of field rules.
    pub(crate) fn row_exprs(&self, write: Write, cfg: &AuditConfig) -> Option<Arc<RowExprs>> {
        let rule = |c: &str| cfg.field_rule(self.table, c, self.meta);
        let key = BuiltKey {
            write,
            noop_updates: cfg.records_noop_updates(),
            rules: self
                .columns
                .iter()
                .map(|&(name, _)| rule(name))
                .chain(self.meta.repr.map(rule))
                .collect(),
        };
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, exprs)) = built.iter().find(|(k, _)| *k == key) {
            return exprs.clone();
        }
        let exprs = self.build_row_exprs(write, cfg).map(Arc::new);
        if built.len() == BUILT_PER_SHAPE {
            built.remove(0);
        }
        built.push((key, exprs.clone()));
        exprs
    }

    fn build_row_exprs(&self, write: Write, cfg: &AuditConfig) -> Option<RowExprs> {
        if self.junction {
            return None;
        }
        let (key, cast) = self.key?;
        // `object_pk` and `object_repr` read the outer row `s`; `changes` is worked out
        // in the inner SELECT over `r` (see `writer::insert_select`).
        let col = |name: &str, prefix: &str| format!("s.{}", quote(&format!("{prefix}{name}")));
        let inner = |name: &str, prefix: &str| format!("r.{}", quote(&format!("{prefix}{name}")));
        let object_pk = if cast {
            format!("{}::text", col(key, ""))
        } else {
            col(key, "")
        };
        let repr_col = self
            .meta
            .repr
            .filter(|c| cfg.field_rule(self.table, c, self.meta) == FieldRule::Record);
        let repr = match repr_col {
            Some(c) if self.displayable.contains(&c) => format!("{}::text", col(c, "")),
            Some(_) => return None,
            None => format!("{} || {object_pk}", literal(&format!("{}#", self.table))),
        };
        let object_repr = format!(
            "CASE WHEN char_length({repr}) > {MAX_REPR_CHARS} THEN left({repr}, {}) || '…' ELSE {repr} END",
            MAX_REPR_CHARS - 1
        );
        let mut parts: Vec<String> = Vec::new();
        for &(name, enc) in &self.columns {
            let rule = cfg.field_rule(self.table, name, self.meta);
            if rule == FieldRule::Exclude {
                continue;
            }
            let enc = enc?;
            let masked = rule == FieldRule::Mask;
            let field = literal(name);
            let part = match write {
                Write::Insert | Write::Delete => {
                    let side = if write == Write::Insert { "new" } else { "old" };
                    let value = if masked {
                        MASKED.to_owned()
                    } else {
                        format!(
                            "jsonb_build_object('{side}', {})",
                            enc.json(&inner(name, ""))
                        )
                    };
                    format!("jsonb_build_object({field}, {value})")
                }
                Write::Update => {
                    let (o, n) = (inner(name, OLD), inner(name, ""));
                    let (old, new) = (enc.json(&o), enc.json(&n));
                    // Rust compares the values' audit JSON. For most types two values
                    // are equal exactly when their audit JSON is, so the values are
                    // compared; text byte for byte (a column's collation may call
                    // different strings equal), JSON as JSON text (jsonb's equality
                    // calls 1.0 and 1 equal, serde does not).
                    let changed = match enc {
                        Enc::Json => format!("({old})::text IS DISTINCT FROM ({new})::text"),
                        Enc::Text => format!(
                            "({o})::text COLLATE \"C\" IS DISTINCT FROM ({n})::text COLLATE \"C\""
                        ),
                        _ => format!("{o} IS DISTINCT FROM {n}"),
                    };
                    let value = if masked {
                        MASKED.to_owned()
                    } else {
                        format!("jsonb_build_object('old', {old}, 'new', {new})")
                    };
                    format!(
                        "CASE WHEN {changed} THEN jsonb_build_object({field}, {value}) ELSE '{{}}'::jsonb END"
                    )
                }
            };
            parts.push(part);
        }
        let changes = if parts.is_empty() {
            "'{}'::jsonb".to_owned()
        } else {
            parts.join(" || ")
        };
        Some(RowExprs {
            object_pk,
            object_repr,
            changes,
            only_changed: write == Write::Update && !cfg.records_noop_updates(),
        })
    }
}

const MASKED: &str = "'{\"masked\": true}'::jsonb";

/// A double-quoted identifier (PostgreSQL, SQLite).
pub(crate) fn quote(name: &str) -> String {
    quote_in(DbBackend::Postgres, name)
}

/// An identifier quoted for `backend`: backticks on MySQL, double quotes elsewhere,
/// with the quote character doubled inside.
pub(crate) fn quote_in(backend: DbBackend, name: &str) -> String {
    let q = if backend == DbBackend::MySql {
        '`'
    } else {
        '"'
    };
    let doubled: String = [q, q].iter().collect();
    format!("{q}{}{q}", name.replace(q, &doubled))
}

/// A single-quoted string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `stmt` (a `write` of `auditor`'s table) and the INSERT of its audit rows as one
/// statement, or `None` when this table's audit rows cannot be built in SQL under
/// `cfg`. With `query`, the statement answers with the written rows' columns, as
/// SeaORM reads them; otherwise with one row per written row, whose count is the
/// `rows_affected` of an `execute`.
pub(crate) fn statement(
    auditor: &dyn TableAuditor,
    stmt: &Statement,
    scan: &Scan,
    write: Write,
    query: bool,
    cfg: &AuditConfig,
) -> Option<Statement> {
    let shape = auditor.shape();
    let exprs = check(&shape, stmt, write, cfg)?;
    let (head, list) = auditor.one_statement(&stmt.sql, scan, write, query);
    Some(assemble(&shape, stmt, &exprs, &head, &list, write))
}

/// PostgreSQL, inside a transaction: `select` (SeaORM's `SELECT ... FOR UPDATE` of the
/// rows of `E` a DELETE is about to remove) and the INSERT of their DELETE rows as one
/// statement that answers with the rows. The transaction makes the pair atomic: if
/// the DELETE then fails, PostgreSQL aborts the transaction and the rows go with it.
pub(crate) fn locked_delete_rows<E>(select: &Statement, cfg: &AuditConfig) -> Option<Statement>
where
    E: EntityTrait,
    E::Model: AuditedModel,
{
    let shape = shape::<E>();
    let exprs = check(&shape, select, Write::Delete, cfg)?;
    let head = format!("WITH {ROWS} AS ({})", select.sql);
    Some(assemble(
        &shape,
        select,
        &exprs,
        &head,
        &final_list::<E>(true),
        Write::Delete,
    ))
}

/// The row expressions for `write` of `shape`'s table under `cfg`, if SQL can build
/// them and the audit row's parameters fit after `stmt`'s under PostgreSQL's limit.
fn check(
    shape: &Shape,
    stmt: &Statement,
    write: Write,
    cfg: &AuditConfig,
) -> Option<Arc<RowExprs>> {
    let params = stmt.values.as_ref().map_or(0, |v| v.0.len());
    if stmt.db_backend != DbBackend::Postgres || params + writer::BOUND_PER_ROW > PG_MAX_PARAMS {
        return None;
    }
    shape.row_exprs(write, cfg)
}

/// `<head>, "__audit_write" AS (INSERT INTO audit_log ...) SELECT <list> FROM rows`,
/// with `stmt`'s parameters followed by the audit row's.
fn assemble(
    shape: &Shape,
    stmt: &Statement,
    exprs: &RowExprs,
    head: &str,
    list: &str,
    write: Write,
) -> Statement {
    let action = match write {
        Write::Insert => CREATE,
        Write::Update => UPDATE,
        Write::Delete => DELETE,
    };
    let entry = AuditEntry {
        action: action.to_owned(),
        table_name: Some(shape.table.to_owned()),
        module: Some(shape.meta.module.to_owned()),
        ..AuditEntry::default()
    };
    let ctx = RequestContext::current();
    let row = writer::Stamped {
        entry: &entry,
        ctx: ctx.as_deref(),
        at: Utc::now(),
    };
    let mut values = stmt.values.as_ref().map_or_else(Vec::new, |v| v.0.clone());
    let (insert, audit_values) = writer::insert_select(&row, exprs, ROWS, values.len());
    values.extend(audit_values);
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("{head}, \"__audit_write\" AS ({insert}) SELECT {list} FROM {ROWS}"),
        values,
    )
}

/// The error of a one-statement write: "`audit_log` does not exist" becomes the typed
/// missing-table error, any other error (the write's own included) stays as it is.
pub(crate) fn map_err(err: DbErr) -> DbErr {
    match writer::classify(err) {
        crate::AuditError::Db(err) => err,
        missing => missing.into(),
    }
}

/// The final SELECT's column list: the entity's columns by name for a query, or a
/// constant for an `exec()`, which only needs the row count.
pub(crate) fn final_list<E: EntityTrait>(query: bool) -> String {
    if !query {
        return "1".to_owned();
    }
    let mut out = String::new();
    for (i, c) in E::Column::iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(out, "{sep}{}", quote(c.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_per_backend() {
        assert_eq!(quote(r#"a"b"#), r#""a""b""#);
        assert_eq!(quote_in(DbBackend::Sqlite, "t"), r#""t""#);
        assert_eq!(quote_in(DbBackend::MySql, "a`b"), "`a``b`");
    }

    #[test]
    fn literals_and_identifiers_are_escaped() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn row_exprs_are_built_once_per_rule_set() {
        use crate::doc_fixtures::post;
        let shape = shape::<post::Entity>();
        let built = |write, cfg: &AuditConfig| {
            let exprs = shape
                .row_exprs(write, cfg)
                .expect("post has a one-statement form");
            let fresh = shape.build_row_exprs(write, cfg).expect("the same");
            assert_eq!(
                (
                    &exprs.object_pk,
                    &exprs.object_repr,
                    &exprs.changes,
                    exprs.only_changed
                ),
                (
                    &fresh.object_pk,
                    &fresh.object_repr,
                    &fresh.changes,
                    fresh.only_changed
                ),
            );
            exprs
        };
        // A second configuration with the same rules shares the first one's SQL.
        let plain = built(Write::Update, &AuditConfig::new());
        assert!(Arc::ptr_eq(
            &plain,
            &built(Write::Update, &AuditConfig::new())
        ));
        // Other rules, another write or the no-op setting build their own.
        let masked = built(Write::Update, &AuditConfig::new().mask_field("post.title"));
        assert!(masked.changes.contains("masked") && !plain.changes.contains("masked"));
        assert!(masked.object_repr.contains("'post#'"));
        assert!(plain.only_changed);
        assert!(!built(Write::Update, &AuditConfig::new().record_noop_updates(true)).only_changed);
        let insert = built(Write::Insert, &AuditConfig::new());
        assert!(insert.changes.contains("'new'") && !insert.changes.contains("'old'"));
        // More rule sets than are kept: every one is still right when asked again.
        let configs: Vec<AuditConfig> = ["", "id", "title", "post.id", "post.title"]
            .iter()
            .flat_map(|f| {
                let base = AuditConfig::new();
                let (masked, excluded) = if f.is_empty() {
                    (base.clone(), base)
                } else {
                    (base.clone().mask_field(*f), base.exclude_field(*f))
                };
                [
                    masked.clone(),
                    excluded.clone(),
                    masked.record_noop_updates(true),
                    excluded.record_noop_updates(true),
                ]
            })
            .collect();
        for _ in 0..2 {
            for cfg in &configs {
                for write in [Write::Insert, Write::Update, Write::Delete] {
                    built(write, cfg);
                }
            }
        }
        assert!(shape.built.lock().map(|b| b.len()).unwrap_or(0) <= BUILT_PER_SHAPE);
    }

    #[test]
    fn unsupported_types_have_no_encoding() {
        assert_eq!(Enc::of(&ColumnType::Double), None);
        assert_eq!(Enc::of(&ColumnType::Decimal(None)), None);
        assert_eq!(Enc::of(&ColumnType::Integer), Some(Enc::Plain));
        assert_eq!(Enc::of(&ColumnType::Text), Some(Enc::Text));
        assert_eq!(Enc::of(&ColumnType::TimestampWithTimeZone), Some(Enc::Utc));
    }
}
