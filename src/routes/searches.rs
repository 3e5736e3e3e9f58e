//! Item search handlers: `/search` and `/collections/{id}/items`, with
//! streamed pages.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::api::{self, GEOJSON, Urls};
use crate::error::{Error, Result};
use crate::fields::Fields;
use crate::paging::{PageBounds, Repeat, TokenSigner, page_links};
use crate::search::{self, Endpoint, RawSearch};
use crate::store::{Direction, ItemQuery, ItemStream, SortKey, StoredItem};
use futures::StreamExt;

use super::{AppState, JsonBody, PathParams, base_url, collection_not_found};

/// Runs a validated search and sends the item collection. Pages read forward
/// stream: items go out as the store reads them, and the links, which need the
/// last item, close the document.
async fn run_search(
    state: &AppState,
    urls: &Urls,
    raw: RawSearch,
    mut query: ItemQuery,
    repeat: Repeat,
    collection: Option<&str>,
) -> Result<Response> {
    let sortby = raw.sortby.as_deref().unwrap_or_default();
    if raw.has_filter() || crate::sort::needs_types(sortby) {
        // Types come from the searched collections, so a property that only
        // other collections have is reported as unknown.
        let types = state.store.property_types(&query.collections).await?;
        if let Some(expression) = raw.filter_expression(&types)? {
            query.filter = Some(Arc::new(crate::filter::resolve(&expression, &types)?));
        }
        query.sort = crate::sort::resolve(sortby, &types)?;
    } else {
        query.sort = crate::sort::resolve(sortby, &Default::default())?;
    }
    if let Some(token) = raw.token.as_deref().filter(|t| !t.is_empty()) {
        query.cursor = Some(state.signer.decode(token, &query)?);
    }
    let backward = query
        .cursor
        .as_ref()
        .is_some_and(|c| c.direction == Direction::Prev);
    let collection = collection.map(str::to_string);
    let (body, estimate) = if backward {
        // A page before the cursor is read in reverse, so it is flipped in memory.
        let page = state.store.search(&query).await?;
        let bounds = PageBounds::of(&page);
        let links = page_links(
            &state.signer,
            urls,
            &query,
            &bounds,
            &repeat,
            collection.as_deref(),
        );
        let estimate = page.matched_is_estimate;
        crate::metrics::record_items(page.items.len());
        (
            Body::from(api::item_collection(urls, &page, &links, raw.fields.as_ref())),
            estimate,
        )
    } else {
        // The count runs first and returns its connection before the page
        // stream takes one. Run side by side, each request held two connections,
        // and at the pool limit every request could hold its stream's connection
        // while it waited for a second one for the count.
        let counted = state.store.count(&query).await?;
        let estimate = counted.is_some_and(|(_, estimate)| estimate);
        let matched = counted.map(|(count, _)| count);
        let mut rows = state.store.page_items(&query);
        // The first row is awaited here so that a failing query still gets an error status.
        let first = rows.next().await.transpose()?;
        let writer = PageWriter {
            rows,
            fields: raw.fields.clone(),
            pending: first,
            urls: urls.clone(),
            signer: state.signer.clone(),
            query,
            repeat,
            collection,
            matched,
            returned: 0,
            first_key: None,
            last_key: None,
            done: false,
        };
        (Body::from_stream(writer.into_stream()), estimate)
    };
    let mut response = ([(header::CONTENT_TYPE, HeaderValue::from_static(GEOJSON))], body).into_response();
    if estimate {
        response
            .headers_mut()
            .insert("x-number-matched-estimate", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Bytes collected before a chunk of a streamed page is sent.
const CHUNK_SIZE: usize = 64 * 1024;

/// Writes a forward page as a stream of JSON chunks.
struct PageWriter {
    rows: ItemStream,
    /// Members to keep in each item, from the Fields extension.
    fields: Option<Fields>,
    /// An item already read from `rows`.
    pending: Option<StoredItem>,
    urls: Urls,
    signer: TokenSigner,
    query: ItemQuery,
    repeat: Repeat,
    collection: Option<String>,
    /// `None` when the count took too long.
    matched: Option<u64>,
    returned: usize,
    first_key: Option<SortKey>,
    last_key: Option<SortKey>,
    done: bool,
}

impl PageWriter {
    /// Turns the writer into a body stream. The stream is fused, because
    /// body adapters such as the compressor may poll again after its end.
    fn into_stream(self) -> impl futures::Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send {
        futures::stream::unfold(self, |mut writer| async move {
            if writer.done {
                return None;
            }
            let chunk = writer.next_chunk().await;
            Some((chunk, writer))
        })
        .fuse()
    }

    /// Writes the next chunk: the head with the first items, more items, or the closing links.
    async fn next_chunk(&mut self) -> std::result::Result<Bytes, std::io::Error> {
        let mut chunk = String::with_capacity(CHUNK_SIZE + 4096);
        if self.returned == 0 && self.first_key.is_none() {
            chunk.push_str(api::ITEM_COLLECTION_HEAD);
        }
        loop {
            let next = match self.pending.take() {
                Some(item) => Some(Ok(item)),
                None => self.rows.next().await,
            };
            match next {
                Some(Ok(item)) if self.returned < self.query.limit => {
                    if self.returned > 0 {
                        chunk.push(',');
                    }
                    api::write_projected_item(&self.urls, &item, self.fields.as_ref(), &mut chunk);
                    self.returned += 1;
                    if self.first_key.is_none() {
                        self.first_key = Some(item.key.clone());
                    }
                    self.last_key = Some(item.key);
                    if chunk.len() >= CHUNK_SIZE {
                        return Ok(Bytes::from(chunk));
                    }
                }
                Some(Ok(_)) => {
                    // One item beyond the page: more follow.
                    self.finish(true, &mut chunk);
                    return Ok(Bytes::from(chunk));
                }
                None => {
                    self.finish(false, &mut chunk);
                    return Ok(Bytes::from(chunk));
                }
                Some(Err(e)) => {
                    // The status line is already sent, so the only way left to
                    // signal the failure is to abort the body.
                    tracing::error!(error = %e, "a streamed page failed");
                    self.done = true;
                    return Err(std::io::Error::other("the page could not be completed"));
                }
            }
        }
    }

    fn finish(&mut self, has_next: bool, chunk: &mut String) {
        let bounds = PageBounds {
            has_next,
            has_prev: self.query.cursor.is_some(),
            first: self.first_key.as_ref(),
            last: self.last_key.as_ref(),
        };
        let links = page_links(
            &self.signer,
            &self.urls,
            &self.query,
            &bounds,
            &self.repeat,
            self.collection.as_deref(),
        );
        api::write_item_collection_tail(&links, self.matched, self.returned, chunk);
        crate::metrics::record_items(self.returned);
        self.done = true;
    }
}

/// Returns the original query pairs without `token`, for page links.
fn repeat_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k != "token")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `GET /collections/{collectionId}/items` (OGC API Features `/req/core/fc-op`).
pub(super) async fn items(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams(collection_id): PathParams<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let query_string = query.unwrap_or_default();
    let raw = search::from_query_string(&query_string, Endpoint::Items(&collection_id))?;
    if state.store.collection(&collection_id).await?.is_none() {
        return Err(collection_not_found(&collection_id));
    }
    let mut query = search::validate(&raw, &state.limits)?;
    query.collections = vec![collection_id.clone()];
    let urls = Urls::new(&base_url(&state, &headers));
    let path = format!("/collections/{}/items", api::segment(&collection_id));
    let repeat = Repeat::Get {
        path,
        query: repeat_pairs(&query_string),
    };
    run_search(&state, &urls, raw, query, repeat, Some(&collection_id)).await
}

/// `GET /search` (STAC API Item Search).
pub(super) async fn search_get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let query_string = query.unwrap_or_default();
    let raw = search::from_query_string(&query_string, Endpoint::Search)?;
    let query = search::validate(&raw, &state.limits)?;
    let urls = Urls::new(&base_url(&state, &headers));
    let repeat = Repeat::Get {
        path: "/search".into(),
        query: repeat_pairs(&query_string),
    };
    run_search(&state, &urls, raw, query, repeat, None).await
}

/// `POST /search` (STAC API Item Search) with a JSON body.
pub(super) async fn search_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response> {
    let body = match body.json(&headers)? {
        Value::Object(map) => map,
        _ => {
            return Err(Error::InvalidBody(
                "the request body must be a JSON object".into(),
            ));
        }
    };
    let raw = search::from_body(&body)?;
    let query = search::validate(&raw, &state.limits)?;
    let urls = Urls::new(&base_url(&state, &headers));
    let mut repeat_body = body;
    repeat_body.remove("token");
    run_search(
        &state,
        &urls,
        raw,
        query,
        Repeat::Post { body: repeat_body },
        None,
    )
    .await
}
