//! The Sort extension: `sortby` on GET and POST, resolved against the
//! stored property types.
//!
//! Any sort keeps keyset pagination: the store orders by the requested
//! fields, then by collection and id, and the page token carries the values
//! of the boundary item. Items without a value of the field's type sort last
//! in both directions.

use serde_json::Value;

use crate::error::Error;
use crate::filter::{Column, Kind, PropertyTypes};

/// Conformance classes of the Sort extension and its sortables.
pub const CONFORMANCE: &[&str] = &[
    "https://api.stacspec.org/v1.1.0/item-search#sort",
    "https://api.stacspec.org/v1.1.0/ogcapi-features#sort",
    "https://api.stacspec.org/v1.1.0/item-search#sortables",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/sortables",
];

/// Maximum number of sort fields in one request.
const MAX_FIELDS: usize = 8;

/// The source of a sort field's values.
#[derive(Debug, Clone, PartialEq)]
pub enum SortTarget {
    /// An item column.
    Column(Column),
    /// A member of `properties`, read as a number or a string.
    Property(String, Kind),
}

/// One resolved sort field.
#[derive(Debug, Clone, PartialEq)]
pub struct SortField {
    /// The column or property sorted on.
    pub target: SortTarget,
    /// Whether larger values come first.
    pub descending: bool,
}

impl SortField {
    /// Returns the kind of value the field contains.
    pub fn kind(&self) -> Kind {
        match &self.target {
            SortTarget::Column(Column::Id | Column::Collection) => Kind::Text,
            SortTarget::Column(_) => Kind::Time,
            SortTarget::Property(_, kind) => *kind,
        }
    }

    /// Tells whether the field can be missing from an item.
    pub fn nullable(&self) -> bool {
        matches!(self.target, SortTarget::Property(..))
    }

    /// Describes the field in a stable text form, for page token fingerprints.
    pub fn describe(&self) -> String {
        let direction = if self.descending { "-" } else { "+" };
        match &self.target {
            SortTarget::Column(column) => format!("{direction}{column:?}"),
            SortTarget::Property(name, kind) => format!("{direction}p:{name}:{kind:?}"),
        }
    }
}

/// A requested sort field before it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedSort {
    /// The field name as given, such as `properties.gsd` or `datetime`.
    pub field: String,
    /// Whether the request asked for descending order.
    pub descending: bool,
}

/// Reads the GET form: `+datetime,-properties.gsd`. A `+` that arrived
/// unencoded is a space, so a leading space also means ascending.
pub fn from_query(text: &str) -> Result<Vec<RequestedSort>, Error> {
    let mut fields = Vec::new();
    for part in text.split(',') {
        let trimmed = part.trim_end();
        let (descending, name) = if let Some(name) = trimmed.trim_start().strip_prefix('-') {
            (true, name)
        } else {
            (false, trimmed.trim_start().trim_start_matches('+'))
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::parameter(
                "sortby",
                text,
                "expected fields such as +datetime,-properties.gsd",
            ));
        }
        fields.push(RequestedSort {
            field: name.to_string(),
            descending,
        });
    }
    Ok(fields)
}

/// Reads the POST form: `[{"field": "properties.gsd", "direction": "desc"}]`.
pub fn from_body(value: &Value) -> Result<Vec<RequestedSort>, Error> {
    let invalid = || {
        Error::parameter(
            "sortby",
            value,
            "expected an array of {\"field\": NAME, \"direction\": \"asc\" or \"desc\"}",
        )
    };
    let items = value.as_array().ok_or_else(invalid)?;
    items
        .iter()
        .map(|item| {
            let field = item.get("field").and_then(Value::as_str).ok_or_else(invalid)?;
            let descending = match item.get("direction").and_then(Value::as_str) {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(_) => return Err(invalid()),
            };
            Ok(RequestedSort {
                field: field.to_string(),
                descending,
            })
        })
        .collect()
}

/// Returns the column a sort field names, if it names one.
fn column(name: &str) -> Option<Column> {
    match name {
        "id" => Some(Column::Id),
        "collection" => Some(Column::Collection),
        "datetime" => Some(Column::Datetime),
        "start_datetime" => Some(Column::StartDatetime),
        "end_datetime" => Some(Column::EndDatetime),
        _ => None,
    }
}

/// Returns the kind a property sorts as: a number or a string, when all
/// stored values have that one type.
pub fn sortable_kind(types: &std::collections::BTreeSet<String>) -> Option<Kind> {
    let types: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .filter(|t| *t != "null")
        .collect();
    match types.as_slice() {
        ["number"] => Some(Kind::Number),
        ["string"] => Some(Kind::Text),
        _ => None,
    }
}

/// Tells whether a sort needs the stored property types to be resolved.
pub fn needs_types(requested: &[RequestedSort]) -> bool {
    requested.iter().any(|r| {
        let name = r.field.strip_prefix("properties.").unwrap_or(&r.field);
        column(name).is_none()
    })
}

/// Resolves requested sort fields against the stored property types. A sort
/// by datetime descending alone is the default order, which returns no fields.
pub fn resolve(requested: &[RequestedSort], types: &PropertyTypes) -> Result<Vec<SortField>, Error> {
    let fields = resolve_fields(requested, types)?;
    let default = [SortField {
        target: SortTarget::Column(Column::Datetime),
        descending: true,
    }];
    Ok(if fields == default { Vec::new() } else { fields })
}

fn resolve_fields(requested: &[RequestedSort], types: &PropertyTypes) -> Result<Vec<SortField>, Error> {
    if requested.len() > MAX_FIELDS {
        return Err(Error::parameter(
            "sortby",
            format!("{} fields", requested.len()),
            format!("at most {MAX_FIELDS} fields are accepted"),
        ));
    }
    requested
        .iter()
        .map(|r| {
            let name = r.field.strip_prefix("properties.").unwrap_or(&r.field);
            let target = match column(name) {
                Some(column) => SortTarget::Column(column),
                None => {
                    if name.contains(['"', '\\']) || name.chars().any(char::is_control) {
                        return Err(Error::parameter("sortby", &r.field, "not a valid property name"));
                    }
                    let stored = types.get(name).ok_or_else(|| {
                        Error::parameter(
                            "sortby",
                            &r.field,
                            "no stored item has this property; /sortables lists the fields",
                        )
                    })?;
                    let kind = sortable_kind(stored).ok_or_else(|| {
                        Error::parameter(
                            "sortby",
                            &r.field,
                            "only properties whose values are all numbers or all strings can be sorted on",
                        )
                    })?;
                    SortTarget::Property(name.to_string(), kind)
                }
            };
            Ok(SortField {
                target,
                descending: r.descending,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_form_reads_signs_and_spaces() {
        let fields = from_query("+datetime,-properties.gsd, id").unwrap();
        assert_eq!(fields.len(), 3);
        assert!(!fields[0].descending);
        assert!(fields[1].descending);
        assert_eq!(fields[1].field, "properties.gsd");
        assert_eq!(fields[2].field, "id");
        assert!(!fields[2].descending);
        assert!(from_query("datetime,,id").is_err());
    }

    #[test]
    fn unknown_and_mixed_fields_are_rejected() {
        let mut types = PropertyTypes::new();
        types.insert("gsd".into(), ["number".to_string()].into());
        types.insert(
            "mixed".into(),
            ["number".to_string(), "string".to_string()].into(),
        );
        assert!(resolve(&from_query("-gsd").unwrap(), &types).is_ok());
        assert!(resolve(&from_query("cloud").unwrap(), &types).is_err());
        assert!(resolve(&from_query("mixed").unwrap(), &types).is_err());
        let body = serde_json::json!([{"field": "gsd", "direction": "up"}]);
        assert!(from_body(&body).is_err());
    }
}
