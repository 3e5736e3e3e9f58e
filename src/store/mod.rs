//! Storage behind one trait, with an embedded SQLite store and a PostgreSQL +
//! PostGIS store, chosen by the database URL.

mod cql2_sql;
mod pg_pools;
mod postgres;
mod sql;
mod sqlite;
mod sqlite_functions;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use geo::Geometry;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::metrics::PoolStats;
use crate::prepare::{PreparedCollection, PreparedItem};

pub use postgres::PostgresStore;
pub use sql::bbox_geometry;
pub use sqlite::SqliteStore;

/// A validated item search, ready for a store to run.
#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    /// Collections to search; empty means all.
    pub collections: Vec<String>,
    /// Item ids to match; empty means any.
    pub ids: Vec<String>,
    /// Boxes `[west, south, east, north]` in WGS 84; an item matches when it
    /// intersects any of them. A box that crosses the antimeridian arrives here
    /// already split in two.
    pub bboxes: Vec<[f64; 4]>,
    /// A geometry the item must intersect exactly.
    pub intersects: Option<SpatialFilter>,
    /// Interval the item's time span must overlap, in microseconds since the
    /// Unix epoch, both ends inclusive; `None` is an open end.
    pub datetime: Option<(Option<i64>, Option<i64>)>,
    /// Page size.
    pub limit: usize,
    /// Start of the page, taken from a pagination token.
    pub cursor: Option<Cursor>,
    /// Count matches exactly up to this many; above it `number_matched` may be an estimate.
    pub count_limit: u64,
    /// Maximum time a count may take. When a count takes longer, the page has
    /// no `number_matched`. `None` waits for the count.
    pub count_timeout: Option<std::time::Duration>,
    /// A CQL2 filter on item properties.
    pub filter: Option<std::sync::Arc<crate::filter::PropertyFilter>>,
    /// A free-text query (`q`).
    pub text: Option<crate::text::TextQuery>,
    /// Sort order from the Sort extension; empty means the default order
    /// (datetime descending). Collection and id always break ties.
    pub sort: Vec<crate::sort::SortField>,
}

impl ItemQuery {
    /// Tells whether the search selects whole collections (or everything),
    /// so that its count is the sum of per-collection counts.
    pub fn selects_whole_collections(&self) -> bool {
        self.ids.is_empty()
            && self.bboxes.is_empty()
            && self.intersects.is_none()
            && self.datetime.is_none()
            && self.filter.is_none()
            && self.text.is_none()
    }
}

/// A geometry filter, kept in both forms the stores need.
#[derive(Debug, Clone)]
pub struct SpatialFilter {
    /// The geometry, for exact tests in Rust.
    pub geometry: Geometry<f64>,
    /// The geometry as GeoJSON text, for PostGIS.
    pub geojson: String,
    /// Its bounding box `[west, south, east, north]`.
    pub bbox: [f64; 4],
}

/// Sort key of an item: the values of the sort fields (or datetime in the
/// default order), then collection and id. Keyset pagination compares against it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SortKey {
    /// Start of the item's time span, microseconds since the Unix epoch.
    pub datetime: i64,
    /// Collection id.
    pub collection: String,
    /// Item id.
    pub id: String,
    /// Values of the requested sort fields, in order; empty in the default order.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "s")]
    pub sort: Vec<SortValue>,
}

/// The value of one sort field of an item.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SortValue {
    /// The item has no value of the field's type; such items sort last.
    #[serde(rename = "z")]
    Missing,
    /// A number.
    #[serde(rename = "n")]
    Number(f64),
    /// A string.
    #[serde(rename = "s")]
    Text(String),
    /// An instant in microseconds since the Unix epoch.
    #[serde(rename = "t")]
    Time(i64),
}

/// Side of a sort key on which a page lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    /// Items after the key (the `next` link).
    #[serde(rename = "n")]
    Next,
    /// Items before the key (the `prev` link).
    #[serde(rename = "p")]
    Prev,
}

/// A position in the result set.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// Whether the page comes after or before `key`.
    pub direction: Direction,
    /// The boundary item, which the page excludes.
    pub key: SortKey,
}

/// A stored item as the store returns it.
#[derive(Debug, Clone)]
pub struct StoredItem {
    /// The sort key, for pagination.
    pub key: SortKey,
    /// The item JSON object without its `links` member.
    pub content: String,
    /// Links the item carried that are not server links, as a JSON array.
    pub extra_links: String,
    /// Strong entity tag.
    pub etag: String,
}

/// One page of search results, in the default order.
#[derive(Debug, Default)]
pub struct ItemPage {
    /// The items of the page.
    pub items: Vec<StoredItem>,
    /// Whether items follow the last one.
    pub has_next: bool,
    /// Whether items precede the first one.
    pub has_prev: bool,
    /// How many items match the whole search.
    pub number_matched: Option<u64>,
    /// Whether `number_matched` is an estimate rather than an exact count.
    pub matched_is_estimate: bool,
}

/// A stored collection.
#[derive(Debug, Clone)]
pub struct StoredCollection {
    /// The collection id.
    pub id: String,
    /// The collection JSON object without its `links` member.
    pub content: String,
    /// Links the collection carried that are not server links, as a JSON array.
    pub extra_links: String,
    /// Strong entity tag.
    pub etag: String,
}

/// Items of one page as a store reads them.
pub type ItemStream = BoxStream<'static, Result<StoredItem>>;

/// Items buffered between the task that reads rows and the response body.
const STREAM_BUFFER: usize = 64;

/// Runs `produce` on its own task and returns what it sends as a stream. When
/// the stream is dropped, the next send fails, so `produce` can stop reading.
fn spawn_stream<F, Fut>(produce: F) -> ItemStream
where
    F: FnOnce(mpsc::Sender<Result<StoredItem>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(produce(sender));
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
    // Fused, so that polling after the end keeps returning `None`.
    .fuse()
    .boxed()
}

/// Treatment by `insert_items` of an item whose id already exists in its collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    /// Reject the whole batch and name the duplicate ids.
    Insert,
    /// Replace the stored item.
    Upsert,
}

/// The storage operations the API needs. Each store runs the same searches and
/// returns the same results, which the behavioural test suite checks.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Short name of the store kind, for logs and `/health`.
    fn kind(&self) -> &'static str;

    /// The database engine and version, such as `SQLite 3.46.0`.
    async fn version(&self) -> Result<String>;

    /// Checks that the store responds to a query.
    async fn ping(&self) -> Result<()>;

    /// Checks the read replica: `None` without one, else whether it responds.
    async fn ping_replica(&self) -> Option<bool> {
        None
    }

    /// Reads the JSON types of item properties in `collections` (all when
    /// empty), by property name. Queryables and filter type checks use them.
    async fn property_types(&self, collections: &[String]) -> Result<crate::filter::PropertyTypes>;

    /// Connection counts of the store's pools, for `/metrics`.
    fn pool_stats(&self) -> Vec<PoolStats>;

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;

    /// Returns the key that signs pagination tokens, creating it on first use.
    /// It is stored in the database so every server on the same store shares it.
    async fn secret(&self) -> Result<Vec<u8>>;

    /// Lists all collections, ordered by id.
    async fn collections(&self) -> Result<Vec<StoredCollection>>;

    /// Fetches one collection.
    async fn collection(&self, id: &str) -> Result<Option<StoredCollection>>;

    /// Fetches one item.
    async fn item(&self, collection: &str, id: &str) -> Result<Option<StoredItem>>;

    /// Fetches one collection from the primary database, for a write that
    /// depends on it. With a read replica, [`Backend::collection`] may lag behind.
    async fn latest_collection(&self, id: &str) -> Result<Option<StoredCollection>> {
        self.collection(id).await
    }

    /// Fetches one item from the primary database, like [`Backend::latest_collection`].
    async fn latest_item(&self, collection: &str, id: &str) -> Result<Option<StoredItem>> {
        self.item(collection, id).await
    }

    /// Streams the items of one page in reading order: after the cursor for
    /// `Direction::Next` (or no cursor), before it and in reverse for
    /// `Direction::Prev`. It yields at most `query.limit + 1` items, and an
    /// extra item means that more follow. Dropping the stream stops the query.
    fn page_items(&self, query: &ItemQuery) -> ItemStream;

    /// Counts the items a search matches. The flag is set when the count is an
    /// estimate. `None` when counting took longer than `query.count_timeout`.
    async fn count(&self, query: &ItemQuery) -> Result<Option<(u64, bool)>>;

    /// Runs a search and returns one whole page, in the default order.
    async fn search(&self, query: &ItemQuery) -> Result<ItemPage> {
        let items: Vec<StoredItem> = self.page_items(query).try_collect().await?;
        let matched = self.count(query).await?;
        Ok(finish_page(query, items, matched))
    }

    /// Inserts or replaces a collection.
    async fn upsert_collection(&self, collection: &PreparedCollection) -> Result<()>;

    /// Creates a collection; `Error::Conflict` when the id exists.
    async fn create_collection(&self, collection: &PreparedCollection) -> Result<()>;

    /// Replaces a collection. Fails with `Error::NotFound` when it does not
    /// exist and `Error::PreconditionFailed` when `if_match` is given and
    /// differs from the stored entity tag.
    async fn replace_collection(&self, collection: &PreparedCollection, if_match: Option<&str>)
    -> Result<()>;

    /// Deletes a collection. Fails with `Error::Conflict` when it still has
    /// items, unless `cascade` deletes them with it.
    async fn delete_collection(&self, id: &str, if_match: Option<&str>, cascade: bool) -> Result<()>;

    /// Replaces an item, with the same failures as `replace_collection`.
    async fn replace_item(&self, item: &PreparedItem, if_match: Option<&str>) -> Result<()>;

    /// Deletes an item, with the same failures as `replace_collection`.
    async fn delete_item(&self, collection: &str, id: &str, if_match: Option<&str>) -> Result<()>;

    /// Writes items in one transaction: all of them or none. Fails with
    /// `Error::Conflict` naming the ids when `mode` is `Insert` and some exist,
    /// and with `Error::NotFound` when a collection does not exist.
    async fn insert_items(&self, items: &[PreparedItem], mode: InsertMode) -> Result<u64>;
}

/// Builds a migrator from `(version, description, SQL)` of each migration, in order.
fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Opens the store a database URL names: `sqlite://PATH` (created when
/// missing) or `postgres://...` / `postgresql://...`.
pub async fn connect(url: &str) -> Result<Arc<dyn Backend>> {
    connect_with(url, &ConnectOptions::default()).await
}

/// Connection settings of a store. The SQLite store uses none of them.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// PostgreSQL cancels statements that run longer.
    pub statement_timeout: Option<Duration>,
    /// Largest number of connections in each PostgreSQL pool.
    pub max_connections: u32,
    /// How long a request waits for a connection before failing with 503.
    pub acquire_timeout: Duration,
    /// URL of a PostgreSQL streaming replica to read from.
    pub read_url: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            statement_timeout: None,
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
            read_url: None,
        }
    }
}

/// Opens a store like [`connect`], with connection settings.
pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<Arc<dyn Backend>> {
    let postgres = |u: &str| u.starts_with("postgres://") || u.starts_with("postgresql://");
    if let Some(read_url) = &options.read_url
        && !(postgres(url) && postgres(read_url))
    {
        return Err(Error::InvalidParameter(
            "a read database URL needs PostgreSQL URLs for both the database and its replica".into(),
        ));
    }
    if postgres(url) {
        Ok(Arc::new(PostgresStore::connect(url, options).await?))
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Ok(Arc::new(SqliteStore::open(path).await?))
    } else {
        Err(Error::InvalidParameter(format!(
            "unsupported database URL '{}': use sqlite://PATH or postgres://USER@HOST:PORT/DB",
            redact_url(url)
        )))
    }
}

/// Trims a page read with one extra row (to learn whether more follow), puts
/// it in the default order, and works out which page links exist.
pub fn finish_page(query: &ItemQuery, mut items: Vec<StoredItem>, matched: Option<(u64, bool)>) -> ItemPage {
    let direction = query.cursor.as_ref().map_or(Direction::Next, |c| c.direction);
    let more = items.len() > query.limit;
    items.truncate(query.limit);
    let (has_next, has_prev) = match (&query.cursor, direction) {
        (None, _) => (more, false),
        (Some(_), Direction::Next) => (more, true),
        (Some(_), Direction::Prev) => {
            items.reverse();
            (true, more)
        }
    };
    ItemPage {
        items,
        has_next,
        has_prev,
        number_matched: matched.map(|(count, _)| count),
        matched_is_estimate: matched.is_some_and(|(_, estimate)| estimate),
    }
}

/// Builds the conflict error for ids that already exist, naming the first few.
fn duplicate_error(duplicates: &[String]) -> Error {
    const SHOWN: usize = 20;
    let mut names = duplicates
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if duplicates.len() > SHOWN {
        names.push_str(&format!(" and {} more", duplicates.len() - SHOWN));
    }
    Error::Conflict(format!(
        "{} item(s) already exist (collection/id): {names}",
        duplicates.len()
    ))
}

/// Explains why a conditional write matched no row: the resource is missing,
/// or its entity tag differs from `If-Match`.
fn write_miss(what: &str, exists: bool, if_match: Option<&str>) -> Error {
    match (exists, if_match) {
        (true, Some(tag)) => Error::PreconditionFailed(format!(
            "{what} was changed by another request: If-Match \"{tag}\" no longer matches; fetch it again and retry"
        )),
        _ => Error::NotFound(format!("{what} not found")),
    }
}

/// Hides the password of a database URL so it can be logged.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redact_url_hides_password() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
