//! The CQL2 filter of a search: parsed with the `cql2` crate, then checked
//! and resolved into a typed tree that each store writes as SQL.
//!
//! The tree is built from the expression and the property types found in the
//! stored items, so every check happens here, before any SQL exists: a
//! property that no item has, a string compared with a number, or an operator
//! outside the supported classes is a 400 that names the problem.

use std::collections::{BTreeMap, BTreeSet};

use cql2::Expr;
use serde_json::Value;

use crate::error::Error;

/// The CQL2 conformance classes the translation supports on both stores.
pub const CONFORMANCE: &[&str] = &[
    "https://api.stacspec.org/v1.0.0/item-search#filter",
    "https://api.stacspec.org/v1.0.0/ogcapi-features#filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/array-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
];

/// Maximum nesting of operations in a filter, so a hostile filter cannot
/// exhaust the stack or produce a statement too large for the database.
const MAX_DEPTH: usize = 64;

/// Maximum number of operands and list entries in one filter.
const MAX_NODES: usize = 10_000;

/// Value types of CQL2 operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A number.
    Number,
    /// A string.
    Text,
    /// A boolean.
    Bool,
    /// An instant.
    Time,
    /// A geometry.
    Geometry,
    /// A JSON array.
    Array,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::Text => "a string",
            Kind::Bool => "a boolean",
            Kind::Time => "a timestamp",
            Kind::Geometry => "a geometry",
            Kind::Array => "an array",
        }
    }

    /// Returns the kind of a JSON Schema type name, as the property types are stored.
    fn of_json_type(name: &str) -> Option<Kind> {
        match name {
            "number" | "integer" => Some(Kind::Number),
            "string" => Some(Kind::Text),
            "boolean" => Some(Kind::Bool),
            "array" => Some(Kind::Array),
            _ => None,
        }
    }
}

/// Item columns that filters can name directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The item id.
    Id,
    /// The collection id.
    Collection,
    /// The footprint.
    Geometry,
    /// The sort time: `datetime`, or `start_datetime` for range items.
    Datetime,
    /// Start of the item's time span.
    StartDatetime,
    /// End of the item's time span.
    EndDatetime,
}

/// A resolved operand with a known kind.
#[derive(Debug, Clone)]
pub enum Operand {
    /// An item column.
    Column(Column),
    /// A member of the item's `properties`, read as `kind`.
    Property(String, Kind),
    /// A number literal.
    Number(f64),
    /// A string literal.
    Text(String),
    /// A boolean literal.
    Bool(bool),
    /// An instant in microseconds since the Unix epoch.
    Time(i64),
    /// A geometry literal, as WKB.
    Geometry(Vec<u8>),
    /// An array literal, as JSON text.
    Array(String),
    /// `lower()` of a string operand, for CASEI.
    Lower(Box<Operand>),
    /// Arithmetic on two numbers: `+`, `-`, `*` or `/`.
    Arithmetic(&'static str, Box<Operand>, Box<Operand>),
}

/// A time interval operand of the temporal functions; the bounds are
/// microseconds since the Unix epoch, with open ends at the extremes.
#[derive(Debug, Clone)]
pub enum Interval {
    /// The item's span `[start_datetime, end_datetime]`.
    ItemSpan,
    /// One column as an instant.
    Instant(Column),
    /// Literal bounds.
    Literal(i64, i64),
}

/// A resolved boolean condition.
#[derive(Debug, Clone)]
pub enum Condition {
    /// A constant.
    Constant(bool),
    /// All of them.
    And(Vec<Condition>),
    /// Any of them.
    Or(Vec<Condition>),
    /// The negation.
    Not(Box<Condition>),
    /// A comparison: `=`, `<>`, `<`, `<=`, `>` or `>=`.
    Compare(&'static str, Operand, Operand),
    /// `LIKE` with a pattern.
    Like(Operand, Operand),
    /// `BETWEEN low AND high`.
    Between(Operand, Operand, Operand),
    /// Membership in a list.
    In(Operand, Vec<Operand>),
    /// The operand is null or missing.
    IsNull(Operand),
    /// A spatial relation, by its lower-case CQL2 name without `s_`.
    Spatial(&'static str, Operand, Operand),
    /// A temporal relation, by its CQL2 name without `t_`.
    Temporal(&'static str, Interval, Interval),
    /// An array relation, by its CQL2 name without `a_`.
    Array(&'static str, Operand, Operand),
}

/// A checked filter, ready for a store to write as SQL.
#[derive(Debug, Clone)]
pub struct PropertyFilter {
    /// The resolved condition.
    pub condition: Condition,
    /// The filter as cql2-json text, which identifies it in page tokens.
    pub canonical: String,
}

/// The JSON types that stored items have for each property.
pub type PropertyTypes = BTreeMap<String, BTreeSet<String>>;

/// The encoding of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// `cql2-text`.
    Text,
    /// `cql2-json`.
    Json,
}

impl Language {
    /// Reads a `filter-lang` value.
    pub fn parse(text: &str) -> Result<Language, Error> {
        match text {
            "cql2-text" => Ok(Language::Text),
            "cql2-json" => Ok(Language::Json),
            other => Err(Error::parameter(
                "filter-lang",
                other,
                "expected cql2-text or cql2-json",
            )),
        }
    }
}

/// Checks `filter-crs`: only WGS 84 longitude/latitude is served.
pub fn check_crs(text: &str) -> Result<(), Error> {
    match text {
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84" | "https://www.opengis.net/def/crs/OGC/1.3/CRS84" => {
            Ok(())
        }
        other => Err(Error::parameter(
            "filter-crs",
            other,
            "only http://www.opengis.net/def/crs/OGC/1.3/CRS84 is served",
        )),
    }
}

/// Parses a filter given as text (a cql2-text string, or cql2-json text) or
/// as a JSON value (cql2-json, or a string holding cql2-text).
pub fn parse(filter: &Value, language: Language) -> Result<Expr, Error> {
    let invalid =
        |e: &dyn std::fmt::Display| Error::parameter("filter", filter, format!("invalid CQL2: {e}"));
    match (filter, language) {
        (Value::String(text), Language::Text) => cql2::parse_text(text).map_err(|e| invalid(&e)),
        (Value::String(text), Language::Json) => cql2::parse_json(text).map_err(|e| invalid(&e)),
        (value, Language::Json) => serde_json::from_value(value.clone()).map_err(|e| invalid(&e)),
        (_, Language::Text) => Err(Error::parameter(
            "filter",
            filter,
            "cql2-text must be a string; send a JSON object with filter-lang cql2-json",
        )),
    }
}

/// Conformance classes of the Query extension, which is translated into the same conditions.
pub const QUERY_CONFORMANCE: &[&str] = &[
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "https://api.stacspec.org/v1.0.0/ogcapi-features#query",
];

/// Translates the Query extension's `query` object, such as
/// `{"gsd": {"lt": 0.05}, "platform": {"in": ["a", "b"]}}`, into CQL2: every
/// operator of every property must hold.
///
/// Clients often send numbers as strings in `query` (stac-api-validator 0.6.8
/// sends `{"gsd": {"eq": "0.6"}}`), so a string value of a property that the
/// stored items hold only as numbers is read as a number.
pub fn from_query(query: &Value, types: &PropertyTypes) -> Result<Expr, Error> {
    let bad = |reason: String| Error::parameter("query", query, reason);
    let Value::Object(properties) = query else {
        return Err(bad("expected an object of property names to operators".into()));
    };
    let mut conditions = Vec::new();
    for (name, operators) in properties {
        let Value::Object(operators) = operators else {
            return Err(bad(format!(
                "'{name}' must map to an object of operators, such as {{\"eq\": 1}}"
            )));
        };
        let property = serde_json::json!({"property": name});
        let numeric = types
            .get(name.strip_prefix("properties.").unwrap_or(name))
            .is_some_and(|t| t.contains("number") && !t.contains("string"));
        let coerce = |value: &Value| -> Value {
            match value {
                _ if !numeric => value.clone(),
                Value::Array(items) => Value::Array(items.iter().map(number_from_text).collect()),
                other => number_from_text(other),
            }
        };
        for (operator, value) in operators {
            let value = &coerce(value);
            let like = |prefix: &str, suffix: &str| -> Result<Value, Error> {
                let Value::String(text) = value else {
                    return Err(bad(format!("'{operator}' needs a string")));
                };
                // The value is matched literally, so LIKE's wildcards in it are escaped.
                let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                Ok(
                    serde_json::json!({"op": "like", "args": [property, format!("{prefix}{escaped}{suffix}")]}),
                )
            };
            let condition = match operator.as_str() {
                "eq" => serde_json::json!({"op": "=", "args": [property, value]}),
                "neq" => serde_json::json!({"op": "<>", "args": [property, value]}),
                "lt" => serde_json::json!({"op": "<", "args": [property, value]}),
                "lte" => serde_json::json!({"op": "<=", "args": [property, value]}),
                "gt" => serde_json::json!({"op": ">", "args": [property, value]}),
                "gte" => serde_json::json!({"op": ">=", "args": [property, value]}),
                "startsWith" => like("", "%")?,
                "endsWith" => like("%", "")?,
                "contains" => like("%", "%")?,
                "in" => {
                    if !value.is_array() {
                        return Err(bad(format!("'in' of '{name}' needs an array of values")));
                    }
                    serde_json::json!({"op": "in", "args": [property, value]})
                }
                other => {
                    return Err(bad(format!(
                        "unknown operator '{other}'; use eq, neq, lt, lte, gt, gte, startsWith, endsWith, contains or in"
                    )));
                }
            };
            conditions.push(condition);
        }
    }
    let expression = match conditions.len() {
        0 => serde_json::json!(true),
        1 => conditions.remove(0),
        _ => serde_json::json!({"op": "and", "args": conditions}),
    };
    serde_json::from_value(expression).map_err(|e| bad(format!("invalid value: {e}")))
}

/// Reads a string holding a number as that number; other values stay as they are.
fn number_from_text(value: &Value) -> Value {
    let Value::String(text) = value else {
        return value.clone();
    };
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or_else(|| value.clone(), Value::Number)
}

/// Checks an expression against the stored property types and resolves it.
pub fn resolve(expr: &Expr, types: &PropertyTypes) -> Result<PropertyFilter, Error> {
    let canonical = serde_json::to_string(expr)
        .map_err(|e| Error::Internal(format!("cannot serialise a CQL2 expression: {e}")))?;
    let mut resolver = Resolver { types, nodes: 0 };
    let condition = resolver.condition(expr, 0)?;
    Ok(PropertyFilter { condition, canonical })
}

fn unsupported(what: impl std::fmt::Display) -> Error {
    Error::NotImplemented(format!(
        "{what} is not supported in filters; see /conformance for the supported CQL2 classes"
    ))
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidParameter(format!("invalid value for 'filter': {}", message.into()))
}

/// A literal or name before its kind is settled.
enum Term {
    Known(Operand, Kind),
    /// A property whose stored types include all of these.
    Property(String, Vec<Kind>),
}

struct Resolver<'a> {
    types: &'a PropertyTypes,
    nodes: usize,
}

impl Resolver<'_> {
    fn count(&mut self) -> Result<(), Error> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(invalid(format!("the filter has more than {MAX_NODES} terms")));
        }
        Ok(())
    }

    fn condition(&mut self, expr: &Expr, depth: usize) -> Result<Condition, Error> {
        self.count()?;
        if depth > MAX_DEPTH {
            return Err(invalid(format!("the filter nests more than {MAX_DEPTH} levels")));
        }
        let (op, args) = match expr {
            Expr::Bool(value) => return Ok(Condition::Constant(*value)),
            Expr::Operation { op, args } => (op.as_str(), args),
            Expr::Property { property } => {
                return Err(invalid(format!("'{property}' is a property, not a condition")));
            }
            other => return Err(invalid(format!("{} is not a condition", describe(other)))),
        };
        let depth = depth + 1;
        match op {
            "and" | "or" => {
                let parts = args
                    .iter()
                    .map(|a| self.condition(a, depth))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if op == "and" {
                    Condition::And(parts)
                } else {
                    Condition::Or(parts)
                })
            }
            "not" => {
                let [inner] = exactly::<1>(op, args)?;
                Ok(Condition::Not(Box::new(self.condition(inner, depth)?)))
            }
            "=" | "<>" | "<" | "<=" | ">" | ">=" => {
                let [left, right] = exactly::<2>(op, args)?;
                let op = match op {
                    "=" => "=",
                    "<>" => "<>",
                    "<" => "<",
                    "<=" => "<=",
                    ">" => ">",
                    _ => ">=",
                };
                let (left, right, kind) = self.pair(op, left, right, depth)?;
                if matches!(kind, Kind::Geometry | Kind::Array) {
                    return Err(invalid(format!(
                        "'{op}' compares numbers, strings, booleans and timestamps, not {}; use the S_ or A_ functions",
                        kind.name()
                    )));
                }
                if kind == Kind::Bool && !matches!(op, "=" | "<>") {
                    return Err(invalid(format!(
                        "booleans can only be compared with = and <>, not '{op}'"
                    )));
                }
                Ok(Condition::Compare(op, left, right))
            }
            "like" => {
                let [value, pattern] = exactly::<2>(op, args)?;
                let (value, pattern, kind) = self.pair(op, value, pattern, depth)?;
                if kind != Kind::Text {
                    return Err(invalid(format!("LIKE compares strings, not {}", kind.name())));
                }
                Ok(Condition::Like(value, pattern))
            }
            "between" => {
                let [value, low, high] = exactly::<3>(op, args)?;
                let (value, low, kind) = self.pair(op, value, low, depth)?;
                let high = self.operand_of_kind(high, kind, depth)?;
                if !matches!(kind, Kind::Number | Kind::Text | Kind::Time) {
                    return Err(invalid(format!(
                        "BETWEEN compares numbers, strings or timestamps, not {}",
                        kind.name()
                    )));
                }
                Ok(Condition::Between(value, low, high))
            }
            "in" => {
                let [value, list] = exactly::<2>(op, args)?;
                let Expr::Array(items) = list else {
                    return Err(invalid("IN needs a list of values, such as ('a', 'b')"));
                };
                let Some(first) = items.first() else {
                    return Err(invalid("IN needs at least one value"));
                };
                let (value, first, kind) = self.pair(op, value, first, depth)?;
                let mut values = vec![first];
                for item in &items[1..] {
                    values.push(self.operand_of_kind(item, kind, depth)?);
                }
                Ok(Condition::In(value, values))
            }
            "isNull" => {
                let [value] = exactly::<1>(op, args)?;
                let operand = match self.term(value, depth)? {
                    Term::Known(operand, _) => operand,
                    // Any kind reads null the same way.
                    Term::Property(name, kinds) => {
                        Operand::Property(name, kinds.first().copied().unwrap_or(Kind::Text))
                    }
                };
                Ok(Condition::IsNull(operand))
            }
            s if cql2::SPATIALOPS.contains(&s) => {
                let [left, right] = exactly::<2>(op, args)?;
                let left = self.operand_of_kind(left, Kind::Geometry, depth)?;
                let right = self.operand_of_kind(right, Kind::Geometry, depth)?;
                let name = match s {
                    "s_equals" => "equals",
                    "s_intersects" => "intersects",
                    "s_disjoint" => "disjoint",
                    "s_touches" => "touches",
                    "s_within" => "within",
                    "s_overlaps" => "overlaps",
                    "s_crosses" => "crosses",
                    _ => "contains",
                };
                Ok(Condition::Spatial(name, left, right))
            }
            t if cql2::TEMPORALOPS.contains(&t) => {
                let [left, right] = exactly::<2>(op, args)?;
                let name =
                    temporal_name(t).ok_or_else(|| unsupported(format!("the temporal function {t}")))?;
                Ok(Condition::Temporal(name, interval(left)?, interval(right)?))
            }
            a if cql2::ARRAYOPS.contains(&a) => {
                let [left, right] = exactly::<2>(op, args)?;
                let left = self.operand_of_kind(left, Kind::Array, depth)?;
                let right = self.operand_of_kind(right, Kind::Array, depth)?;
                let name = match a {
                    "a_equals" => "equals",
                    "a_contains" => "contains",
                    "a_containedBy" => "containedBy",
                    _ => "overlaps",
                };
                Ok(Condition::Array(name, left, right))
            }
            other => Err(unsupported(format!("the operator '{other}'"))),
        }
    }

    /// Resolves two operands that must have the same kind.
    fn pair(
        &mut self,
        op: &str,
        left: &Expr,
        right: &Expr,
        depth: usize,
    ) -> Result<(Operand, Operand, Kind), Error> {
        let left = self.term(left, depth)?;
        let right = self.term(right, depth)?;
        match (left, right) {
            (Term::Known(l, lk), Term::Known(r, rk)) => {
                if lk != rk {
                    return Err(mismatch(op, &l, lk, rk));
                }
                Ok((l, r, lk))
            }
            (Term::Property(name, kinds), Term::Known(r, rk)) => {
                let l = property_as(&name, &kinds, rk)?;
                Ok((l, r, rk))
            }
            (Term::Known(l, lk), Term::Property(name, kinds)) => {
                let r = property_as(&name, &kinds, lk)?;
                Ok((l, r, lk))
            }
            (Term::Property(left, left_kinds), Term::Property(right, right_kinds)) => {
                let Some(kind) = left_kinds.iter().find(|k| right_kinds.contains(k)).copied() else {
                    return Err(invalid(format!(
                        "'{left}' and '{right}' have no type in common in the stored items, so '{op}' cannot compare them"
                    )));
                };
                Ok((
                    Operand::Property(left, kind),
                    Operand::Property(right, kind),
                    kind,
                ))
            }
        }
    }

    fn operand_of_kind(&mut self, expr: &Expr, kind: Kind, depth: usize) -> Result<Operand, Error> {
        match self.term(expr, depth)? {
            Term::Known(operand, k) if k == kind => Ok(operand),
            Term::Known(_, k) => Err(invalid(format!(
                "{} is {}, where {} is expected",
                describe(expr),
                k.name(),
                kind.name()
            ))),
            Term::Property(name, kinds) => property_as(&name, &kinds, kind),
        }
    }

    fn term(&mut self, expr: &Expr, depth: usize) -> Result<Term, Error> {
        self.count()?;
        if depth > MAX_DEPTH {
            return Err(invalid(format!("the filter nests more than {MAX_DEPTH} levels")));
        }
        let known = |operand, kind| Ok(Term::Known(operand, kind));
        match expr {
            Expr::Float(value) => known(Operand::Number(*value), Kind::Number),
            Expr::Literal(text) => known(Operand::Text(text.clone()), Kind::Text),
            Expr::Bool(value) => known(Operand::Bool(*value), Kind::Bool),
            Expr::Timestamp { .. } | Expr::Date { .. } => {
                let (start, _) = literal_interval(expr)?;
                known(Operand::Time(start), Kind::Time)
            }
            Expr::Geometry(geometry) => {
                let value =
                    serde_json::to_value(geometry).map_err(|e| invalid(format!("invalid geometry: {e}")))?;
                geometry_operand(&value)
            }
            Expr::BBox { bbox } => {
                let numbers = bbox
                    .iter()
                    .map(|n| match n.as_ref() {
                        Expr::Float(v) => Ok(*v),
                        other => Err(invalid(format!("BBOX needs numbers, not {}", describe(other)))),
                    })
                    .collect::<Result<Vec<f64>, Error>>()?;
                let corners: [f64; 4] = match numbers.as_slice() {
                    [w, s, e, n] | [w, s, _, e, n, _] => [*w, *s, *e, *n],
                    _ => return Err(invalid("BBOX needs 4 or 6 numbers")),
                };
                let geometry = crate::store::bbox_geometry(&corners);
                let wkb = crate::geometry::to_wkb(&geometry).map_err(invalid)?;
                known(Operand::Geometry(wkb), Kind::Geometry)
            }
            Expr::Array(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    self.count()?;
                    values.push(match item.as_ref() {
                        Expr::Float(v) => serde_json::json!(v),
                        Expr::Literal(s) => Value::String(s.clone()),
                        Expr::Bool(b) => Value::Bool(*b),
                        other => {
                            return Err(unsupported(format!("{} inside an array", describe(other))));
                        }
                    });
                }
                known(Operand::Array(Value::Array(values).to_string()), Kind::Array)
            }
            Expr::Property { property } => self.property(property),
            Expr::Operation { op, args } => match op.as_str() {
                "casei" => {
                    let [inner] = exactly::<1>("CASEI", args)?;
                    let operand = self.operand_of_kind(inner, Kind::Text, depth + 1)?;
                    known(Operand::Lower(Box::new(operand)), Kind::Text)
                }
                "+" | "-" | "*" | "/" => {
                    if args.len() < 2 {
                        return Err(invalid(format!("'{op}' needs two operands")));
                    }
                    let symbol = match op.as_str() {
                        "+" => "+",
                        "-" => "-",
                        "*" => "*",
                        _ => "/",
                    };
                    // Chains like a + b + c read from the left.
                    let mut result = self.operand_of_kind(&args[0], Kind::Number, depth + 1)?;
                    for arg in &args[1..] {
                        let right = self.operand_of_kind(arg, Kind::Number, depth + 1)?;
                        result = Operand::Arithmetic(symbol, Box::new(result), Box::new(right));
                    }
                    known(result, Kind::Number)
                }
                "accenti" => Err(unsupported("ACCENTI")),
                other => Err(unsupported(format!("the function '{other}'"))),
            },
            Expr::Interval { .. } => Err(invalid("an INTERVAL can only be an operand of the T_ functions")),
            Expr::Null => Err(invalid("NULL is not a value; use IS NULL")),
        }
    }

    fn property(&self, name: &str) -> Result<Term, Error> {
        let name = name.strip_prefix("properties.").unwrap_or(name);
        let column = match name {
            "id" => Some((Column::Id, Kind::Text)),
            "collection" => Some((Column::Collection, Kind::Text)),
            "geometry" => Some((Column::Geometry, Kind::Geometry)),
            "datetime" => Some((Column::Datetime, Kind::Time)),
            "start_datetime" => Some((Column::StartDatetime, Kind::Time)),
            "end_datetime" => Some((Column::EndDatetime, Kind::Time)),
            _ => None,
        };
        if let Some((column, kind)) = column {
            return Ok(Term::Known(Operand::Column(column), kind));
        }
        if name.is_empty() || name.contains(['"', '\\']) || name.chars().any(char::is_control) {
            return Err(invalid(format!("'{name}' is not a valid property name")));
        }
        let Some(types) = self.types.get(name) else {
            return Err(invalid(format!(
                "no stored item has the property '{name}'; /queryables lists the properties"
            )));
        };
        // Objects and nulls have no kind, so such a property can only be tested with IS NULL.
        let kinds: Vec<Kind> = types.iter().filter_map(|t| Kind::of_json_type(t)).collect();
        Ok(Term::Property(name.to_string(), kinds))
    }
}

fn property_as(name: &str, kinds: &[Kind], wanted: Kind) -> Result<Operand, Error> {
    if kinds.contains(&wanted) {
        return Ok(Operand::Property(name.to_string(), wanted));
    }
    if kinds.is_empty() {
        return Err(unsupported(format!(
            "comparing '{name}', whose values are objects or null, with {}; test it with IS NULL",
            wanted.name()
        )));
    }
    let stored: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    Err(invalid(format!(
        "the property '{name}' is {} in the stored items and cannot be compared with {}",
        stored.join(" or "),
        wanted.name()
    )))
}

fn mismatch(op: &str, left: &Operand, left_kind: Kind, right_kind: Kind) -> Error {
    let what = match left {
        Operand::Column(column) => format!("the property '{}'", column_name(*column)),
        _ => "the left side".to_string(),
    };
    invalid(format!(
        "'{op}' cannot compare {what}, which is {}, with {}",
        left_kind.name(),
        right_kind.name()
    ))
}

fn column_name(column: Column) -> &'static str {
    match column {
        Column::Id => "id",
        Column::Collection => "collection",
        Column::Geometry => "geometry",
        Column::Datetime => "datetime",
        Column::StartDatetime => "start_datetime",
        Column::EndDatetime => "end_datetime",
    }
}

fn geometry_operand(value: &Value) -> Result<Term, Error> {
    let geometry = crate::geometry::parse_geojson(value, "the filter geometry").map_err(invalid)?;
    let wkb = crate::geometry::to_wkb(&geometry).map_err(invalid)?;
    Ok(Term::Known(Operand::Geometry(wkb), Kind::Geometry))
}

fn exactly<'a, const N: usize>(op: &str, args: &'a [Box<Expr>]) -> Result<[&'a Expr; N], Error> {
    let refs: Vec<&Expr> = args.iter().map(AsRef::as_ref).collect();
    refs.try_into()
        .map_err(|_| invalid(format!("'{op}' takes {N} operand(s), got {}", args.len())))
}

fn describe(expr: &Expr) -> String {
    match expr {
        Expr::Property { property } => format!("the property '{property}'"),
        Expr::Literal(text) => format!("the string '{text}'"),
        Expr::Float(value) => format!("the number {value}"),
        Expr::Bool(value) => format!("the boolean {value}"),
        Expr::Operation { op, .. } => format!("the operation '{op}'"),
        Expr::Geometry(_) | Expr::BBox { .. } => "a geometry".into(),
        Expr::Interval { .. } => "an interval".into(),
        Expr::Timestamp { .. } | Expr::Date { .. } => "a timestamp".into(),
        Expr::Array(_) => "an array".into(),
        Expr::Null => "NULL".into(),
    }
}

fn temporal_name(op: &str) -> Option<&'static str> {
    Some(match op {
        "t_before" => "before",
        "t_after" => "after",
        "t_meets" => "meets",
        "t_metBy" => "metBy",
        "t_overlaps" => "overlaps",
        "t_overlappedBy" => "overlappedBy",
        "t_starts" => "starts",
        "t_startedBy" => "startedBy",
        "t_during" => "during",
        "t_contains" => "contains",
        "t_finishes" => "finishes",
        "t_finishedBy" => "finishedBy",
        "t_equals" => "equals",
        "t_disjoint" => "disjoint",
        "t_intersects" => "intersects",
        _ => return None,
    })
}

/// Earliest and latest instants that bound open intervals, in microseconds
/// since the Unix epoch: 0001-01-01 and 9999-12-31, which both stores compare.
pub const MIN_TIME: i64 = -62_135_596_800_000_000;
/// See [`MIN_TIME`].
pub const MAX_TIME: i64 = 253_402_300_799_999_999;

/// One day minus one microsecond: a DATE covers its whole day, as in the `cql2` crate.
const DAY_END_MICROS: i64 = 86_400_000_000 - 1;

fn parse_instant(text: &str) -> Result<i64, Error> {
    let micros = crate::datetime::parse_instant(text).map_err(|e| invalid(format!("'{text}': {e}")))?;
    Ok(micros)
}

fn literal_text(expr: &Expr) -> Result<&str, Error> {
    match expr {
        Expr::Literal(text) => Ok(text),
        Expr::Timestamp { timestamp } => literal_text(timestamp),
        Expr::Date { date } => literal_text(date),
        other => Err(invalid(format!("{} is not a time", describe(other)))),
    }
}

/// Reads a TIMESTAMP, DATE or INTERVAL literal as its bounds.
fn literal_interval(expr: &Expr) -> Result<(i64, i64), Error> {
    match expr {
        Expr::Timestamp { timestamp } => {
            let t = parse_instant(literal_text(timestamp)?)?;
            Ok((t, t))
        }
        Expr::Date { date } => {
            let text = literal_text(date)?;
            let start = parse_instant(&format!("{text}T00:00:00Z"))?;
            Ok((start, start.saturating_add(DAY_END_MICROS)))
        }
        Expr::Interval { interval } => {
            let [start, end] = exactly::<2>("INTERVAL", interval)?;
            let bound = |expr: &Expr, open: i64| -> Result<i64, Error> {
                match expr {
                    Expr::Literal(text) if text == ".." => Ok(open),
                    Expr::Date { date } => parse_instant(&format!("{}T00:00:00Z", literal_text(date)?)),
                    Expr::Literal(text) if text.len() == 10 => parse_instant(&format!("{text}T00:00:00Z")),
                    other => parse_instant(literal_text(other)?),
                }
            };
            Ok((bound(start, MIN_TIME)?, bound(end, MAX_TIME)?))
        }
        other => Err(invalid(format!("{} is not a time", describe(other)))),
    }
}

fn interval(expr: &Expr) -> Result<Interval, Error> {
    match expr {
        Expr::Property { property } => match property.strip_prefix("properties.").unwrap_or(property) {
            "datetime" => Ok(Interval::ItemSpan),
            "start_datetime" => Ok(Interval::Instant(Column::StartDatetime)),
            "end_datetime" => Ok(Interval::Instant(Column::EndDatetime)),
            other => Err(unsupported(format!(
                "temporal functions on '{other}' (only datetime, start_datetime and end_datetime are times)"
            ))),
        },
        other => {
            let (start, end) = literal_interval(other)?;
            Ok(Interval::Literal(start, end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> PropertyTypes {
        let mut types = PropertyTypes::new();
        types.insert("gsd".into(), ["number".to_string()].into());
        types.insert("platform".into(), ["string".to_string()].into());
        types.insert("instruments".into(), ["array".to_string()].into());
        types
    }

    fn resolve_text(text: &str) -> Result<PropertyFilter, Error> {
        let expr = parse(&Value::String(text.into()), Language::Text)?;
        resolve(&expr, &types())
    }

    #[test]
    fn string_property_against_number_is_rejected() {
        let error = resolve_text("platform = 5").unwrap_err();
        assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(error.to_string().contains("platform"), "{error}");
    }

    #[test]
    fn unknown_property_is_rejected() {
        let error = resolve_text("cloud_cover < 10").unwrap_err();
        assert!(error.to_string().contains("/queryables"), "{error}");
    }

    #[test]
    fn supported_operators_resolve() {
        for text in [
            "gsd < 0.5 AND platform LIKE 'dr%'",
            "gsd BETWEEN 0.1 AND 0.2 OR platform IN ('a', 'b')",
            "CASEI(platform) = CASEI('Drone')",
            "S_INTERSECTS(geometry, BBOX(0, 0, 1, 1))",
            "T_DURING(datetime, INTERVAL('2020-01-01', '..'))",
            "A_CONTAINS(instruments, ('rgb'))",
            "gsd * 2 > gsd + 0.01",
            "platform IS NULL",
        ] {
            assert!(
                resolve_text(text).is_ok(),
                "{text}: {:?}",
                resolve_text(text).err()
            );
        }
    }

    #[test]
    fn accent_insensitive_comparison_is_not_supported() {
        let error = resolve_text("ACCENTI(platform) = ACCENTI('x')").unwrap_err();
        assert_eq!(error.code(), "NotSupported");
    }
}
