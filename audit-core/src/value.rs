//! Conversion of SeaORM column values into the JSON stored in `audit_log.changes`.
//!
//! `sea_query::sea_value_to_json_value` is not used: it renders chrono values as quoted
//! SQL literals and panics on binary data. Here values keep their JSON types: integers
//! stay numbers, booleans booleans, NULL is null, timestamps are ISO-8601 (UTC where
//! the column has a time zone), decimals are strings so no digit is lost, JSON columns
//! nest, and binary is standard base64.

use chrono::SecondsFormat;
use sea_orm::Value;
use serde_json::Value as Json;

/// Converts one column value to its audit JSON form.
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Bool(v) => v.map_or(Json::Null, Json::Bool),
        Value::TinyInt(v) => v.map_or(Json::Null, Json::from),
        Value::SmallInt(v) => v.map_or(Json::Null, Json::from),
        Value::Int(v) => v.map_or(Json::Null, Json::from),
        Value::BigInt(v) => v.map_or(Json::Null, Json::from),
        Value::TinyUnsigned(v) => v.map_or(Json::Null, Json::from),
        Value::SmallUnsigned(v) => v.map_or(Json::Null, Json::from),
        Value::Unsigned(v) => v.map_or(Json::Null, Json::from),
        Value::BigUnsigned(v) => v.map_or(Json::Null, Json::from),
        Value::Float(v) => v.map_or(Json::Null, |f| float(f64::from(f))),
        Value::Double(v) => v.map_or(Json::Null, float),
        Value::String(v) => v.as_ref().map_or(Json::Null, |s| Json::String(s.clone())),
        Value::Char(v) => v.map_or(Json::Null, |c| Json::String(c.to_string())),
        Value::Enum(e) => match e {
            sea_orm::sea_query::OptionEnum::Some(e) => Json::String(e.value.to_string()),
            sea_orm::sea_query::OptionEnum::None(_) => Json::Null,
        },
        Value::Bytes(v) => v.as_ref().map_or(Json::Null, |b| Json::String(base64(b))),
        Value::Json(v) => v.as_ref().map_or(Json::Null, |j| (**j).clone()),
        Value::ChronoDate(v) => v.map_or(Json::Null, |d| {
            Json::String(d.format("%Y-%m-%d").to_string())
        }),
        Value::ChronoTime(v) => v.map_or(Json::Null, |t| {
            Json::String(t.format("%H:%M:%S%.f").to_string())
        }),
        Value::ChronoDateTime(v) => v.map_or(Json::Null, |t| {
            Json::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
        }),
        Value::ChronoDateTimeUtc(v) => v.map_or(Json::Null, |t| {
            Json::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }),
        Value::ChronoDateTimeLocal(v) => v.map_or(Json::Null, |t| {
            Json::String(t.to_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }),
        Value::ChronoDateTimeWithTimeZone(v) => v.map_or(Json::Null, |t| {
            Json::String(t.to_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }),
        Value::Uuid(v) => v.map_or(Json::Null, |u| Json::String(u.to_string())),
        Value::Decimal(v) => v.map_or(Json::Null, |d| Json::String(d.to_string())),
        // Variants behind sea-query features this crate does not enable itself (time,
        // jiff, bigdecimal, arrays, network types, ...) appear when an application turns
        // them on. Their generic rendering is still typed JSON for most of them; binary
        // never reaches it because `Bytes` is handled above.
        #[allow(unreachable_patterns)]
        other => sea_orm::sea_query::sea_value_to_json_value(other),
    }
}

fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or_else(|| Json::String(f.to_string()), Json::Number)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648), the reversible text form of binary values.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let idx = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, &k) in idx.iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(B64[k as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes [`base64`] output; `None` for text that is not valid base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        let mut pad = 0;
        for &c in chunk {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => {
                    pad += 1;
                    0
                }
                _ => return None,
            };
            n = (n << 6) | u32::from(v);
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad.min(2)]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_keep_types() {
        assert_eq!(to_json(&Value::Int(Some(3))), json!(3));
        assert_eq!(to_json(&Value::Int(None)), Json::Null);
        assert_eq!(to_json(&Value::Bool(Some(true))), json!(true));
        assert_eq!(to_json(&Value::String(Some("é🦀".into()))), json!("é🦀"));
        assert_eq!(to_json(&Value::Double(Some(1.5))), json!(1.5));
        assert_eq!(to_json(&Value::Double(Some(f64::NAN))), json!("NaN"));
    }

    #[test]
    fn chrono_is_iso_utc() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456+02:00").unwrap();
        assert_eq!(
            to_json(&Value::ChronoDateTimeWithTimeZone(Some(t))),
            json!("2026-01-02T01:04:05.123456Z")
        );
        assert_eq!(
            to_json(&Value::ChronoDateTimeUtc(Some(t.to_utc()))),
            json!("2026-01-02T01:04:05.123456Z")
        );
    }

    #[test]
    fn decimal_keeps_precision() {
        let d: sea_orm::prelude::Decimal = "12345678901234567890.123456789".parse().unwrap();
        assert_eq!(
            to_json(&Value::Decimal(Some(d))),
            json!("12345678901234567890.123456789")
        );
    }

    #[test]
    fn base64_round_trips() {
        for len in 0..20u8 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| i.wrapping_mul(37).wrapping_add(250))
                .collect();
            assert_eq!(base64_decode(&base64(&bytes)).unwrap(), bytes);
        }
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert!(base64_decode("!!!!").is_none());
    }
}
