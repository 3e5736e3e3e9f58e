//! The framework-free part of the API: documents, links, conformance and
//! pages, built from store records and a base URL.
//!
//! Stored documents are sent without a decode and re-encode per item: the
//! store keeps each item as a JSON object without its `links`, and this module
//! splices the server's links in front of the stored members.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Map, Value, json};

use crate::fields::Fields;
use crate::store::{ItemPage, StoredCollection, StoredItem};

/// Media type of GeoJSON documents (items and item collections).
pub const GEOJSON: &str = "application/geo+json";
/// Media type of JSON Schema documents, such as the queryables.
pub const SCHEMA_JSON: &str = "application/schema+json";

/// Link relation of the queryables (OGC API Features Part 3).
pub const QUERYABLES_REL: &str = "http://www.opengis.net/def/rel/ogc/1.0/queryables";

/// Builds a queryables document: the item columns, then every stored
/// property with its JSON types, with the operator's schemas taking precedence.
pub fn queryables(
    id: &str,
    types: &crate::filter::PropertyTypes,
    extra: Option<&Map<String, Value>>,
) -> String {
    let mut properties = Map::new();
    properties.insert("id".into(), json!({"title": "Item ID", "type": "string"}));
    properties.insert(
        "collection".into(),
        json!({"title": "Collection ID", "type": "string"}),
    );
    properties.insert(
        "geometry".into(),
        json!({"title": "Footprint", "$ref": "https://geojson.org/schema/Geometry.json"}),
    );
    for name in ["datetime", "start_datetime", "end_datetime"] {
        properties.insert(name.into(), json!({"type": "string", "format": "date-time"}));
    }
    for (name, kinds) in types {
        if properties.contains_key(name.as_str()) {
            continue;
        }
        let kinds: Vec<&String> = kinds.iter().filter(|k| k.as_str() != "null").collect();
        let schema = match kinds.as_slice() {
            [] => json!({}),
            [single] => json!({"type": single}),
            several => json!({"type": several}),
        };
        properties.insert(name.clone(), schema);
    }
    if let Some(extra) = extra {
        for (name, schema) in extra {
            properties.insert(name.clone(), schema.clone());
        }
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": id,
        "type": "object",
        "title": "Queryables",
        "properties": properties,
        // Filters reject properties that are not listed.
        "additionalProperties": false,
    })
    .to_string()
}

/// Builds a sortables document: the item columns, then every stored
/// property whose values are all numbers or all strings.
pub fn sortables(id: &str, types: &crate::filter::PropertyTypes) -> String {
    let mut properties = Map::new();
    properties.insert("id".into(), json!({"title": "Item ID", "type": "string"}));
    properties.insert(
        "collection".into(),
        json!({"title": "Collection ID", "type": "string"}),
    );
    for name in ["datetime", "start_datetime", "end_datetime"] {
        properties.insert(name.into(), json!({"type": "string", "format": "date-time"}));
    }
    for (name, kinds) in types {
        if properties.contains_key(name.as_str()) {
            continue;
        }
        match crate::sort::sortable_kind(kinds) {
            Some(crate::filter::Kind::Number) => properties.insert(name.clone(), json!({"type": "number"})),
            Some(_) => properties.insert(name.clone(), json!({"type": "string"})),
            None => None,
        };
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": id,
        "type": "object",
        "title": "Sortables",
        "properties": properties,
        "additionalProperties": false,
    })
    .to_string()
}

/// Media type of the OpenAPI definition.
pub const OPENAPI: &str = "application/vnd.oai.openapi+json;version=3.0";

/// Conformance classes this server implements.
pub const CONFORMANCE: &[&str] = &[
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
];

/// Characters escaped in a path segment: everything but RFC 3986 unreserved
/// characters, so ids with `/`, `?`, `#` or spaces round-trip.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b':')
    .add(b'@')
    .add(b'&')
    .add(b'=')
    .add(b'+')
    .add(b'$')
    .add(b',')
    .add(b';')
    .add(b'!')
    .add(b'\'')
    .add(b'(')
    .add(b')')
    .add(b'*');

/// Percent-encodes one URL path segment.
pub fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// Descriptive fields of the landing page.
#[derive(Debug, Clone)]
pub struct CatalogInfo {
    /// Catalog id.
    pub id: String,
    /// Catalog title.
    pub title: String,
    /// Catalog description.
    pub description: String,
}

/// Absolute URLs of the API, from the public base URL (no trailing slash).
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
}

impl Urls {
    /// Creates URLs under `base`, such as `https://example.com/stac`.
    pub fn new(base: &str) -> Self {
        Urls {
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// Returns the landing page URL, with its trailing slash.
    pub fn root(&self) -> String {
        format!("{}/", self.base)
    }

    /// Returns a URL under the base; `path` starts with `/`.
    pub fn path(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `/collections/{id}`.
    pub fn collection(&self, id: &str) -> String {
        format!("{}/collections/{}", self.base, segment(id))
    }

    /// `/collections/{id}/queryables`.
    pub fn queryables(&self, collection: &str) -> String {
        format!("{}/queryables", self.collection(collection))
    }

    /// `/collections/{id}/items`.
    pub fn items(&self, collection: &str) -> String {
        format!("{}/items", self.collection(collection))
    }

    /// `/collections/{id}/items/{item}`.
    pub fn item(&self, collection: &str, id: &str) -> String {
        format!("{}/{}", self.items(collection), segment(id))
    }
}

fn link(rel: &str, href: String, media_type: &str) -> Value {
    json!({"rel": rel, "href": href, "type": media_type})
}

fn titled(mut link: Value, title: &str) -> Value {
    link["title"] = Value::String(title.to_string());
    link
}

/// Builds the landing page.
pub fn landing_page(
    urls: &Urls,
    info: &CatalogInfo,
    conformance: &[&str],
    collections: &[StoredCollection],
) -> Value {
    let mut links = vec![
        link("self", urls.root(), "application/json"),
        link("root", urls.root(), "application/json"),
        json!({"rel": "conformance", "href": urls.path("/conformance"), "type": "application/json",
            "title": "Conformance classes"}),
        json!({"rel": "data", "href": urls.path("/collections"), "type": "application/json",
            "title": "Collections"}),
        json!({"rel": "search", "href": urls.path("/search"), "type": GEOJSON, "method": "GET",
            "title": "Item search"}),
        json!({"rel": "search", "href": urls.path("/search"), "type": GEOJSON, "method": "POST",
            "title": "Item search"}),
        json!({"rel": "service-desc", "href": urls.path("/api"), "type": OPENAPI,
            "title": "OpenAPI definition"}),
        json!({"rel": "service-doc", "href": urls.path("/api.html"), "type": "text/html",
            "title": "API documentation"}),
        json!({"rel": QUERYABLES_REL, "href": urls.path("/queryables"), "type": SCHEMA_JSON,
            "title": "Properties that filters can use"}),
    ];
    for collection in collections {
        let title = serde_json::from_str::<Value>(&collection.content)
            .ok()
            .and_then(|v| v.get("title").cloned());
        let mut child = link("child", urls.collection(&collection.id), "application/json");
        if let Some(title) = title {
            child["title"] = title;
        }
        links.push(child);
    }
    json!({
        "type": "Catalog",
        "id": info.id,
        "title": info.title,
        "description": info.description,
        "stac_version": "1.0.0",
        "conformsTo": conformance,
        "links": links,
    })
}

/// Joins server links and kept links into one JSON array text.
fn links_array(server: &[Value], extra: &str) -> String {
    let mut out = String::with_capacity(512 + extra.len());
    out.push('[');
    for (i, link) in server.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&link.to_string());
    }
    let extra_inner = extra.trim().trim_start_matches('[').trim_end_matches(']').trim();
    if !extra_inner.is_empty() {
        out.push(',');
        out.push_str(extra_inner);
    }
    out.push(']');
    out
}

/// Puts `"links": [...]` in front of a stored JSON object's members.
fn splice_links(content: &str, links: &str, out: &mut String) {
    out.push_str("{\"links\":");
    out.push_str(links);
    let rest = content.trim_start().strip_prefix('{').unwrap_or("}");
    if !rest.trim_start().starts_with('}') {
        out.push(',');
    }
    out.push_str(rest);
}

/// Writes one collection document with its links.
pub fn write_collection(urls: &Urls, collection: &StoredCollection, out: &mut String) {
    let server = [
        titled(
            link("self", urls.collection(&collection.id), "application/json"),
            "This collection",
        ),
        titled(link("root", urls.root(), "application/json"), "Landing page"),
        titled(link("parent", urls.root(), "application/json"), "Landing page"),
        titled(
            link("items", urls.items(&collection.id), GEOJSON),
            "Items of this collection",
        ),
        titled(
            link(QUERYABLES_REL, urls.queryables(&collection.id), SCHEMA_JSON),
            "Properties that filters can use",
        ),
    ];
    splice_links(
        &collection.content,
        &links_array(&server, &collection.extra_links),
        out,
    );
}

/// Builds a page of a collection search: the collections (projected when
/// `fields` was given), the page links and the counts.
pub fn collection_page(
    urls: &Urls,
    page: &crate::collection_search::CollectionPage,
    next: Option<String>,
) -> String {
    let mut out = String::with_capacity(4096 * (page.collections.len() + 1));
    out.push_str("{\"collections\":[");
    for (i, (collection, projected)) in page.collections.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match projected {
            Some(members) => {
                let projected = StoredCollection {
                    content: Value::Object(members.clone()).to_string(),
                    ..collection.clone()
                };
                write_collection(urls, &projected, &mut out);
            }
            None => write_collection(urls, collection, &mut out),
        }
    }
    out.push_str("],\"links\":");
    let mut links = vec![
        link("self", urls.path("/collections"), "application/json"),
        link("root", urls.root(), "application/json"),
        link("parent", urls.root(), "application/json"),
    ];
    if let Some(next) = next {
        links.push(link("next", next, "application/json"));
    }
    out.push_str(&Value::Array(links).to_string());
    out.push_str(&format!(
        ",\"numberMatched\":{},\"numberReturned\":{}}}",
        page.matched,
        page.collections.len()
    ));
    out
}

/// Writes one item document with its links.
pub fn write_item(urls: &Urls, item: &StoredItem, out: &mut String) {
    let collection = &item.key.collection;
    let server = [
        link("self", urls.item(collection, &item.key.id), GEOJSON),
        link("parent", urls.collection(collection), "application/json"),
        link("collection", urls.collection(collection), "application/json"),
        link("root", urls.root(), "application/json"),
    ];
    splice_links(&item.content, &links_array(&server, &item.extra_links), out);
}

/// Writes an item with only the members `fields` selects, or whole without it.
pub fn write_projected_item(urls: &Urls, item: &StoredItem, fields: Option<&Fields>, out: &mut String) {
    let Some(fields) = fields else {
        write_item(urls, item, out);
        return;
    };
    // Stored content is always a JSON object; anything else is written whole.
    let Ok(document) = serde_json::from_str::<Map<String, Value>>(&item.content) else {
        write_item(urls, item, out);
        return;
    };
    let projected = Value::Object(fields.apply(&document)).to_string();
    if fields.keeps_links() {
        let projected = StoredItem {
            content: projected,
            ..item.clone()
        };
        write_item(urls, &projected, out);
    } else {
        out.push_str(&projected);
    }
}

/// Start of an item collection document, before its first feature.
pub const ITEM_COLLECTION_HEAD: &str = "{\"type\":\"FeatureCollection\",\"features\":[";

/// Closes an item collection document after its last feature: the page's own
/// links, `numberMatched` and `numberReturned`.
pub fn write_item_collection_tail(links: &[Value], matched: Option<u64>, returned: usize, out: &mut String) {
    out.push_str("],\"links\":");
    out.push_str(&Value::Array(links.to_vec()).to_string());
    if let Some(matched) = matched {
        out.push_str(",\"numberMatched\":");
        out.push_str(&matched.to_string());
    }
    out.push_str(",\"numberReturned\":");
    out.push_str(&returned.to_string());
    out.push('}');
}

/// Builds an item collection page held in memory. `links` are the page's own
/// links (self, root, next, prev...).
pub fn item_collection(urls: &Urls, page: &ItemPage, links: &[Value], fields: Option<&Fields>) -> String {
    let capacity = 256 + page.items.iter().map(|i| i.content.len() + 600).sum::<usize>();
    let mut out = String::with_capacity(capacity);
    out.push_str(ITEM_COLLECTION_HEAD);
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_projected_item(urls, item, fields, &mut out);
    }
    write_item_collection_tail(links, page.number_matched, page.items.len(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SortKey;

    fn item(content: &str, extra: &str) -> StoredItem {
        StoredItem {
            key: SortKey {
                datetime: 0,
                collection: "c 1".into(),
                id: "a/b".into(),
                sort: Vec::new(),
            },
            content: content.into(),
            extra_links: extra.into(),
            etag: "0".into(),
        }
    }

    #[test]
    fn item_links_are_spliced_and_encoded() {
        let urls = Urls::new("http://h/stac/");
        let mut out = String::new();
        write_item(
            &urls,
            &item(
                r#"{"id":"a/b","type":"Feature"}"#,
                r#"[{"rel":"license","href":"x"}]"#,
            ),
            &mut out,
        );
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["id"], "a/b");
        let links = value["links"].as_array().unwrap();
        assert_eq!(links[0]["href"], "http://h/stac/collections/c%201/items/a%2Fb");
        assert_eq!(links.last().unwrap()["rel"], "license");
        assert_eq!(links.len(), 5);
    }

    #[test]
    fn empty_object_gets_valid_json() {
        let mut out = String::new();
        write_item(&Urls::new("http://h"), &item("{}", "[]"), &mut out);
        assert!(serde_json::from_str::<Value>(&out).is_ok(), "{out}");
    }

    #[test]
    fn item_collection_has_counts() {
        let page = ItemPage {
            items: vec![item(r#"{"id":"x"}"#, "[]")],
            number_matched: Some(7),
            ..ItemPage::default()
        };
        let text = item_collection(&Urls::new("http://h"), &page, &[], None);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["numberMatched"], 7);
        assert_eq!(value["numberReturned"], 1);
        assert_eq!(value["type"], "FeatureCollection");
    }
}
