//! Opaque pagination tokens for keyset paging.
//!
//! A token carries the sort key of the page boundary, the direction, and a
//! fingerprint of the search it belongs to, signed with HMAC-SHA256. The key
//! lives in the database, so every server instance on the same store accepts
//! the tokens of the others. A token that was altered, or that belongs to a
//! different search, is rejected with a 400 rather than silently served.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use serde_json::{Map, Value, json};

use crate::api::{GEOJSON, Urls};
use crate::filter::Kind;
use crate::store::{Cursor, Direction, ItemPage, ItemQuery, SortKey, SortValue};

type HmacSha256 = Hmac<Sha256>;

/// Length of the truncated HMAC tag, in bytes.
const TAG_LEN: usize = 16;

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds since
/// the Unix epoch: the range that both stores can compare against.
const MIN_KEY_MICROS: i64 = -62_135_596_800_000_000;
const MAX_KEY_MICROS: i64 = 253_402_300_799_999_999;

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Direction.
    d: Direction,
    /// Boundary sort key.
    k: SortKey,
    /// Fingerprint of the search.
    q: String,
}

/// Signs and checks pagination tokens.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl TokenSigner {
    /// Creates a signer with a secret key.
    pub fn new(key: Vec<u8>) -> Self {
        TokenSigner { key }
    }

    fn tag(&self, payload: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(payload);
        mac.finalize().into_bytes()[..TAG_LEN].to_vec()
    }

    /// Encodes a cursor for `query` as an opaque token.
    pub fn encode(&self, cursor: &Cursor, query: &ItemQuery) -> String {
        let payload = Payload {
            d: cursor.direction,
            k: cursor.key.clone(),
            q: fingerprint(query),
        };
        // Serialising a struct of strings and integers cannot fail.
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let tag = self.tag(&json);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Decodes a token and checks that it is intact and belongs to `query`.
    pub fn decode(&self, token: &str, query: &ItemQuery) -> Result<Cursor, Error> {
        let invalid = |reason: &str| {
            Error::InvalidParameter(format!(
                "invalid value for 'token': {reason}; use the 'next' or 'prev' link of a page as it was returned"
            ))
        };
        let (body, tag) = token.split_once('.').ok_or_else(|| invalid("malformed token"))?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| invalid("malformed token"))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| invalid("malformed token"))?;
        // `verify_truncated_left` accepts any prefix of the tag, so a short tag
        // would be easy to forge: only the full length is accepted.
        if tag.len() != TAG_LEN {
            return Err(invalid("the token was altered or issued by another catalog"));
        }
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(&json);
        mac.verify_truncated_left(&tag)
            .map_err(|_| invalid("the token was altered or issued by another catalog"))?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| invalid("malformed token"))?;
        if payload.q != fingerprint(query) {
            return Err(invalid("the token belongs to a different search"));
        }
        // Keys are only ever issued from stored items, but the stores must
        // still never see one they cannot bind: a time outside years 1..9999 or a NUL.
        let key = &payload.k;
        if !(MIN_KEY_MICROS..=MAX_KEY_MICROS).contains(&key.datetime)
            || key.collection.contains('\0')
            || key.id.contains('\0')
            || !sort_values_fit(query, &key.sort)
        {
            return Err(invalid("malformed token"));
        }
        Ok(Cursor {
            direction: payload.d,
            key: payload.k,
        })
    }
}

/// Tells whether the sort values of a key fit the sort fields of `query`:
/// one value per field, of the field's kind, and missing only where the
/// field can be missing.
fn sort_values_fit(query: &ItemQuery, values: &[SortValue]) -> bool {
    values.len() == query.sort.len()
        && query
            .sort
            .iter()
            .zip(values)
            .all(|(field, value)| match (field.kind(), value) {
                (_, SortValue::Missing) => field.nullable(),
                (Kind::Number, SortValue::Number(n)) => n.is_finite(),
                (Kind::Text, SortValue::Text(t)) => !t.contains('\0'),
                (Kind::Time, SortValue::Time(t)) => (MIN_KEY_MICROS..=MAX_KEY_MICROS).contains(t),
                _ => false,
            })
}

/// The request that the page links of a search repeat.
#[derive(Debug, Clone)]
pub enum Repeat {
    /// GET: the original query string (without `token`) at this path.
    Get {
        path: String,
        query: Vec<(String, String)>,
    },
    /// POST: the original body.
    Post {
        /// The body without `token`.
        body: Map<String, Value>,
    },
}

/// The facts about a page that its `next` and `prev` links depend on.
#[derive(Debug, Clone, Copy)]
pub struct PageBounds<'a> {
    /// Whether items follow the page.
    pub has_next: bool,
    /// Whether items precede the page.
    pub has_prev: bool,
    /// Sort key of the first item.
    pub first: Option<&'a SortKey>,
    /// Sort key of the last item.
    pub last: Option<&'a SortKey>,
}

impl<'a> PageBounds<'a> {
    /// Reads the bounds of a page held in memory.
    pub fn of(page: &'a ItemPage) -> Self {
        PageBounds {
            has_next: page.has_next,
            has_prev: page.has_prev,
            first: page.items.first().map(|i| &i.key),
            last: page.items.last().map(|i| &i.key),
        }
    }
}

/// Builds the links of an item collection page: `self`, `root`, the
/// collection for a collection's items, and `next` and `prev` with signed
/// tokens where those pages exist.
pub fn page_links(
    signer: &TokenSigner,
    urls: &Urls,
    query: &ItemQuery,
    bounds: &PageBounds<'_>,
    repeat: &Repeat,
    collection: Option<&str>,
) -> Vec<Value> {
    let mut links = Vec::new();
    let self_href = match repeat {
        Repeat::Get { path, query: pairs } => href_with(urls, path, pairs, None),
        Repeat::Post { .. } => urls.path("/search"),
    };
    links.push(json!({"rel": "self", "href": self_href, "type": GEOJSON}));
    links.push(json!({"rel": "root", "href": urls.root(), "type": "application/json"}));
    if let Some(collection) = collection {
        links.push(json!({"rel": "parent", "href": urls.collection(collection), "type": "application/json"}));
        links.push(
            json!({"rel": "collection", "href": urls.collection(collection), "type": "application/json"}),
        );
    }
    let boundaries = [
        (bounds.has_next, "next", Direction::Next, bounds.last),
        (bounds.has_prev, "prev", Direction::Prev, bounds.first),
    ];
    for (present, rel, direction, boundary) in boundaries {
        let (true, Some(boundary)) = (present, boundary) else {
            continue;
        };
        let cursor = Cursor {
            direction,
            key: boundary.clone(),
        };
        let token = signer.encode(&cursor, query);
        links.push(match repeat {
            Repeat::Get { path, query: pairs } => {
                json!({"rel": rel, "href": href_with(urls, path, pairs, Some(&token)), "type": GEOJSON, "method": "GET"})
            }
            Repeat::Post { body } => {
                let mut body = body.clone();
                body.insert("token".into(), Value::String(token));
                json!({"rel": rel, "href": urls.path("/search"), "type": GEOJSON, "method": "POST",
                    "body": body, "merge": false})
            }
        });
    }
    links
}

fn href_with(urls: &Urls, path: &str, pairs: &[(String, String)], token: Option<&str>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        serializer.append_pair(key, value);
    }
    if let Some(token) = token {
        serializer.append_pair("token", token);
    }
    let query = serializer.finish();
    if query.is_empty() {
        urls.path(path)
    } else {
        format!("{}?{query}", urls.path(path))
    }
}

/// Hashes the parts of a search that select items (not the page size), so a
/// token is only valid for the search that produced it.
fn fingerprint(query: &ItemQuery) -> String {
    let mut hasher = Sha256::new();
    let mut feed = |label: &str, value: &str| {
        hasher.update(label.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    };
    for collection in &query.collections {
        feed("c", collection);
    }
    for id in &query.ids {
        feed("i", id);
    }
    for bbox in &query.bboxes {
        feed("b", &format!("{bbox:?}"));
    }
    if let Some(filter) = &query.intersects {
        feed("g", &filter.geojson);
    }
    if let Some(datetime) = &query.datetime {
        feed("t", &format!("{datetime:?}"));
    }
    if let Some(filter) = &query.filter {
        feed("f", &filter.canonical);
    }
    for field in &query.sort {
        feed("s", &field.describe());
    }
    if let Some(text) = &query.text {
        feed("q", &text.describe());
    }
    URL_SAFE_NO_PAD.encode(&hasher.finalize()[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            direction: Direction::Next,
            key: SortKey {
                datetime: 1_600_000_000_000_000,
                collection: "c".into(),
                id: "a/b".into(),
                sort: Vec::new(),
            },
        }
    }

    #[test]
    fn token_round_trips() {
        let signer = TokenSigner::new(b"key".to_vec());
        let query = ItemQuery::default();
        let token = signer.encode(&cursor(), &query);
        assert_eq!(signer.decode(&token, &query).unwrap(), cursor());
    }

    #[test]
    fn tampered_token_is_rejected() {
        let signer = TokenSigner::new(b"key".to_vec());
        let query = ItemQuery::default();
        let token = signer.encode(&cursor(), &query);
        let mut bytes = token.into_bytes();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(signer.decode(&tampered, &query).is_err());
        assert!(signer.decode("garbage", &query).is_err());
        assert!(signer.decode("", &query).is_err());
    }

    #[test]
    fn foreign_token_is_rejected() {
        let query = ItemQuery::default();
        let token = TokenSigner::new(b"one".to_vec()).encode(&cursor(), &query);
        assert!(TokenSigner::new(b"two".to_vec()).decode(&token, &query).is_err());
        let other = ItemQuery {
            collections: vec!["x".into()],
            ..ItemQuery::default()
        };
        let error = TokenSigner::new(b"one".to_vec())
            .decode(&token, &other)
            .unwrap_err();
        assert!(error.to_string().contains("different search"));
    }
}
