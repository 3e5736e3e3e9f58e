//! Collection search on `GET /collections`: `bbox`, `datetime`, `q`,
//! `filter`, `sortby`, `fields`, `limit` and paging.
//!
//! A catalog has one collection per dataset, so thousands rather than
//! millions, and the list is already read whole for `/collections`. The
//! search therefore runs in memory over the stored documents, the same way
//! on both stores: CQL2 through the `cql2` crate's evaluator, free text with
//! the word matching of [`crate::text`], and keyset paging on the sort values
//! and the id.

use std::cmp::Ordering;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::sort::RequestedSort;
use crate::store::StoredCollection;
use crate::text::{TextQuery, words};

/// Conformance classes of collection search.
pub const CONFORMANCE: &[&str] = &[
    "https://api.stacspec.org/v1.0.0-rc.1/collection-search",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/simple-query",
    "https://api.stacspec.org/v1.0.0-rc.1/collection-search#filter",
    "https://api.stacspec.org/v1.0.0-rc.1/collection-search#fields",
    "https://api.stacspec.org/v1.1.0/collection-search#sort",
];

/// A validated collection search.
#[derive(Debug, Clone, Default)]
pub struct CollectionSearch {
    /// Boxes `[west, south, east, north]`; a collection matches when its extent intersects any.
    pub bboxes: Vec<[f64; 4]>,
    /// Interval the temporal extent must overlap, in microseconds; `None` ends are open.
    pub datetime: Option<(Option<i64>, Option<i64>)>,
    /// Free text over id, title, description and keywords.
    pub text: Option<TextQuery>,
    /// A CQL2 filter on the collection documents.
    pub filter: Option<cql2::Expr>,
    /// Sort fields: top-level members of the collection documents.
    pub sortby: Vec<RequestedSort>,
    /// Members to keep: include and exclude paths.
    pub fields: Option<(Vec<String>, Vec<String>)>,
    /// Page size; `None` returns every match.
    pub limit: Option<usize>,
    /// The position after which the page starts.
    pub after: Option<(Value, String)>,
}

/// One page of collections.
pub struct CollectionPage {
    /// The collections of the page, as documents without their links.
    pub collections: Vec<(StoredCollection, Option<Map<String, Value>>)>,
    /// How many collections match in all.
    pub matched: usize,
    /// The token of the next page, when more follow.
    pub next: Option<String>,
}

/// Query parameters that `/collections` accepts.
const PARAMETERS: &[&str] = &[
    "bbox",
    "datetime",
    "q",
    "filter",
    "filter-lang",
    "sortby",
    "fields",
    "limit",
    "token",
    "f",
];

/// Reads a GET query string. `max_limit` bounds the page size.
pub fn from_query_string(query: &str, max_limit: usize) -> Result<CollectionSearch, Error> {
    let mut search = CollectionSearch::default();
    let mut filter_language = crate::filter::Language::Text;
    let mut filter_text = None;
    let mut unknown = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.into_owned();
        match key.as_ref() {
            "bbox" => {
                let numbers = value
                    .split(',')
                    .map(|n| n.trim().parse::<f64>())
                    .collect::<Result<Vec<f64>, _>>()
                    .map_err(|_| {
                        Error::parameter("bbox", &value, "expected 4 or 6 comma-separated numbers")
                    })?;
                search.bboxes = crate::search::parse_bbox(&numbers)?;
            }
            "datetime" => {
                search.datetime = Some(
                    crate::datetime::parse_interval(&value)
                        .map_err(|e| Error::parameter("datetime", &value, e))?,
                );
            }
            "q" => search.text = Some(crate::text::from_query(&value)?),
            "filter" => filter_text = Some(value),
            "filter-lang" => filter_language = crate::filter::Language::parse(&value)?,
            "sortby" => search.sortby = crate::sort::from_query(&value)?,
            "fields" => {
                let (mut include, mut exclude) = (Vec::new(), Vec::new());
                for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    match part.strip_prefix('-') {
                        Some(path) => exclude.push(path.to_string()),
                        None => include.push(part.trim_start_matches('+').to_string()),
                    }
                }
                search.fields = Some((include, exclude));
            }
            "limit" => {
                let limit: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| Error::parameter("limit", &value, "expected an integer from 1 upwards"))?;
                if limit < 1 {
                    return Err(Error::parameter("limit", &value, "must be at least 1"));
                }
                search.limit = Some(usize::try_from(limit).unwrap_or(usize::MAX).min(max_limit));
            }
            "token" => search.after = Some(decode_token(&value)?),
            "f" => {}
            other => unknown.push(other.to_string()),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::UnknownParameter(format!(
            "unknown query parameter(s): {}; /collections accepts {}",
            unknown.join(", "),
            PARAMETERS.join(", ")
        )));
    }
    if let Some(text) = filter_text {
        search.filter = Some(crate::filter::parse(&Value::String(text), filter_language)?);
    }
    Ok(search)
}

fn decode_token(token: &str) -> Result<(Value, String), Error> {
    let invalid = || Error::parameter("token", token, "use the 'next' link of a page as it was returned");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    match value {
        Value::Array(mut parts) if parts.len() == 2 => {
            let id = parts
                .pop()
                .and_then(|v| v.as_str().map(str::to_string))
                .ok_or_else(invalid)?;
            Ok((parts.remove(0), id))
        }
        _ => Err(invalid()),
    }
}

fn encode_token(key: &Value, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(json!([key, id]).to_string())
}

/// Reads the intervals of a collection's temporal extent, in microseconds.
fn intervals(document: &Value) -> Vec<(Option<i64>, Option<i64>)> {
    let parse = |v: &Value| v.as_str().and_then(|t| crate::datetime::parse_instant(t).ok());
    document["extent"]["temporal"]["interval"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|pair| pair.as_array())
                .filter(|pair| pair.len() == 2)
                .map(|pair| (parse(&pair[0]), parse(&pair[1])))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the boxes of a collection's spatial extent, split at the antimeridian.
fn boxes(document: &Value) -> Vec<[f64; 4]> {
    let mut out = Vec::new();
    for bbox in document["extent"]["spatial"]["bbox"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let numbers: Vec<f64> = bbox
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .collect();
        let [west, south, east, north] = match numbers.as_slice() {
            [w, s, e, n] | [w, s, _, e, n, _] => [*w, *s, *e, *n],
            _ => continue,
        };
        if west > east {
            out.push([west, south, 180.0, north]);
            out.push([-180.0, south, east, north]);
        } else {
            out.push([west, south, east, north]);
        }
    }
    out
}

fn overlaps(a: &[f64; 4], b: &[f64; 4]) -> bool {
    a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

fn searchable_words(document: &Value) -> Vec<String> {
    let mut text = String::new();
    for key in ["id", "title", "description"] {
        if let Some(value) = document[key].as_str() {
            text.push_str(value);
            text.push(' ');
        }
    }
    for keyword in document["keywords"].as_array().into_iter().flatten() {
        if let Some(keyword) = keyword.as_str() {
            text.push_str(keyword);
            text.push(' ');
        }
    }
    words(&text)
}

/// Orders two sort values: numbers, then strings, then missing values last.
fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Value::Number(_), _) => Ordering::Less,
        (_, Value::Number(_)) => Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

fn sort_key(document: &Value, sortby: &[RequestedSort]) -> Value {
    Value::Array(
        sortby
            .iter()
            .map(|s| match &document[s.field.as_str()] {
                value @ (Value::Number(_) | Value::String(_)) => value.clone(),
                _ => Value::Null,
            })
            .collect(),
    )
}

fn compare_keys(a: &Value, b: &Value, sortby: &[RequestedSort]) -> Ordering {
    let (a, b) = (a.as_array(), b.as_array());
    for (n, field) in sortby.iter().enumerate() {
        let x = a.and_then(|a| a.get(n)).unwrap_or(&Value::Null);
        let y = b.and_then(|b| b.get(n)).unwrap_or(&Value::Null);
        let mut ordering = compare(x, y);
        // Missing values stay last in both directions.
        if field.descending && !x.is_null() && !y.is_null() {
            ordering = ordering.reverse();
        }
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// Runs a search over the stored collections.
pub fn run(search: &CollectionSearch, collections: Vec<StoredCollection>) -> Result<CollectionPage, Error> {
    // Parsing the stored documents costs more than the rest of a plain listing,
    // so only a search that reads them parses them.
    let reads_documents = !search.bboxes.is_empty()
        || search.datetime.is_some()
        || search.text.is_some()
        || search.filter.is_some()
        || !search.sortby.is_empty()
        || search.fields.is_some();
    let mut matches = Vec::new();
    for collection in collections {
        if !reads_documents {
            matches.push((Value::Array(Vec::new()), collection, Value::Null));
            continue;
        }
        let document: Value = serde_json::from_str(&collection.content).map_err(|e| {
            Error::Internal(format!("stored collection '{}' is not JSON: {e}", collection.id))
        })?;
        if !search.bboxes.is_empty() {
            let extent = boxes(&document);
            if !extent
                .iter()
                .any(|e| search.bboxes.iter().any(|b| overlaps(e, b)))
            {
                continue;
            }
        }
        if let Some((start, end)) = search.datetime {
            let hit = intervals(&document).iter().any(|(from, to)| {
                end.is_none_or(|end| from.is_none_or(|from| from <= end))
                    && start.is_none_or(|start| to.is_none_or(|to| to >= start))
            });
            if !hit {
                continue;
            }
        }
        if let Some(text) = &search.text
            && !text.matches(&searchable_words(&document))
        {
            continue;
        }
        if let Some(filter) = &search.filter {
            let hit = filter
                .clone()
                .matches(Some(&document))
                .map_err(|e| Error::InvalidParameter(format!("invalid value for 'filter': {e}")))?;
            if !hit {
                continue;
            }
        }
        let key = sort_key(&document, &search.sortby);
        matches.push((key, collection, document));
    }
    matches.sort_by(|a, b| compare_keys(&a.0, &b.0, &search.sortby).then_with(|| a.1.id.cmp(&b.1.id)));
    let matched = matches.len();
    if let Some((key, id)) = &search.after {
        matches.retain(|(k, collection, _)| {
            compare_keys(k, key, &search.sortby).then_with(|| collection.id.as_str().cmp(id))
                == Ordering::Greater
        });
    }
    let limit = search.limit.unwrap_or(usize::MAX);
    let next = (matches.len() > limit).then(|| {
        let (key, collection, _) = &matches[limit - 1];
        encode_token(key, &collection.id)
    });
    matches.truncate(limit);
    let collections = matches
        .into_iter()
        .map(|(_, collection, document)| {
            let projected = search
                .fields
                .as_ref()
                .map(|(include, exclude)| project(&document, include, exclude));
            (collection, projected)
        })
        .collect();
    Ok(CollectionPage {
        collections,
        matched,
        next,
    })
}

/// Keeps the included members (all when none are named) plus `id`, then removes the excluded ones.
fn project(document: &Value, include: &[String], exclude: &[String]) -> Map<String, Value> {
    let source = document.as_object().cloned().unwrap_or_default();
    let mut out = if include.is_empty() {
        source.clone()
    } else {
        let mut out = Map::new();
        for path in include
            .iter()
            .map(String::as_str)
            .chain(["id", "type", "stac_version"])
        {
            let parts: Vec<String> = path.split('.').map(str::to_string).collect();
            crate::fields::copy_path(&source, &mut out, &parts);
        }
        out
    };
    for path in exclude {
        let parts: Vec<String> = path.split('.').map(str::to_string).collect();
        crate::fields::remove_path(&mut out, &parts);
    }
    out
}
