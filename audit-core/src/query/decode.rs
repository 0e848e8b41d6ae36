//! The reverse of `value.rs`: audit JSON back into a `sea_orm::Value` of the type a
//! column's Rust field accepts.
//!
//! The JSON alone does not say which Rust type a field has (a number may be an `i32`
//! or an `i64`, a string a `DateTimeUtc` or a `String`), so the column's declared
//! type proposes candidates, most likely first, and the caller keeps the first one the
//! model accepts. A value that fits no candidate is reported as missing, never guessed.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use sea_orm::prelude::{Decimal, Uuid};
use sea_orm::{ColumnType, Value};
use serde_json::Value as Json;

use crate::value::base64_decode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    Str,
    Char,
    Bytes,
    Json,
    Date,
    Time,
    Naive,
    Utc,
    Fixed,
    Local,
    Uuid,
    Decimal,
}

use Kind::*;

const INTS: &[Kind] = &[I64, I32, I16, I8, U64, U32, U16, U8];

fn kinds(ct: &ColumnType) -> Vec<Kind> {
    let first: &[Kind] = match ct {
        ColumnType::Char(_) => &[Str, Char],
        ColumnType::String(_) | ColumnType::Text => &[Str],
        ColumnType::TinyInteger => &[I8],
        ColumnType::SmallInteger => &[I16],
        ColumnType::Integer => &[I32],
        ColumnType::BigInteger => &[I64],
        ColumnType::TinyUnsigned => &[U8],
        ColumnType::SmallUnsigned => &[U16],
        ColumnType::Unsigned => &[U32],
        ColumnType::BigUnsigned => &[U64],
        ColumnType::Float => &[F32, F64],
        ColumnType::Double => &[F64, F32],
        ColumnType::Decimal(_) | ColumnType::Money(_) => &[Decimal],
        ColumnType::DateTime | ColumnType::Timestamp => &[Naive, Utc],
        ColumnType::TimestampWithTimeZone => &[Utc, Fixed, Local],
        ColumnType::Time => &[Time],
        ColumnType::Date => &[Date],
        ColumnType::Year => &[I32, I16],
        ColumnType::Binary(_)
        | ColumnType::VarBinary(_)
        | ColumnType::Blob
        | ColumnType::Bit(_)
        | ColumnType::VarBit(_) => &[Bytes],
        ColumnType::Boolean => &[Bool],
        ColumnType::Json | ColumnType::JsonBinary => &[Json],
        ColumnType::Uuid => &[Uuid, Str],
        _ => &[Str, Json],
    };
    let mut out = first.to_vec();
    if first.iter().any(|k| INTS.contains(k)) {
        out.extend(INTS.iter().filter(|k| !first.contains(k)));
    }
    out
}

fn int<T: TryFrom<i64> + TryFrom<u64>>(j: &Json) -> Option<T> {
    match j {
        Json::Number(n) => n
            .as_i64()
            .and_then(|v| T::try_from(v).ok())
            .or_else(|| n.as_u64().and_then(|v| T::try_from(v).ok())),
        _ => None,
    }
}

fn float(j: &Json) -> Option<f64> {
    match j {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => f64::from_str(s).ok(),
        _ => None,
    }
}

fn make(kind: Kind, j: &Json) -> Option<Value> {
    let null = j.is_null();
    let s = j.as_str();
    Some(match kind {
        Bool => Value::Bool(if null { None } else { Some(j.as_bool()?) }),
        I8 => Value::TinyInt(if null { None } else { Some(int(j)?) }),
        I16 => Value::SmallInt(if null { None } else { Some(int(j)?) }),
        I32 => Value::Int(if null { None } else { Some(int(j)?) }),
        I64 => Value::BigInt(if null { None } else { Some(int(j)?) }),
        U8 => Value::TinyUnsigned(if null { None } else { Some(int(j)?) }),
        U16 => Value::SmallUnsigned(if null { None } else { Some(int(j)?) }),
        U32 => Value::Unsigned(if null { None } else { Some(int(j)?) }),
        U64 => Value::BigUnsigned(if null { None } else { Some(int(j)?) }),
        F32 => Value::Float(if null { None } else { Some(float(j)? as f32) }),
        F64 => Value::Double(if null { None } else { Some(float(j)?) }),
        Str => Value::String(if null { None } else { Some(s?.to_owned()) }),
        Char => Value::Char(if null {
            None
        } else {
            let mut chars = s?.chars();
            let c = chars.next()?;
            if chars.next().is_some() {
                return None;
            }
            Some(c)
        }),
        Bytes => Value::Bytes(if null { None } else { Some(base64_decode(s?)?) }),
        Json => Value::Json(if null {
            None
        } else {
            Some(Box::new(j.clone()))
        }),
        Date => Value::ChronoDate(if null {
            None
        } else {
            Some(NaiveDate::parse_from_str(s?, "%Y-%m-%d").ok()?)
        }),
        Time => Value::ChronoTime(if null {
            None
        } else {
            Some(NaiveTime::parse_from_str(s?, "%H:%M:%S%.f").ok()?)
        }),
        Naive => Value::ChronoDateTime(if null {
            None
        } else {
            Some(NaiveDateTime::parse_from_str(s?, "%Y-%m-%dT%H:%M:%S%.f").ok()?)
        }),
        Utc => Value::ChronoDateTimeUtc(if null {
            None
        } else {
            Some(DateTime::parse_from_rfc3339(s?).ok()?.to_utc())
        }),
        Fixed => Value::ChronoDateTimeWithTimeZone(if null {
            None
        } else {
            Some(DateTime::parse_from_rfc3339(s?).ok()?)
        }),
        Local => Value::ChronoDateTimeLocal(if null {
            None
        } else {
            Some(
                DateTime::parse_from_rfc3339(s?)
                    .ok()?
                    .with_timezone(&chrono::Local),
            )
        }),
        Uuid => Value::Uuid(if null {
            None
        } else {
            Some(Uuid::parse_str(s?).ok()?)
        }),
        Decimal => Value::Decimal(if null {
            None
        } else {
            let text = match j {
                Json::Number(n) => n.to_string(),
                _ => s?.to_owned(),
            };
            Some(Decimal::from_str(&text).ok()?)
        }),
    })
}

/// The values `j` could be for a column of type `ct`, most likely first.
pub(crate) fn candidates(ct: &ColumnType, j: &Json) -> Vec<Value> {
    let mut out = kinds(ct)
        .into_iter()
        .filter_map(|k| make(k, j))
        .collect::<Vec<_>>();
    // A JSON column holding JSON `null` (not SQL NULL) is `Some(null)`.
    if j.is_null() && matches!(ct, ColumnType::Json | ColumnType::JsonBinary) {
        out.push(Value::Json(Some(Box::new(Json::Null))));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::value::to_json;
    use serde_json::json;

    fn round_trip(ct: ColumnType, v: Value) {
        let j = to_json(&v);
        let c = candidates(&ct, &j);
        assert_eq!(c.first(), Some(&v), "{ct:?} {j}");
    }

    #[test]
    fn every_audit_json_form_comes_back() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z").unwrap();
        round_trip(ColumnType::BigInteger, Value::BigInt(Some(-7)));
        round_trip(ColumnType::Integer, Value::Int(None));
        round_trip(ColumnType::Boolean, Value::Bool(Some(true)));
        round_trip(ColumnType::Text, Value::String(Some("é🦀".into())));
        round_trip(ColumnType::Double, Value::Double(Some(1.25)));
        round_trip(
            ColumnType::TimestampWithTimeZone,
            Value::ChronoDateTimeUtc(Some(t.to_utc())),
        );
        round_trip(
            ColumnType::Date,
            Value::ChronoDate(NaiveDate::from_ymd_opt(2026, 2, 3)),
        );
        round_trip(
            ColumnType::Decimal(Some((30, 10))),
            Value::Decimal(Some("12345678901234567890.123456789".parse().unwrap())),
        );
        round_trip(ColumnType::Uuid, Value::Uuid(Some(Uuid::nil())));
        round_trip(
            ColumnType::JsonBinary,
            Value::Json(Some(Box::new(json!({"a": [1, 2]})))),
        );
        round_trip(
            ColumnType::VarBinary(sea_orm::sea_query::StringLen::N(8)),
            Value::Bytes(Some(vec![0, 255, 7])),
        );
    }

    #[test]
    fn garbage_gives_no_candidate() {
        assert!(candidates(&ColumnType::Date, &json!("not a date")).is_empty());
        assert!(candidates(&ColumnType::Integer, &json!("12")).is_empty());
        assert!(candidates(&ColumnType::Boolean, &json!(1)).is_empty());
    }
}
