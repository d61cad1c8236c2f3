//! The SQL source of disputes: the operator's query, its first column the cursor bound to `$1`
//! with that column's own type (an integer as an integer, text as text, a timestamp as a
//! timestamp), so the comparison in the query is the one the operator wrote.
//!
//! The query runs wrapped as `SELECT row_to_json(q)::text FROM (<query>) q`, so every column
//! type (numeric, uuid, json, arrays, ...) arrives as JSON without a decoder per type; the
//! cursor is read back from that JSON with the column's type. Knows nothing of the store.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{Map, Value};
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgConnection, PgTypeInfo, Postgres};
use sqlx::{Column as _, Executor as _, Row as _, Statement as _, TypeInfo as _};

use super::app_db::{AppDbError, query_error};

/// Microseconds from the unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from the unix epoch to PostgreSQL's.
const PG_EPOCH_DAYS: i32 = 10_957;

/// Where the SQL source continues from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Nothing seen yet: the smallest value of the column's type.
    Start,
    Int(i64),
    Text(String),
    /// `timestamptz`, microseconds since the unix epoch.
    TimestampTz(i64),
    /// `timestamp` (without time zone), microseconds since the unix epoch.
    Timestamp(i64),
    /// `date`, days since the unix epoch.
    Date(i32),
}

impl Cursor {
    /// The form kept in the store's `cursors` table.
    pub fn encode(&self) -> String {
        match self {
            Self::Start => "start".to_owned(),
            Self::Int(v) => format!("int:{v}"),
            Self::Text(v) => format!("text:{v}"),
            Self::TimestampTz(v) => format!("timestamptz:{v}"),
            Self::Timestamp(v) => format!("timestamp:{v}"),
            Self::Date(v) => format!("date:{v}"),
        }
    }

    pub fn decode(s: &str) -> Option<Self> {
        if s == "start" {
            return Some(Self::Start);
        }
        let (kind, v) = s.split_once(':')?;
        Some(match kind {
            "int" => Self::Int(v.parse().ok()?),
            "text" => Self::Text(v.to_owned()),
            "timestamptz" => Self::TimestampTz(v.parse().ok()?),
            "timestamp" => Self::Timestamp(v.parse().ok()?),
            "date" => Self::Date(v.parse().ok()?),
            _ => return None,
        })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let micros = |v: i64| {
            DateTime::from_timestamp_micros(v).map_or_else(|| v.to_string(), |t| t.to_rfc3339())
        };
        match self {
            Self::Start => f.write_str("the start"),
            Self::Int(v) => write!(f, "{v}"),
            Self::Text(v) => write!(f, "{v:?}"),
            Self::TimestampTz(v) | Self::Timestamp(v) => f.write_str(&micros(*v)),
            Self::Date(v) => write!(f, "day {v}"),
        }
    }
}

/// The cursor column's type family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int2,
    Int4,
    Int8,
    Text,
    TimestampTz,
    Timestamp,
    Date,
}

impl Kind {
    fn of(type_name: &str) -> Option<Self> {
        Some(match type_name {
            "INT2" => Self::Int2,
            "INT4" => Self::Int4,
            "INT8" => Self::Int8,
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CITEXT" => Self::Text,
            "TIMESTAMPTZ" => Self::TimestampTz,
            "TIMESTAMP" => Self::Timestamp,
            "DATE" => Self::Date,
            _ => return None,
        })
    }

    fn start(self) -> Cursor {
        match self {
            Self::Int2 | Self::Int4 | Self::Int8 => Cursor::Int(i64::MIN),
            Self::Text => Cursor::Text(String::new()),
            // Earlier than any real dispute; well inside both PostgreSQL's and chrono's range.
            Self::TimestampTz => Cursor::TimestampTz(-62_135_596_800_000_000),
            Self::Timestamp => Cursor::Timestamp(-62_135_596_800_000_000),
            Self::Date => Cursor::Date(-719_162),
        }
    }

    fn accepts(self, c: &Cursor) -> bool {
        matches!(
            (self, c),
            (Self::Int2 | Self::Int4 | Self::Int8, Cursor::Int(_))
                | (Self::Text, Cursor::Text(_))
                | (Self::TimestampTz, Cursor::TimestampTz(_))
                | (Self::Timestamp, Cursor::Timestamp(_))
                | (Self::Date, Cursor::Date(_))
        )
    }

    /// The cursor value of one row, from `row_to_json`'s rendering of the column.
    fn read(self, v: &Value) -> Option<Cursor> {
        match self {
            Self::Int2 | Self::Int4 | Self::Int8 => v.as_i64().map(Cursor::Int),
            Self::Text => v.as_str().map(|s| Cursor::Text(s.to_owned())),
            Self::TimestampTz => DateTime::parse_from_rfc3339(v.as_str()?)
                .ok()
                .map(|t| Cursor::TimestampTz(t.timestamp_micros())),
            Self::Timestamp => NaiveDateTime::parse_from_str(v.as_str()?, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| Cursor::Timestamp(t.and_utc().timestamp_micros())),
            Self::Date => NaiveDate::parse_from_str(v.as_str()?, "%Y-%m-%d")
                .ok()
                .and_then(|d| {
                    i32::try_from(d.signed_duration_since(NaiveDate::default()).num_days()).ok()
                })
                .map(Cursor::Date),
        }
    }
}

/// A `timestamptz` / `timestamp` / `date` parameter in PostgreSQL's binary form, so the cursor
/// binds with the column's own type (sqlx's chrono support is not compiled in).
struct PgTime {
    oid: u32,
    value: i64,
}

impl sqlx::Type<Postgres> for PgTime {
    fn type_info() -> PgTypeInfo {
        // Never used for binding: `produces` names the real type per value.
        PgTypeInfo::with_oid(Oid(1184))
    }
}

impl sqlx::Encode<'_, Postgres> for PgTime {
    fn produces(&self) -> Option<PgTypeInfo> {
        Some(PgTypeInfo::with_oid(Oid(self.oid)))
    }

    fn encode_by_ref(
        &self,
        buf: &mut PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        if self.oid == 1082 {
            let days = i32::try_from(self.value)?;
            <i32 as sqlx::Encode<Postgres>>::encode_by_ref(&days, buf)
        } else {
            <i64 as sqlx::Encode<Postgres>>::encode_by_ref(&self.value, buf)
        }
    }
}

/// One dispute the query returned.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundDispute {
    /// The `id` column, or else the first column, as text.
    pub id: String,
    /// Every column in the query's order.
    pub fields: Vec<(String, Value)>,
}

/// What one run of the query returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub disputes: Vec<FoundDispute>,
    /// The cursor after these rows (unchanged when there were none).
    pub next: Cursor,
}

/// The configured query, ready to run.
#[derive(Debug, Clone)]
pub struct SqlSource {
    query: String,
}

impl SqlSource {
    pub fn new(query: &str) -> Self {
        Self {
            query: query.trim().trim_end_matches(';').trim_end().to_owned(),
        }
    }

    /// Runs the query once with `$1` = `after`; rows whose cursor column is NULL are skipped
    /// (they could never be found again).
    pub async fn fetch(&self, conn: &mut PgConnection, after: &Cursor) -> Result<Page, AppDbError> {
        let statement = conn
            .prepare(&self.query)
            .await
            .map_err(|e| query_error(&e))?;
        let columns: Vec<(String, String)> = statement
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
            .collect();
        let Some((first, first_type)) = columns.first().cloned() else {
            return Err(AppDbError::Query(
                "the disputes query returns no columns".to_owned(),
            ));
        };
        let kind = Kind::of(&first_type).ok_or_else(|| {
            AppDbError::Query(format!(
                "the first column of the disputes query ({first}) is {first_type}; the cursor \
                 must be an integer, text, timestamp or date column"
            ))
        })?;
        let after = match after {
            Cursor::Start => kind.start(),
            c if kind.accepts(c) => c.clone(),
            c => {
                return Err(AppDbError::Query(format!(
                    "the first column of the disputes query ({first}) is {first_type} but the \
                     saved cursor is {c}: the query changed its cursor column"
                )));
            }
        };
        let wrapped = format!("SELECT row_to_json(q)::text FROM ({}) AS q", self.query);
        let query = sqlx::query(&wrapped);
        let query = match (&after, kind) {
            (Cursor::Int(v), Kind::Int2) => query.bind(i16::try_from(*v).unwrap_or(i16::MIN)),
            (Cursor::Int(v), Kind::Int4) => query.bind(i32::try_from(*v).unwrap_or(i32::MIN)),
            (Cursor::Int(v), _) => query.bind(*v),
            (Cursor::Text(v), _) => query.bind(v.clone()),
            (Cursor::TimestampTz(v), _) => query.bind(PgTime {
                oid: 1184,
                value: v - PG_EPOCH_MICROS,
            }),
            (Cursor::Timestamp(v), _) => query.bind(PgTime {
                oid: 1114,
                value: v - PG_EPOCH_MICROS,
            }),
            (Cursor::Date(v), _) => query.bind(PgTime {
                oid: 1082,
                value: i64::from(*v - PG_EPOCH_DAYS),
            }),
            (Cursor::Start, _) => unreachable!("replaced by the type's start above"),
        };
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| query_error(&e))?;
        let mut page = Page {
            disputes: Vec::with_capacity(rows.len()),
            next: after,
        };
        for row in rows {
            let text: String = row.try_get(0).map_err(|e| query_error(&e))?;
            let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let Some(cursor) = map.get(&first).and_then(|v| kind.read(v)) else {
                tracing::warn!(column = %first, "a dispute row has no usable cursor value; skipped");
                continue;
            };
            page.next = later(&page.next, cursor);
            page.disputes.push(FoundDispute {
                id: dispute_id(&map, &first),
                fields: columns
                    .iter()
                    .map(|(name, _)| (name.clone(), map.get(name).cloned().unwrap_or(Value::Null)))
                    .collect(),
            });
        }
        Ok(page)
    }
}

/// The later of two cursors. Text is compared by the database's collation, which may differ
/// from byte order, so for text the last row's value wins (the query orders by it).
fn later(a: &Cursor, b: Cursor) -> Cursor {
    match (a, &b) {
        (Cursor::Int(x), Cursor::Int(y))
        | (Cursor::TimestampTz(x), Cursor::TimestampTz(y))
        | (Cursor::Timestamp(x), Cursor::Timestamp(y))
            if x > y =>
        {
            a.clone()
        }
        (Cursor::Date(x), Cursor::Date(y)) if x > y => a.clone(),
        _ => b,
    }
}

fn dispute_id(map: &Map<String, Value>, first: &str) -> String {
    let v = map
        .get("id")
        .filter(|v| !v.is_null())
        .or_else(|| map.get(first))
        .cloned()
        .unwrap_or(Value::Null);
    id_text(&v).unwrap_or_default()
}

/// A dispute id as text: a string as is, an integer in decimal. Anything else is no id.
pub fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cursors_survive_the_store() {
        for c in [
            Cursor::Start,
            Cursor::Int(-5),
            Cursor::Text("a:b".into()),
            Cursor::TimestampTz(1_795_442_730_123_456),
            Cursor::Timestamp(1),
            Cursor::Date(20_000),
        ] {
            assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
        assert_eq!(Cursor::decode("nonsense"), None);
    }

    #[test]
    fn cursor_values_read_back_with_the_column_type() {
        assert_eq!(Kind::Int4.read(&json!(42)), Some(Cursor::Int(42)));
        assert_eq!(
            Kind::TimestampTz.read(&json!("2026-11-23T15:12:00.275322+00:00")),
            Some(Cursor::TimestampTz(1_795_446_720_275_322))
        );
        assert_eq!(
            Kind::Timestamp.read(&json!("2026-11-23T15:12:00.275322")),
            Some(Cursor::Timestamp(1_795_446_720_275_322))
        );
        assert_eq!(Kind::Date.read(&json!("1970-01-02")), Some(Cursor::Date(1)));
        assert_eq!(Kind::Int8.read(&json!("x")), None);
    }

    #[test]
    fn ids_are_strings_or_integers() {
        assert_eq!(id_text(&json!(7)), Some("7".into()));
        assert_eq!(id_text(&json!("D-7")), Some("D-7".into()));
        for bad in [json!(null), json!(1.5), json!(true), json!(""), json!({})] {
            assert_eq!(id_text(&bad), None, "{bad}");
        }
    }

    #[test]
    fn the_later_cursor_wins() {
        assert_eq!(later(&Cursor::Int(9), Cursor::Int(3)), Cursor::Int(9));
        assert_eq!(later(&Cursor::Int(3), Cursor::Int(9)), Cursor::Int(9));
        assert_eq!(
            later(&Cursor::Text("b".into()), Cursor::Text("a".into())),
            Cursor::Text("a".into())
        );
    }
}
