//! Writes a resolved CQL2 condition as SQL for each store.
//!
//! Every literal and every property name is a bound parameter, so filter text
//! never reaches the SQL text: the SQL is assembled only from fixed fragments,
//! column names and placeholders. Operands are written each time they appear,
//! with fresh parameters, because SQLite numbers its `?` placeholders by
//! position.
//!
//! Properties are read from the item JSON with a type guard, so an item whose
//! value has another JSON type reads as NULL and never matches, rather than
//! failing the query with a cast error.

use super::sql::{Arg, Dialect, Writer};
use crate::filter::{Column, Condition, Interval, Kind, Operand};

/// Writes a condition.
pub(super) fn condition(w: &mut Writer, condition: &Condition) -> String {
    match condition {
        Condition::Constant(value) => (if *value { "(1 = 1)" } else { "(1 = 0)" }).to_string(),
        Condition::And(parts) | Condition::Or(parts) if parts.is_empty() => {
            (if matches!(condition, Condition::And(_)) {
                "(1 = 1)"
            } else {
                "(1 = 0)"
            })
            .to_string()
        }
        Condition::And(parts) => join(w, parts, " AND "),
        Condition::Or(parts) => join(w, parts, " OR "),
        Condition::Not(inner) => format!("(NOT {})", self::condition(w, inner)),
        Condition::Compare(op, left, right) => {
            let left = operand(w, left);
            let right = operand(w, right);
            format!("({left} {op} {right})")
        }
        Condition::Like(value, pattern) => {
            let value = operand(w, value);
            let pattern = operand(w, pattern);
            format!("({value} LIKE {pattern} ESCAPE '\\')")
        }
        Condition::Between(value, low, high) => {
            let value = operand(w, value);
            let low = operand(w, low);
            let high = operand(w, high);
            format!("({value} BETWEEN {low} AND {high})")
        }
        Condition::In(value, list) => {
            let value = operand(w, value);
            let list: Vec<String> = list.iter().map(|item| operand(w, item)).collect();
            format!("({value} IN ({}))", list.join(", "))
        }
        Condition::IsNull(value) => is_null(w, value),
        Condition::Spatial(name, left, right) => spatial(w, name, left, right),
        Condition::Temporal(name, left, right) => temporal(w, name, left, right),
        Condition::Array(name, left, right) => array(w, name, left, right),
    }
}

fn join(w: &mut Writer, parts: &[Condition], separator: &str) -> String {
    let parts: Vec<String> = parts.iter().map(|part| condition(w, part)).collect();
    format!("({})", parts.join(separator))
}

pub(super) fn column(column: Column) -> &'static str {
    match column {
        Column::Id => "i.id",
        Column::Collection => "i.collection",
        Column::Geometry => "i.geometry",
        Column::Datetime => "i.datetime",
        Column::StartDatetime => "i.start_datetime",
        Column::EndDatetime => "i.end_datetime",
    }
}

/// Returns the SQLite JSON path of a property. Names with `"` or `\` are rejected
/// before this point, so quoting the name is enough.
fn sqlite_path(name: &str) -> String {
    format!("$.properties.\"{name}\"")
}

/// Reads a property as `kind`, or NULL when its JSON type differs.
pub(super) fn property(w: &mut Writer, name: &str, kind: Kind) -> String {
    match w.dialect {
        Dialect::Postgres => {
            let key = w.bind(Arg::Text(name.to_string()));
            let value = format!("(i.content->'properties'->{key})");
            let (json_type, read) = match kind {
                Kind::Number => ("number", format!("{value}::float8")),
                Kind::Bool => ("boolean", format!("{value}::boolean")),
                Kind::Array => ("array", value.clone()),
                Kind::Text | Kind::Time | Kind::Geometry => ("string", format!("({value} #>> '{{}}')")),
            };
            format!("(CASE WHEN jsonb_typeof({value}) = '{json_type}' THEN {read} END)")
        }
        Dialect::Sqlite => {
            let test = w.bind(Arg::Text(sqlite_path(name)));
            let read = w.bind(Arg::Text(sqlite_path(name)));
            let json_types = match kind {
                Kind::Number => "'integer', 'real'",
                Kind::Bool => "'true', 'false'",
                Kind::Array => "'array'",
                Kind::Text | Kind::Time | Kind::Geometry => "'text'",
            };
            format!(
                "(CASE WHEN json_type(i.content, {test}) IN ({json_types}) THEN json_extract(i.content, {read}) END)"
            )
        }
    }
}

fn operand(w: &mut Writer, value: &Operand) -> String {
    match value {
        Operand::Column(c) => column(*c).to_string(),
        Operand::Property(name, kind) => property(w, name, *kind),
        Operand::Number(n) => {
            let p = w.bind(Arg::Float(*n));
            match w.dialect {
                Dialect::Postgres => format!("{p}::float8"),
                Dialect::Sqlite => p,
            }
        }
        Operand::Text(text) => {
            let p = w.bind(Arg::Text(text.clone()));
            match w.dialect {
                Dialect::Postgres => format!("{p}::text"),
                Dialect::Sqlite => p,
            }
        }
        Operand::Bool(value) => match w.dialect {
            Dialect::Postgres => w.bind(Arg::Bool(*value)),
            // SQLite reads JSON booleans as 1 and 0.
            Dialect::Sqlite => w.bind(Arg::Float(if *value { 1.0 } else { 0.0 })),
        },
        Operand::Time(micros) => w.bind(Arg::Time(*micros)),
        Operand::Geometry(wkb) => {
            let p = w.bind(Arg::Bytes(wkb.clone()));
            match w.dialect {
                Dialect::Postgres => format!("ST_GeomFromWKB({p}, 4326)"),
                Dialect::Sqlite => p,
            }
        }
        Operand::Array(json) => {
            let p = w.bind(Arg::Text(json.clone()));
            match w.dialect {
                Dialect::Postgres => format!("{p}::jsonb"),
                Dialect::Sqlite => p,
            }
        }
        Operand::Lower(inner) => format!("lower({})", operand(w, inner)),
        Operand::Arithmetic(op, left, right) => {
            let left = operand(w, left);
            let right = operand(w, right);
            if *op == "/" {
                // Division by zero gives NULL, as in SQLite, rather than a PostgreSQL error.
                format!("({left} / NULLIF({right}, 0))")
            } else {
                format!("({left} {op} {right})")
            }
        }
    }
}

fn is_null(w: &mut Writer, value: &Operand) -> String {
    match (value, w.dialect) {
        (Operand::Property(name, _), Dialect::Postgres) => {
            let key = w.bind(Arg::Text(name.clone()));
            format!("(coalesce(jsonb_typeof(i.content->'properties'->{key}), 'null') = 'null')")
        }
        (Operand::Property(name, _), Dialect::Sqlite) => {
            let path = w.bind(Arg::Text(sqlite_path(name)));
            format!("(coalesce(json_type(i.content, {path}), 'null') = 'null')")
        }
        (other, _) => format!("({} IS NULL)", operand(w, other)),
    }
}

/// DE-9IM relations, numbered as the SQLite function `stacd_relate` takes them.
pub(crate) const SPATIAL_RELATIONS: &[&str] = &[
    "intersects",
    "equals",
    "disjoint",
    "touches",
    "within",
    "overlaps",
    "crosses",
    "contains",
];

fn spatial(w: &mut Writer, name: &str, left: &Operand, right: &Operand) -> String {
    let left = operand(w, left);
    let right = operand(w, right);
    match w.dialect {
        Dialect::Postgres => {
            let function = match name {
                "intersects" => "ST_Intersects",
                "equals" => "ST_Equals",
                "disjoint" => "ST_Disjoint",
                "touches" => "ST_Touches",
                "within" => "ST_Within",
                "overlaps" => "ST_Overlaps",
                "crosses" => "ST_Crosses",
                _ => "ST_Contains",
            };
            format!("{function}({left}, {right})")
        }
        Dialect::Sqlite => {
            let code = SPATIAL_RELATIONS.iter().position(|r| *r == name).unwrap_or(0);
            format!("(stacd_relate({left}, {right}, {code}) = 1)")
        }
    }
}

/// Writes the SQL of an interval's start or end. Each call binds fresh parameters.
fn bound(w: &mut Writer, interval: &Interval, end: bool) -> String {
    match interval {
        Interval::ItemSpan => (if end { "i.end_datetime" } else { "i.start_datetime" }).to_string(),
        Interval::Instant(c) => column(*c).to_string(),
        Interval::Literal(start, stop) => w.bind(Arg::Time(if end { *stop } else { *start })),
    }
}

fn temporal(w: &mut Writer, name: &str, left: &Interval, right: &Interval) -> String {
    // Allen's interval relations, with `ls`/`le` the left start and end, `rs`/`re` the right.
    let mut part = |l_end: bool, op: &str, r_end: bool| {
        let l = bound(w, left, l_end);
        let r = bound(w, right, r_end);
        format!("{l} {op} {r}")
    };
    let (s, e) = (false, true);
    let parts = match name {
        "before" => vec![part(e, "<", s)],
        "after" => vec![part(s, ">", e)],
        "meets" => vec![part(e, "=", s)],
        "metBy" => vec![part(s, "=", e)],
        "overlaps" => vec![part(s, "<", s), part(e, ">", s), part(e, "<", e)],
        "overlappedBy" => vec![part(s, ">", s), part(s, "<", e), part(e, ">", e)],
        "starts" => vec![part(s, "=", s), part(e, "<", e)],
        "startedBy" => vec![part(s, "=", s), part(e, ">", e)],
        "during" => vec![part(s, ">", s), part(e, "<", e)],
        "contains" => vec![part(s, "<", s), part(e, ">", e)],
        "finishes" => vec![part(s, ">", s), part(e, "=", e)],
        "finishedBy" => vec![part(s, "<", s), part(e, "=", e)],
        "equals" => vec![part(s, "=", s), part(e, "=", e)],
        "disjoint" => return format!("({} OR {})", part(e, "<", s), part(s, ">", e)),
        _ => vec![part(s, "<=", e), part(e, ">=", s)],
    };
    format!("({})", parts.join(" AND "))
}

fn array(w: &mut Writer, name: &str, left: &Operand, right: &Operand) -> String {
    match w.dialect {
        Dialect::Postgres => {
            let mut side = |o: &Operand| operand(w, o);
            match name {
                "equals" => {
                    let (a, b, c, d) = (side(left), side(right), side(left), side(right));
                    format!("({a} @> {b} AND {c} <@ {d})")
                }
                "contains" => format!("({} @> {})", side(left), side(right)),
                "containedBy" => format!("({} <@ {})", side(left), side(right)),
                _ => format!(
                    "EXISTS (SELECT 1 FROM jsonb_array_elements({}) a, jsonb_array_elements({}) b WHERE a = b)",
                    side(left),
                    side(right)
                ),
            }
        }
        Dialect::Sqlite => {
            // Every element of `inner` is an element of `outer`; both must be arrays.
            let mut subset = |inner: &Operand, outer: &Operand| {
                let inner_sql = operand(w, inner);
                let outer_sql = operand(w, outer);
                let inner_check = operand(w, inner);
                let outer_check = operand(w, outer);
                format!(
                    "(json_type({inner_check}) = 'array' AND json_type({outer_check}) = 'array' AND NOT EXISTS \
                     (SELECT 1 FROM json_each({inner_sql}) b WHERE b.value NOT IN (SELECT a.value FROM json_each({outer_sql}) a)))"
                )
            };
            match name {
                "equals" => format!("({} AND {})", subset(right, left), subset(left, right)),
                "contains" => subset(right, left),
                "containedBy" => subset(left, right),
                _ => {
                    let a = operand(w, left);
                    let b = operand(w, right);
                    format!(
                        "EXISTS (SELECT 1 FROM json_each({a}) a, json_each({b}) b WHERE a.value = b.value)"
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{Language, PropertyTypes, parse, resolve};
    use serde_json::Value;

    #[test]
    fn injection_attempts_stay_parameters() {
        let mut types = PropertyTypes::new();
        types.insert("x'); DROP TABLE items; --".into(), ["string".to_string()].into());
        let text = r#""x'); DROP TABLE items; --" = 'a'' OR ''1''=''1' AND id LIKE '%'' OR 1=1 --'"#;
        let expr = parse(&Value::String(text.into()), Language::Text).unwrap();
        let filter = resolve(&expr, &types).unwrap();
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let mut w = Writer::new(dialect);
            let sql = condition(&mut w, &filter.condition);
            assert!(!sql.contains("DROP"), "{sql}");
            assert!(!sql.contains("1=1"), "{sql}");
            if dialect == Dialect::Sqlite {
                assert_eq!(sql.matches('?').count(), w.args.len(), "{sql}");
            }
        }
    }
}
