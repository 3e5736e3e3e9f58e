//! Parsing of item search requests (GET query strings and POST bodies) into
//! one validated [`ItemQuery`].
//!
//! GET parameters are read through `stac::api::GetSearch`, and POST bodies as
//! JSON objects. Both end in [`RawSearch`] and go through the same checks, so
//! the two methods accept and reject exactly the same searches.

use serde_json::{Map, Value};
use stac::api::GetSearch;

use crate::error::Error;
use crate::fields::Fields;
use crate::filter::{Language, PropertyTypes};
use crate::sort::RequestedSort;
use crate::text::TextQuery;
use geo::CoordsIter;

use crate::geometry::{envelope, parse_geojson};
use crate::store::{ItemQuery, SpatialFilter};

/// Bounds that apply to every search, from the server configuration.
#[derive(Debug, Clone, Copy)]
pub struct SearchLimits {
    /// Page size when the request gives none.
    pub default_limit: usize,
    /// Largest page size; larger requests are clamped to it.
    pub max_limit: usize,
    /// Exact `numberMatched` up to this count; above it the count may be an estimate.
    pub count_limit: u64,
    /// Maximum time a search may spend counting. Past it, the page has no `numberMatched`.
    pub count_timeout: Option<std::time::Duration>,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            default_limit: 10,
            max_limit: 10_000,
            count_limit: 10_000,
            count_timeout: None,
        }
    }
}

/// Most positions accepted in an `intersects` geometry. Every candidate item is
/// tested against the whole geometry, so this bounds the work of one search.
pub const MAX_INTERSECTS_POSITIONS: usize = 10_000;

/// Most entries accepted in `ids` or `collections`.
pub const MAX_LIST_LEN: usize = 10_000;

/// The endpoint a search came through, because endpoints accept different parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `/search`.
    Search,
    /// `/collections/{id}/items`, with the collection id of the path.
    Items(&'a str),
}

/// Query parameters that clients send and that do not change the result:
/// `f` selects an encoding (JSON is the only one), and the CRS parameters are
/// accepted when they name WGS 84 longitude/latitude, the only CRS served.
const IGNORED_PARAMETERS: &[&str] = &["f"];
/// EPSG:4326 is not listed: its axis order is latitude, longitude.
const CRS84: &[&str] = &[
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "https://www.opengis.net/def/crs/OGC/1.3/CRS84",
];

/// A search before validation: each member as the client sent it.
#[derive(Debug, Default, Clone)]
pub struct RawSearch {
    /// `bbox` numbers.
    pub bbox: Option<Vec<f64>>,
    /// `intersects` GeoJSON geometry.
    pub intersects: Option<Value>,
    /// `datetime` text.
    pub datetime: Option<String>,
    /// `ids`.
    pub ids: Option<Vec<String>>,
    /// `collections`.
    pub collections: Option<Vec<String>>,
    /// `limit`, as given.
    pub limit: Option<String>,
    /// Pagination token.
    pub token: Option<String>,
    /// `filter`: cql2-text as a string, or cql2-json as an object (or as JSON text in a GET).
    pub filter: Option<Value>,
    /// The filter's language: `filter-lang`, or the method's default.
    pub filter_language: Option<Language>,
    /// `query` of the Query extension: property name to operators and values.
    pub query: Option<Value>,
    /// Members to return, from the Fields extension.
    pub fields: Option<Fields>,
    /// Sort fields, from the Sort extension.
    pub sortby: Option<Vec<RequestedSort>>,
    /// Free-text query.
    pub q: Option<TextQuery>,
}

impl RawSearch {
    /// Tells whether the search has a CQL2 filter or a Query extension `query`.
    pub fn has_filter(&self) -> bool {
        self.filter.is_some() || self.query.is_some()
    }

    /// Parses the CQL2 filter and the Query extension's `query`, joined with
    /// AND when both are given. `types` are the stored property types, which
    /// the `query` values are read against.
    pub fn filter_expression(&self, types: &PropertyTypes) -> Result<Option<cql2::Expr>, Error> {
        let filter = match &self.filter {
            Some(filter) => {
                let language = self.filter_language.unwrap_or(match filter {
                    Value::String(_) => Language::Text,
                    _ => Language::Json,
                });
                Some(crate::filter::parse(filter, language)?)
            }
            None => None,
        };
        let query = self
            .query
            .as_ref()
            .map(|query| crate::filter::from_query(query, types))
            .transpose()?;
        Ok(match (filter, query) {
            (Some(filter), Some(query)) => Some(cql2::Expr::Operation {
                op: "and".into(),
                args: vec![Box::new(filter), Box::new(query)],
            }),
            (filter, query) => filter.or(query),
        })
    }
}

/// Reads a GET query string into a [`RawSearch`]. Unknown parameters are a 400
/// that names them.
pub fn from_query_string(query: &str, endpoint: Endpoint<'_>) -> Result<RawSearch, Error> {
    let mut seen = std::collections::HashSet::new();
    for (key, _) in form_urlencoded::parse(query.as_bytes()) {
        if !seen.insert(key.to_string()) {
            return Err(Error::InvalidParameter(format!(
                "parameter '{key}' is given more than once; give it once, with a comma-separated list where it takes several values"
            )));
        }
    }
    let get: GetSearch = serde_urlencoded::from_str(query)
        .map_err(|e| Error::InvalidParameter(format!("invalid query string: {e}")))?;

    let mut unknown = Vec::new();
    let mut token = None;
    let mut query = None;
    let mut q = None;
    for (key, value) in &get.items.additional_fields {
        match key.as_str() {
            "token" => token = Some(value.clone()),
            "q" => q = Some(crate::text::from_query(value)?),
            "query" => {
                query = Some(serde_json::from_str(value).map_err(|e| {
                    Error::parameter("query", value, format!("expected a JSON object ({e})"))
                })?);
            }
            "crs" | "bbox-crs" => check_crs(key, value)?,
            k if IGNORED_PARAMETERS.contains(&k) => {}
            k => unknown.push(k.to_string()),
        }
    }
    if let Some(crs) = get.items.filter_crs.as_deref() {
        crate::filter::check_crs(crs)?;
    }
    // GET filters default to cql2-text.
    let filter_language = Some(match get.items.filter_lang.as_deref() {
        Some(text) => Language::parse(text)?,
        None => Language::Text,
    });
    let filter = get.items.filter.clone().map(Value::String);
    let fields = get.items.fields.as_deref().map(Fields::from_query).transpose()?;
    let sortby = get
        .items
        .sortby
        .as_deref()
        .filter(|text| !text.trim().is_empty())
        .map(crate::sort::from_query)
        .transpose()?;
    if let Endpoint::Items(collection) = endpoint {
        // pystac-client repeats the path's collection as `collections=`; that one is harmless.
        let other_collection = get.collections.as_deref().is_some_and(|c| c != collection);
        for (present, name) in [
            (get.intersects.is_some(), "intersects"),
            (get.ids.is_some(), "ids"),
            (other_collection, "collections"),
        ] {
            if present {
                unknown.push(name.to_string());
            }
        }
    }
    reject_unknown(&unknown, endpoint)?;

    let bbox = get
        .items
        .bbox
        .as_deref()
        .map(|text| {
            text.split(',')
                .map(|part| {
                    part.trim().parse::<f64>().map_err(|_| {
                        Error::parameter("bbox", text, "expected 4 or 6 comma-separated numbers")
                    })
                })
                .collect::<Result<Vec<f64>, Error>>()
        })
        .transpose()?;
    let intersects = get
        .intersects
        .as_deref()
        .map(|text| {
            serde_json::from_str::<Value>(text).map_err(|e| {
                Error::parameter("intersects", text, format!("not a JSON GeoJSON geometry ({e})"))
            })
        })
        .transpose()?;
    Ok(RawSearch {
        bbox,
        intersects,
        datetime: get.items.datetime,
        ids: get.ids.as_deref().map(split_list),
        collections: get.collections.as_deref().map(split_list),
        limit: get.items.limit,
        token,
        filter,
        filter_language,
        query,
        fields,
        sortby,
        q,
    })
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn check_crs(key: &str, value: &str) -> Result<(), Error> {
    if CRS84.contains(&value) {
        Ok(())
    } else {
        Err(Error::parameter(
            key,
            value,
            "only WGS 84 longitude/latitude is served: use http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        ))
    }
}

fn reject_unknown(unknown: &[String], endpoint: Endpoint<'_>) -> Result<(), Error> {
    if unknown.is_empty() {
        return Ok(());
    }
    let allowed = match endpoint {
        Endpoint::Search => {
            "bbox, intersects, datetime, ids, collections, limit, token, filter, filter-lang, filter-crs, f"
        }
        Endpoint::Items(_) => "bbox, datetime, limit, token, filter, filter-lang, filter-crs, f",
    };
    Err(Error::UnknownParameter(format!(
        "unknown query parameter(s): {}; this endpoint accepts {allowed}",
        unknown.join(", ")
    )))
}

/// Reads a POST `/search` body into a [`RawSearch`].
pub fn from_body(body: &Map<String, Value>) -> Result<RawSearch, Error> {
    let mut raw = RawSearch::default();
    for (key, value) in body {
        if value.is_null() && key == "fields" {
            return Err(Error::parameter(
                "fields",
                value,
                "expected an object with include and exclude arrays; leave fields out to get whole items",
            ));
        }
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "bbox" => raw.bbox = Some(number_list(value)?),
            "intersects" => raw.intersects = Some(value.clone()),
            "datetime" => raw.datetime = Some(string_member(key, value)?),
            "ids" => raw.ids = Some(string_list(key, value)?),
            "collections" => raw.collections = Some(string_list(key, value)?),
            "limit" => {
                raw.limit = Some(match value {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    other => return Err(Error::parameter("limit", other, "expected a positive integer")),
                })
            }
            "token" => raw.token = Some(string_member(key, value)?),
            "filter" => raw.filter = Some(value.clone()),
            "query" => raw.query = Some(value.clone()),
            "fields" => raw.fields = Some(Fields::from_body(value)?),
            "sortby" => raw.sortby = Some(crate::sort::from_body(value)?),
            "q" => raw.q = Some(crate::text::from_body(value)?),
            "filter-lang" => raw.filter_language = Some(Language::parse(&string_member(key, value)?)?),
            "filter-crs" => crate::filter::check_crs(&string_member(key, value)?)?,
            // Other members, such as `conf` or vendor hints, do not select items. They are
            // ignored, as the STAC API allows, and kept in the body that `next` links send back.
            _ => {}
        }
    }
    Ok(raw)
}

fn number_list(value: &Value) -> Result<Vec<f64>, Error> {
    let invalid = || Error::parameter("bbox", value, "expected an array of 4 or 6 numbers");
    value
        .as_array()
        .ok_or_else(invalid)?
        .iter()
        .map(|v| v.as_f64().ok_or_else(invalid))
        .collect()
}

fn string_member(key: &str, value: &Value) -> Result<String, Error> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::parameter(key, value, "expected a string"))
}

/// Reads an array of strings. A single string is read as a list of one,
/// because some clients send it so (stac-api-validator 0.6.8 does for
/// `collections` in its POST query and sort tests).
fn string_list(key: &str, value: &Value) -> Result<Vec<String>, Error> {
    if let Value::String(single) = value {
        return Ok(vec![single.clone()]);
    }
    let invalid = || Error::parameter(key, value, "expected an array of strings");
    value
        .as_array()
        .ok_or_else(invalid)?
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(invalid))
        .collect()
}

/// Validates a raw search into an [`ItemQuery`]. The pagination token is left
/// to the caller, which needs the validated query to check it.
pub fn validate(raw: &RawSearch, limits: &SearchLimits) -> Result<ItemQuery, Error> {
    if raw.bbox.is_some() && raw.intersects.is_some() {
        return Err(Error::InvalidParameter(
            "'bbox' and 'intersects' cannot be used together; give one of them".into(),
        ));
    }
    let bboxes = match &raw.bbox {
        Some(numbers) => parse_bbox(numbers)?,
        None => Vec::new(),
    };
    let intersects = match &raw.intersects {
        Some(value) => {
            let geometry = parse_geojson(value, "intersects").map_err(Error::InvalidParameter)?;
            let positions = geometry.coords_count();
            if positions > MAX_INTERSECTS_POSITIONS {
                return Err(Error::InvalidParameter(format!(
                    "'intersects' has {positions} positions; at most {MAX_INTERSECTS_POSITIONS} are accepted, \
                     so simplify the geometry"
                )));
            }
            let bbox = envelope(&geometry)
                .ok_or_else(|| Error::parameter("intersects", value, "the geometry is empty"))?;
            Some(SpatialFilter {
                geometry,
                geojson: value.to_string(),
                bbox,
            })
        }
        None => None,
    };
    let datetime = raw
        .datetime
        .as_deref()
        .map(|text| crate::datetime::parse_interval(text).map_err(|e| Error::parameter("datetime", text, e)))
        .transpose()?;
    let limit = match raw.limit.as_deref() {
        None => limits.default_limit,
        Some(text) => {
            let value: i64 = text
                .trim()
                .parse()
                .map_err(|_| Error::parameter("limit", text, "expected an integer from 1 upwards"))?;
            if value < 1 {
                return Err(Error::parameter("limit", text, "must be at least 1"));
            }
            usize::try_from(value).unwrap_or(usize::MAX).min(limits.max_limit)
        }
    };
    Ok(ItemQuery {
        collections: dedup_list("collections", raw.collections.as_deref())?,
        ids: dedup_list("ids", raw.ids.as_deref())?,
        bboxes,
        intersects,
        datetime,
        limit,
        cursor: None,
        count_limit: limits.count_limit,
        count_timeout: limits.count_timeout,
        filter: None,
        text: raw.q.clone(),
        sort: Vec::new(),
    })
}

fn dedup_list(name: &str, values: Option<&[String]>) -> Result<Vec<String>, Error> {
    let Some(values) = values else {
        return Ok(Vec::new());
    };
    if values.iter().any(|v| v.contains('\0')) {
        return Err(Error::InvalidParameter(format!(
            "'{name}' contains a NUL character (U+0000), which no id can contain"
        )));
    }
    let mut list: Vec<String> = values.to_vec();
    list.sort();
    list.dedup();
    if list.len() > MAX_LIST_LEN {
        return Err(Error::InvalidParameter(format!(
            "'{name}' has {} entries; at most {MAX_LIST_LEN} are accepted",
            list.len()
        )));
    }
    if list.is_empty() {
        return Err(Error::InvalidParameter(format!(
            "'{name}' is empty; leave it out to match every {}",
            if name == "ids" { "id" } else { "collection" }
        )));
    }
    Ok(list)
}

/// Checks a bbox and splits one that crosses the antimeridian (west > east)
/// into two boxes, one on each side.
pub fn parse_bbox(numbers: &[f64]) -> Result<Vec<[f64; 4]>, Error> {
    let text = numbers
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let [west, south, east, north] = match *numbers {
        [w, s, e, n] => [w, s, e, n],
        [w, s, _, e, n, _] => [w, s, e, n],
        _ => {
            return Err(Error::parameter(
                "bbox",
                &text,
                format!("expected 4 or 6 numbers, found {}", numbers.len()),
            ));
        }
    };
    if numbers.iter().any(|n| !n.is_finite()) {
        return Err(Error::parameter("bbox", &text, "numbers must be finite"));
    }
    if !(-180.0..=180.0).contains(&west) || !(-180.0..=180.0).contains(&east) {
        return Err(Error::parameter(
            "bbox",
            &text,
            "longitudes must be within -180..180",
        ));
    }
    if !(-90.0..=90.0).contains(&south) || !(-90.0..=90.0).contains(&north) {
        return Err(Error::parameter(
            "bbox",
            &text,
            "latitudes must be within -90..90",
        ));
    }
    if south > north {
        return Err(Error::parameter(
            "bbox",
            &text,
            "the south edge is north of the north edge",
        ));
    }
    if let [_, _, min_z, _, _, max_z] = *numbers
        && min_z > max_z
    {
        return Err(Error::parameter(
            "bbox",
            &text,
            "the minimum elevation is above the maximum",
        ));
    }
    if west > east {
        Ok(vec![[west, south, 180.0, north], [-180.0, south, east, north]])
    } else {
        Ok(vec![[west, south, east, north]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> SearchLimits {
        SearchLimits::default()
    }

    #[test]
    fn get_parses_every_parameter() {
        let raw = from_query_string(
            "bbox=-10,-5,10,5&datetime=2021-01-01T00:00:00Z/..&ids=a,b&collections=c&limit=5&token=t&f=json",
            Endpoint::Search,
        )
        .unwrap();
        assert_eq!(raw.bbox, Some(vec![-10.0, -5.0, 10.0, 5.0]));
        assert_eq!(raw.ids, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(raw.token.as_deref(), Some("t"));
        let query = validate(&raw, &limits()).unwrap();
        assert_eq!(query.limit, 5);
        assert_eq!(query.collections, vec!["c"]);
    }

    #[test]
    fn unknown_parameter_is_named() {
        let error = from_query_string("limit=2&colections=a", Endpoint::Search).unwrap_err();
        assert!(matches!(error, Error::UnknownParameter(_)));
        assert!(error.to_string().contains("colections"));
        let error = from_query_string("ids=a", Endpoint::Items("c")).unwrap_err();
        assert!(error.to_string().contains("ids"));
        assert!(from_query_string("collections=c", Endpoint::Items("c")).is_ok());
        assert!(from_query_string("collections=d", Endpoint::Items("c")).is_err());
    }

    #[test]
    fn limit_is_clamped_and_checked() {
        let raw = RawSearch {
            limit: Some("100000".into()),
            ..RawSearch::default()
        };
        assert_eq!(validate(&raw, &limits()).unwrap().limit, 10_000);
        for bad in ["0", "-1", "ten", "1.5"] {
            let raw = RawSearch {
                limit: Some(bad.into()),
                ..RawSearch::default()
            };
            let error = validate(&raw, &limits()).unwrap_err();
            assert!(error.to_string().contains("limit"), "{bad}: {error}");
        }
    }

    #[test]
    fn bbox_checks_and_antimeridian_split() {
        assert_eq!(parse_bbox(&[170.0, -20.0, -170.0, -10.0]).unwrap().len(), 2);
        assert_eq!(
            parse_bbox(&[0.0, 0.0, 0.0, 1.0, 1.0, 10.0]).unwrap(),
            vec![[0.0, 0.0, 1.0, 1.0]]
        );
        assert_eq!(
            parse_bbox(&[1.0, 1.0, 1.0, 1.0]).unwrap().len(),
            1,
            "a point bbox is allowed"
        );
        for bad in [
            vec![0.0, 0.0, 1.0],
            vec![0.0, 10.0, 1.0, 5.0],
            vec![0.0, 0.0, 200.0, 1.0],
            vec![0.0, -91.0, 1.0, 1.0],
        ] {
            assert!(parse_bbox(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn post_body_types_are_checked() {
        let body = json!({"bbox": "1,2,3,4"});
        assert!(from_body(body.as_object().unwrap()).is_err());
        let body = json!({"collections": 5});
        assert!(
            from_body(body.as_object().unwrap())
                .unwrap_err()
                .to_string()
                .contains("collections")
        );
        // A single string is read as a list of one.
        let body = json!({"collections": "naip"});
        let raw = from_body(body.as_object().unwrap()).unwrap();
        assert_eq!(raw.collections, Some(vec!["naip".to_string()]));
        let body = json!({"bbox": [0, 0, 1, 1], "intersects": {"type": "Point", "coordinates": [0, 0]}});
        let raw = from_body(body.as_object().unwrap()).unwrap();
        assert!(validate(&raw, &limits()).is_err(), "bbox with intersects");
    }

    #[test]
    fn huge_intersects_is_rejected() {
        let points: Vec<[f64; 2]> = (0..10_001).map(|i| [f64::from(i % 180), 0.0]).collect();
        let raw = RawSearch {
            intersects: Some(json!({"type": "MultiPoint", "coordinates": points})),
            ..RawSearch::default()
        };
        let error = validate(&raw, &limits()).unwrap_err();
        assert!(error.to_string().contains("at most 10000"), "{error}");
    }

    #[test]
    fn long_values_are_cut_in_errors() {
        let long = "9".repeat(5000);
        let error = Error::parameter("bbox", &long, "bad").to_string();
        assert!(error.len() < 400, "{}", error.len());
    }

    #[test]
    fn only_crs84_is_accepted() {
        let crs84 = "bbox-crs=http%3A%2F%2Fwww.opengis.net%2Fdef%2Fcrs%2FOGC%2F1.3%2FCRS84";
        assert!(from_query_string(crs84, Endpoint::Search).is_ok());
        let epsg = "bbox-crs=http%3A%2F%2Fwww.opengis.net%2Fdef%2Fcrs%2FEPSG%2F0%2F4326";
        assert!(from_query_string(epsg, Endpoint::Search).is_err());
    }

    #[test]
    fn repeated_parameter_is_rejected() {
        assert!(from_query_string("collections=a&collections=b", Endpoint::Search).is_err());
    }

    #[test]
    fn empty_lists_are_rejected() {
        let raw = from_query_string("ids=", Endpoint::Search).unwrap();
        assert!(validate(&raw, &limits()).is_err());
    }
}
