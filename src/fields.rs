//! The Fields extension: which members of each item a search returns.
//!
//! - An empty `fields` (or empty `include` and `exclude`) returns the default
//!   members, which still form a valid STAC Item.
//! - A non-empty `include` returns the included members plus `type`, `id`,
//!   `collection` and `links`, minus the excluded ones. An include at or
//!   below an excluded path wins: `-properties,+properties.gsd` keeps
//!   `properties.gsd`, and `+geometry,-geometry` keeps `geometry`, while
//!   `+properties,-properties.datetime` drops the datetime.
//! - `exclude` without `include` removes members from the whole item; with
//!   an `include` that is present but empty (POST only), from the default
//!   members.
//!
//! The extension's text adds includes to the default members, but
//! stac-api-validator 0.6.8 fails a response to `fields=type` that has more
//! than 5 members, and it treats the two forms of a missing `include` differently
//! as above. The extension allows both readings ("implementations may return
//! attributes not specified"), so stacd follows the validator.
//!
//! Paths reach into nested objects (`properties.gsd`, `assets.thumbnail`).

use serde_json::{Map, Value};

use crate::error::Error;

/// Conformance classes of the Fields extension.
pub const CONFORMANCE: &[&str] = &[
    "https://api.stacspec.org/v1.0.0/item-search#fields",
    "https://api.stacspec.org/v1.0.0/ogcapi-features#fields",
];

/// Members that an empty `fields` returns. The extension lists `id`, `type`,
/// `geometry`, `bbox`, `links`, `assets` and `properties.datetime`;
/// `stac_version` and `collection` are added so the result is still a valid
/// STAC Item.
const DEFAULT: &[&str] = &[
    "type",
    "stac_version",
    "id",
    "collection",
    "geometry",
    "bbox",
    "links",
    "assets",
    "properties.datetime",
];

/// Maximum number of paths in one request.
const MAX_PATHS: usize = 256;

/// Members that a non-empty `include` list always keeps.
const MINIMAL: &[&str] = &["type", "id", "collection", "links"];

/// A validated `fields` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// Paths to keep, split on dots; `None` keeps the whole item.
    include: Option<Vec<Vec<String>>>,
    /// Paths to remove afterwards.
    exclude: Vec<Vec<String>>,
    /// Included paths at or below an excluded one, copied back last.
    restore: Vec<Vec<String>>,
}

fn split_path(path: &str) -> Result<Vec<String>, Error> {
    let parts: Vec<String> = path.split('.').map(str::to_string).collect();
    if parts.iter().any(String::is_empty) {
        return Err(Error::parameter(
            "fields",
            path,
            "expected dot-separated member names, such as properties.gsd",
        ));
    }
    Ok(parts)
}

impl Fields {
    /// Builds the projection from include and exclude lists; `include` is
    /// `None` when the request has no include list at all.
    pub fn new(include: Option<&[String]>, exclude: &[String]) -> Result<Fields, Error> {
        let count = include.map_or(0, <[String]>::len) + exclude.len();
        if count > MAX_PATHS {
            return Err(Error::parameter(
                "fields",
                format!("{count} paths"),
                format!("at most {MAX_PATHS} paths are accepted"),
            ));
        }
        let parse = |paths: &[&str]| paths.iter().map(|p| split_path(p)).collect::<Result<Vec<_>, _>>();
        let requested: Vec<Vec<String>> = include
            .unwrap_or_default()
            .iter()
            .map(|p| split_path(p))
            .collect::<Result<_, _>>()?;
        let exclude: Vec<Vec<String>> = exclude.iter().map(|p| split_path(p)).collect::<Result<_, _>>()?;
        let base = if !requested.is_empty() {
            let mut base = parse(MINIMAL)?;
            base.extend(requested.iter().cloned());
            Some(base)
        } else if exclude.is_empty() || include.is_some() {
            Some(parse(DEFAULT)?)
        } else {
            None
        };
        let restore = requested
            .into_iter()
            .filter(|path| exclude.iter().any(|e| path.starts_with(e)))
            .collect();
        Ok(Fields {
            include: base,
            exclude,
            restore,
        })
    }

    /// Reads the GET form: comma-separated paths, `-` to exclude and `+` (or
    /// a space, which is what `+` becomes when a client does not encode it) to include.
    pub fn from_query(text: &str) -> Result<Fields, Error> {
        let (mut include, mut exclude) = (Vec::new(), Vec::new());
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.strip_prefix('-') {
                Some(path) => exclude.push(path.trim().to_string()),
                None => include.push(part.trim_start_matches('+').trim().to_string()),
            }
        }
        let include = (!include.is_empty() || exclude.is_empty()).then_some(include);
        Fields::new(include.as_deref(), &exclude)
    }

    /// Reads the POST form: `{"include": [...], "exclude": [...]}`.
    pub fn from_body(value: &Value) -> Result<Fields, Error> {
        let Value::Object(object) = value else {
            return Err(Error::parameter(
                "fields",
                value,
                "expected an object with include and exclude arrays",
            ));
        };
        let list = |key: &str| -> Result<Option<Vec<String>>, Error> {
            match object.get(key) {
                None => Ok(None),
                Some(Value::Null) => Ok(Some(Vec::new())),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| {
                        item.as_str().map(str::to_string).ok_or_else(|| {
                            Error::parameter("fields", value, format!("'{key}' must list strings"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(other) => Err(Error::parameter(
                    "fields",
                    other,
                    format!("'{key}' must be an array"),
                )),
            }
        };
        let include = list("include")?;
        let exclude = list("exclude")?.unwrap_or_default();
        Fields::new(include.as_deref(), &exclude)
    }

    /// Tells whether the item's links are kept. Links are not part of the
    /// stored document, so they follow the same rules here.
    pub fn keeps_links(&self) -> bool {
        let is_links = |path: &Vec<String>| path.len() == 1 && path[0] == "links";
        let included = self
            .include
            .as_ref()
            .is_none_or(|paths| paths.iter().any(is_links));
        included && (!self.exclude.iter().any(is_links) || self.restore.iter().any(is_links))
    }

    /// Projects an item document.
    pub fn apply(&self, item: &Map<String, Value>) -> Map<String, Value> {
        let mut out = match &self.include {
            None => item.clone(),
            Some(paths) => {
                let mut out = Map::new();
                for path in paths {
                    copy_path(item, &mut out, path);
                }
                out
            }
        };
        for path in &self.exclude {
            remove_path(&mut out, path);
        }
        for path in &self.restore {
            copy_path(item, &mut out, path);
        }
        out
    }
}

/// Copies the member at `path` from `source` into `target`, creating the objects on the way.
pub(crate) fn copy_path(source: &Map<String, Value>, target: &mut Map<String, Value>, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some(value) = source.get(first) else {
        return;
    };
    if rest.is_empty() {
        target.insert(first.clone(), value.clone());
        return;
    }
    let Value::Object(inner_source) = value else {
        return;
    };
    let entry = target
        .entry(first.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    // Copying into a member that was copied whole rewrites the same values.
    if let Value::Object(inner_target) = entry {
        copy_path(inner_source, inner_target, rest);
    }
}

/// Removes the member at `path`, when it exists.
pub(crate) fn remove_path(target: &mut Map<String, Value>, path: &[String]) {
    match path {
        [] => {}
        [last] => {
            target.remove(last);
        }
        [first, rest @ ..] => {
            if let Some(Value::Object(inner)) = target.get_mut(first) {
                remove_path(inner, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item() -> Map<String, Value> {
        json!({"type": "Feature", "stac_version": "1.0.0", "id": "a", "collection": "c",
            "geometry": {"type": "Point", "coordinates": [0, 0]}, "bbox": [0, 0, 0, 0],
            "properties": {"datetime": "2020-01-01T00:00:00Z", "gsd": 0.03, "platform": "x"},
            "assets": {"ortho": {"href": "s3://b/a.tif"}}, "links": []})
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn empty_fields_keep_the_defaults() {
        let out = Fields::from_query("").unwrap().apply(&item());
        assert_eq!(out["properties"], json!({"datetime": "2020-01-01T00:00:00Z"}));
        assert!(out.contains_key("geometry"));
        assert!(out.contains_key("assets"));
    }

    #[test]
    fn include_keeps_only_what_it_names() {
        let fields = Fields::from_query("properties.gsd, assets").unwrap();
        let out = fields.apply(&item());
        assert_eq!(out["properties"], json!({"gsd": 0.03}));
        assert!(!out.contains_key("geometry"));
        assert!(out.contains_key("assets"));
        assert_eq!(out["id"], "a");
        assert!(fields.keeps_links());
    }

    #[test]
    fn exclude_alone_removes_from_the_whole_item() {
        let fields = Fields::from_query("-geometry").unwrap();
        let out = fields.apply(&item());
        assert!(!out.contains_key("geometry"));
        assert_eq!(out["properties"]["platform"], "x");
        assert!(fields.keeps_links());
        let fields = Fields::from_body(&json!({"exclude": ["geometry"], "include": []})).unwrap();
        let out = fields.apply(&item());
        assert!(!out.contains_key("geometry"));
        assert_eq!(out["properties"], json!({"datetime": "2020-01-01T00:00:00Z"}));
    }

    #[test]
    fn narrower_include_beats_exclude() {
        let out = Fields::from_query("-properties,+properties.gsd")
            .unwrap()
            .apply(&item());
        assert_eq!(out["properties"], json!({"gsd": 0.03}));
        let out = Fields::from_query("+geometry,-geometry").unwrap().apply(&item());
        assert!(out.contains_key("geometry"));
    }

    #[test]
    fn nested_exclude_inside_included_object() {
        let fields =
            Fields::from_body(&json!({"include": ["properties"], "exclude": ["properties.datetime"]}))
                .unwrap();
        let out = fields.apply(&item());
        assert_eq!(out["properties"], json!({"gsd": 0.03, "platform": "x"}));
    }

    #[test]
    fn bad_paths_are_rejected() {
        assert!(Fields::from_query("properties..gsd").is_err());
        assert!(Fields::from_body(&json!({"include": "id"})).is_err());
    }
}
