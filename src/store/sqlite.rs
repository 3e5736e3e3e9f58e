//! The embedded SQLite store: one file, WAL journal, an R*Tree for candidate
//! selection and exact geometry tests with `geo`.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlitePool};

use super::sql::{self, Arg, Dialect};
use super::{
    Backend, InsertMode, ItemQuery, ItemStream, SortKey, SortValue, StoredCollection, StoredItem,
    duplicate_error, spawn_stream, write_miss,
};
use crate::error::{Error, Result};
use crate::filter::Kind;
use crate::filter::PropertyTypes;
use crate::geometry::from_wkb;
use crate::metrics::PoolStats;
use crate::prepare::{PreparedCollection, PreparedItem};
use crate::sort::SortField;
use tokio::sync::mpsc::Sender;

/// The SQLite catalog store.
pub struct SqliteStore {
    /// Connections for reads.
    pool: SqlitePool,
    /// One connection for writes. SQLite allows one writer at a time, and
    /// queueing writers here avoids lock upgrades failing with SQLITE_BUSY.
    writer: SqlitePool,
    path: String,
}

fn migrator() -> sqlx::migrate::Migrator {
    super::migrator(&[
        (
            1,
            "catalog",
            include_str!("../../migrations/sqlite/0001_catalog.sql"),
        ),
        (
            2,
            "item properties",
            include_str!("../../migrations/sqlite/0002_item_properties.sql"),
        ),
        (
            3,
            "free text",
            include_str!("../../migrations/sqlite/0003_free_text.sql"),
        ),
        (
            4,
            "space-time index",
            include_str!("../../migrations/sqlite/0004_space_time_rtree.sql"),
        ),
    ])
}

/// Page cache of the writing connection, in KiB.
const WRITER_CACHE_KIB: u32 = 65536;

/// Rows per multi-row INSERT; 9 parameters each stay far below SQLite's limit
/// of 32,766 parameters per statement.
const ROWS_PER_STATEMENT: usize = 256;

/// The R*Trees of item envelopes: footprints only, and footprints with time spans.
const TREES: [&str; 2] = ["items_rtree", "items_space_time"];

/// An entry of both R*Trees: primary key, envelope (min x, min y, max x, max y),
/// and time span in microseconds.
type TreeEntry = (i64, [f64; 4], i64, i64);

/// Writes `rows` groups of `columns` placeholders: `(?, ?), (?, ?)`.
fn row_placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind_all<'q>(mut query: SqliteQuery<'q>, args: &[Arg]) -> SqliteQuery<'q> {
    for arg in args {
        query = match arg {
            Arg::Text(v) => query.bind(v.clone()),
            Arg::TextList(values) => {
                let mut q = query;
                for v in values {
                    q = q.bind(v.clone());
                }
                q
            }
            Arg::Time(v) => query.bind(*v),
            Arg::Float(v) => query.bind(*v),
            Arg::Bytes(v) => query.bind(v.clone()),
            Arg::Bool(v) => query.bind(*v),
        };
    }
    query
}

/// Adds stacd's SQL functions to a new connection.
async fn add_functions(connection: &mut sqlx::SqliteConnection) -> std::result::Result<(), sqlx::Error> {
    let mut handle = connection.lock_handle().await?;
    // SAFETY: the locked handle is an open connection that no other thread uses meanwhile.
    unsafe { super::sqlite_functions::register(handle.as_raw_handle()) }
        .map_err(|e| sqlx::Error::Configuration(e.into()))
}

impl SqliteStore {
    /// Opens (and creates when missing) the database file at `path`.
    pub async fn open(path: &str) -> Result<Self> {
        let path = if path.is_empty() { "stacd.sqlite" } else { path };
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|e| Error::InvalidParameter(format!("invalid SQLite path '{path}': {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // LIKE in CQL2 is case-sensitive, as in PostgreSQL.
        let options = options.pragma("case_sensitive_like", "ON");
        // The writer keeps more pages in memory than SQLite's default 2 MB: bulk
        // inserts touch index pages all over the file, and every miss is a read.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|connection, _| Box::pin(add_functions(connection)))
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", format!("-{WRITER_CACHE_KIB}")),
            )
            .await?;
        // A connection to a local file does not drop while idle, so the round
        // trip to its worker thread that tests it before each use is skipped.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|connection, _| Box::pin(add_functions(connection)))
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            pool,
            writer,
            path: path.to_string(),
        })
    }

    fn decode_item(row: &SqliteRow) -> Result<StoredItem> {
        Self::decode_sorted_item(row, &[])
    }

    /// Decodes an item with the values of the sort fields, selected as `s0`, `s1`, ...
    fn decode_sorted_item(row: &SqliteRow, sort: &[SortField]) -> Result<StoredItem> {
        let mut values = Vec::with_capacity(sort.len());
        for (n, field) in sort.iter().enumerate() {
            let column = format!("s{n}");
            let value = match field.kind() {
                Kind::Number => row
                    .try_get::<Option<f64>, _>(column.as_str())?
                    .map(SortValue::Number),
                Kind::Time => row
                    .try_get::<Option<i64>, _>(column.as_str())?
                    .map(SortValue::Time),
                _ => row
                    .try_get::<Option<String>, _>(column.as_str())?
                    .map(SortValue::Text),
            };
            values.push(value.unwrap_or(SortValue::Missing));
        }
        Ok(StoredItem {
            key: SortKey {
                collection: row.try_get("collection")?,
                id: row.try_get("id")?,
                datetime: row.try_get("datetime")?,
                sort: values,
            },
            content: row.try_get("content")?,
            extra_links: row.try_get("extra_links")?,
            etag: row.try_get("etag")?,
        })
    }

    fn decode_collection(row: &SqliteRow) -> Result<StoredCollection> {
        Ok(StoredCollection {
            id: row.try_get("id")?,
            content: row.try_get("content")?,
            extra_links: row.try_get("extra_links")?,
            etag: row.try_get("etag")?,
        })
    }

    /// Puts an item's envelope in the R*Trees, or removes it from them for a
    /// null geometry.
    async fn index_envelope(
        connection: &mut sqlx::SqliteConnection,
        pk: i64,
        item: &PreparedItem,
    ) -> Result<()> {
        match item.envelope {
            Some(envelope) => {
                Self::index_envelopes(connection, &[(pk, envelope, item.start, item.end)]).await
            }
            None => Self::unindex(connection, pk).await,
        }
    }

    /// Puts envelopes in the footprint R*Tree, and with their time spans in the
    /// space-time R*Tree, in one statement per tree.
    async fn index_envelopes(connection: &mut sqlx::SqliteConnection, entries: &[TreeEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let text = format!(
            "INSERT OR REPLACE INTO items_rtree (pk, min_x, max_x, min_y, max_y) VALUES {}",
            row_placeholders(entries.len(), 5)
        );
        let mut query = sqlx::query(AssertSqlSafe(text));
        for &(pk, [min_x, min_y, max_x, max_y], _, _) in entries {
            query = query.bind(pk).bind(min_x).bind(max_x).bind(min_y).bind(max_y);
        }
        query.execute(&mut *connection).await?;

        let text = format!(
            "INSERT OR REPLACE INTO items_space_time (pk, min_x, max_x, min_y, max_y, min_t, max_t) VALUES {}",
            row_placeholders(entries.len(), 7)
        );
        let mut query = sqlx::query(AssertSqlSafe(text));
        for &(pk, [min_x, min_y, max_x, max_y], start, end) in entries {
            query = query
                .bind(pk)
                .bind(min_x)
                .bind(max_x)
                .bind(min_y)
                .bind(max_y)
                .bind(sql::tree_time(start))
                .bind(sql::tree_time(end));
        }
        query.execute(&mut *connection).await?;
        Ok(())
    }

    /// Removes an item from both R*Trees.
    async fn unindex(connection: &mut sqlx::SqliteConnection, pk: i64) -> Result<()> {
        for tree in TREES {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {tree} WHERE pk = ?")))
                .bind(pk)
                .execute(&mut *connection)
                .await?;
        }
        Ok(())
    }

    /// Reads matching items in order, applies the exact geometry test, and
    /// sends them until `query.limit + 1` have passed or the receiver is gone.
    async fn read_page(
        pool: SqlitePool,
        query: ItemQuery,
        sender: &Sender<Result<StoredItem>>,
    ) -> Result<()> {
        let wanted = query.limit + 1;
        let filter = sql::filter_with_cursor(&query, query.cursor.as_ref(), Dialect::Sqlite)
            .map_err(Error::Internal)?;
        let spatial = !filter.geometries.is_empty();
        // Without an exact test to apply, SQLite can stop at the page size.
        let limit = if spatial {
            String::new()
        } else {
            format!("LIMIT {wanted}")
        };
        let text = format!(
            "SELECT i.collection, i.id, i.datetime, i.content, i.extra_links, i.etag{geometry}{sort} \
             FROM items i {where_} {order} {limit}",
            geometry = if spatial { ", i.geometry" } else { "" },
            sort = filter.select,
            where_ = filter.sql,
            order = filter.order,
        );
        let mut rows = bind_all(sqlx::query(AssertSqlSafe(text)), &filter.args).fetch(&pool);
        let mut sent = 0;
        while let Some(row) = rows.try_next().await? {
            if spatial {
                let wkb: Option<Vec<u8>> = row.try_get("geometry")?;
                let geometry = wkb
                    .as_deref()
                    .map(from_wkb)
                    .transpose()
                    .map_err(Error::Internal)?;
                if !filter.matches_geometry(geometry.as_ref()) {
                    continue;
                }
            }
            if sender
                .send(Ok(Self::decode_sorted_item(&row, &query.sort)?))
                .await
                .is_err()
            {
                return Ok(());
            }
            sent += 1;
            if sent >= wanted {
                break;
            }
        }
        Ok(())
    }

    /// Counts the items a search matches. Whole collections are counted from
    /// `collection_counts`. Other non-spatial searches are counted exactly in SQL.
    /// Spatial searches are tested exactly on up to `query.count_limit`
    /// candidates; with more candidates, the count is the number of index
    /// candidates and is marked as an estimate, since it may be too high.
    /// With `query.count_timeout`, a count that runs longer is interrupted
    /// (`sqlite3_interrupt`) and gives `None`.
    async fn count_matches(&self, query: &ItemQuery) -> Result<Option<(u64, bool)>> {
        if query.selects_whole_collections() {
            return self
                .count_collections(&query.collections)
                .await
                .map(|n| Some((n, false)));
        }
        let mut connection = self.pool.acquire().await?;
        let Some(budget) = query.count_timeout else {
            return Self::count_on(&mut connection, query).await.map(Some);
        };
        let handle = {
            let mut handle = connection.lock_handle().await?;
            super::sqlite_functions::Interrupter::new(handle.as_raw_handle())
        };
        let counting = Self::count_on(&mut connection, query);
        tokio::pin!(counting);
        let counted = tokio::select! {
            counted = &mut counting => counted,
            () = tokio::time::sleep(budget) => {
                // SAFETY: the connection is open and owned by this function until
                // `counting`, which borrows it, has finished below.
                unsafe { handle.interrupt() };
                counting.await
            }
        };
        match counted {
            Ok(counted) => Ok(Some(counted)),
            Err(Error::Database(sqlx::Error::Database(e))) if e.message().contains("interrupted") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Counts the matches of a search on one connection; see `count_matches`.
    async fn count_on(connection: &mut sqlx::SqliteConnection, query: &ItemQuery) -> Result<(u64, bool)> {
        let filter = sql::filter(query, Dialect::Sqlite).map_err(Error::Internal)?;
        let count_sql = format!("SELECT count(*) FROM items i {}", filter.sql);
        if filter.geometries.is_empty() {
            let count: i64 = bind_all(sqlx::query(AssertSqlSafe(count_sql)), &filter.args)
                .fetch_one(&mut *connection)
                .await?
                .try_get(0)?;
            return Ok((count as u64, false));
        }

        let text = format!(
            "SELECT i.geometry FROM items i {} LIMIT {}",
            filter.sql,
            query.count_limit + 1
        );
        let mut rows = bind_all(sqlx::query(AssertSqlSafe(text)), &filter.args).fetch(&mut *connection);
        let (mut exact, mut candidates) = (0u64, 0u64);
        while let Some(row) = rows.try_next().await? {
            candidates += 1;
            let wkb: Option<Vec<u8>> = row.try_get(0)?;
            let geometry = wkb
                .as_deref()
                .map(from_wkb)
                .transpose()
                .map_err(Error::Internal)?;
            if filter.matches_geometry(geometry.as_ref()) {
                exact += 1;
            }
        }
        drop(rows);
        if candidates <= query.count_limit {
            return Ok((exact, false));
        }
        let all: i64 = bind_all(sqlx::query(AssertSqlSafe(count_sql)), &filter.args)
            .fetch_one(&mut *connection)
            .await?
            .try_get(0)?;
        Ok((all as u64, true))
    }

    async fn count_collections(&self, collections: &[String]) -> Result<u64> {
        let total: i64 = if collections.is_empty() {
            sqlx::query_scalar("SELECT coalesce(sum(items), 0) FROM collection_counts")
                .fetch_one(&self.pool)
                .await?
        } else {
            let placeholders = vec!["?"; collections.len()].join(", ");
            let text = format!(
                "SELECT coalesce(sum(items), 0) FROM collection_counts WHERE collection IN ({placeholders})"
            );
            let mut query = sqlx::query_scalar(AssertSqlSafe(text));
            for collection in collections {
                query = query.bind(collection);
            }
            query.fetch_one(&self.pool).await?
        };
        Ok(total.max(0) as u64)
    }
}

#[async_trait]
impl Backend for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn version(&self) -> Result<String> {
        let version: String = sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&self.pool)
            .await?;
        Ok(format!("SQLite {version} ({})", self.path))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn property_types(&self, collections: &[String]) -> Result<PropertyTypes> {
        let mut text = String::from("SELECT name, type FROM item_properties");
        if !collections.is_empty() {
            let list = vec!["?"; collections.len()].join(", ");
            text.push_str(&format!(" WHERE collection IN ({list})"));
        }
        let mut query = sqlx::query(AssertSqlSafe(text));
        for collection in collections {
            query = query.bind(collection.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut types = PropertyTypes::new();
        for row in rows {
            let name: String = row.try_get(0)?;
            let kind: String = row.try_get(1)?;
            types.entry(name).or_default().insert(kind);
        }
        Ok(types)
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![
            PoolStats::of("reader", &self.pool),
            PoolStats::of("writer", &self.writer),
        ]
    }

    async fn migrate(&self) -> Result<()> {
        migrator().run(&self.writer).await?;
        Ok(())
    }

    async fn secret(&self) -> Result<Vec<u8>> {
        let fresh = uuid::Uuid::new_v4().as_bytes().to_vec();
        sqlx::query("INSERT OR IGNORE INTO settings (key, value) VALUES ('token_key', ?)")
            .bind(fresh)
            .execute(&self.writer)
            .await?;
        let key: Vec<u8> = sqlx::query_scalar("SELECT value FROM settings WHERE key = 'token_key'")
            .fetch_one(&self.pool)
            .await?;
        Ok(key)
    }

    async fn collections(&self) -> Result<Vec<StoredCollection>> {
        let rows = sqlx::query("SELECT id, content, extra_links, etag FROM collections ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::decode_collection).collect()
    }

    async fn collection(&self, id: &str) -> Result<Option<StoredCollection>> {
        let row = sqlx::query("SELECT id, content, extra_links, etag FROM collections WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::decode_collection).transpose()
    }

    async fn item(&self, collection: &str, id: &str) -> Result<Option<StoredItem>> {
        let row = sqlx::query(
            "SELECT i.collection, i.id, i.datetime, i.content, i.extra_links, i.etag FROM items i \
             WHERE i.collection = ? AND i.id = ?",
        )
        .bind(collection)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::decode_item).transpose()
    }

    fn page_items(&self, query: &ItemQuery) -> ItemStream {
        let (pool, query) = (self.pool.clone(), query.clone());
        spawn_stream(move |sender| async move {
            if let Err(e) = Self::read_page(pool, query, &sender).await {
                let _ = sender.send(Err(e)).await;
            }
        })
    }

    async fn count(&self, query: &ItemQuery) -> Result<Option<(u64, bool)>> {
        self.count_matches(query).await
    }

    async fn upsert_collection(&self, collection: &PreparedCollection) -> Result<()> {
        sqlx::query(
            "INSERT INTO collections (id, content, extra_links, etag) VALUES (?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET content = excluded.content, \
             extra_links = excluded.extra_links, etag = excluded.etag",
        )
        .bind(&collection.id)
        .bind(&collection.content)
        .bind(&collection.extra_links)
        .bind(&collection.etag)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn create_collection(&self, collection: &PreparedCollection) -> Result<()> {
        let created = sqlx::query(
            "INSERT INTO collections (id, content, extra_links, etag) VALUES (?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&collection.id)
        .bind(&collection.content)
        .bind(&collection.extra_links)
        .bind(&collection.etag)
        .execute(&self.writer)
        .await?
        .rows_affected();
        if created == 0 {
            return Err(Error::Conflict(format!(
                "collection '{}' already exists",
                collection.id
            )));
        }
        Ok(())
    }

    async fn replace_collection(
        &self,
        collection: &PreparedCollection,
        if_match: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let updated = sqlx::query(
            "UPDATE collections SET content = ?, extra_links = ?, etag = ? \
             WHERE id = ? AND (? IS NULL OR etag = ?)",
        )
        .bind(&collection.content)
        .bind(&collection.extra_links)
        .bind(&collection.etag)
        .bind(&collection.id)
        .bind(if_match)
        .bind(if_match)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            let exists = sqlx::query("SELECT 1 FROM collections WHERE id = ?")
                .bind(&collection.id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Err(write_miss(
                &format!("collection '{}'", collection.id),
                exists,
                if_match,
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_collection(&self, id: &str, if_match: Option<&str>, cascade: bool) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let etag: Option<String> = sqlx::query_scalar("SELECT etag FROM collections WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let what = format!("collection '{id}'");
        match (&etag, if_match) {
            (None, _) => return Err(write_miss(&what, false, if_match)),
            (Some(stored), Some(wanted)) if stored != wanted => {
                return Err(write_miss(&what, true, if_match));
            }
            _ => {}
        }
        let items: i64 = sqlx::query_scalar("SELECT count(*) FROM items WHERE collection = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if items > 0 && !cascade {
            return Err(Error::Conflict(format!(
                "collection '{id}' still has {items} item(s); delete them first, or add ?cascade=true to delete them with it"
            )));
        }
        for tree in TREES {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {tree} WHERE pk IN (SELECT pk FROM items WHERE collection = ?)"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM items WHERE collection = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM collection_counts WHERE collection = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM collections WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn replace_item(&self, item: &PreparedItem, if_match: Option<&str>) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let pk: Option<i64> = sqlx::query_scalar(
            "UPDATE items SET datetime = ?, start_datetime = ?, end_datetime = ?, geometry = ?, \
             content = ?, extra_links = ?, etag = ? \
             WHERE collection = ? AND id = ? AND (? IS NULL OR etag = ?) RETURNING pk",
        )
        .bind(item.datetime)
        .bind(item.start)
        .bind(item.end)
        .bind(item.wkb.as_deref())
        .bind(&item.content)
        .bind(&item.extra_links)
        .bind(&item.etag)
        .bind(&item.collection)
        .bind(&item.id)
        .bind(if_match)
        .bind(if_match)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(pk) = pk else {
            let exists = sqlx::query("SELECT 1 FROM items WHERE collection = ? AND id = ?")
                .bind(&item.collection)
                .bind(&item.id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            let what = format!("item '{}' in collection '{}'", item.id, item.collection);
            return Err(write_miss(&what, exists, if_match));
        };
        Self::index_envelope(&mut tx, pk, item).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_item(&self, collection: &str, id: &str, if_match: Option<&str>) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let pk: Option<i64> = sqlx::query_scalar(
            "DELETE FROM items WHERE collection = ? AND id = ? AND (? IS NULL OR etag = ?) RETURNING pk",
        )
        .bind(collection)
        .bind(id)
        .bind(if_match)
        .bind(if_match)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(pk) = pk else {
            let exists = sqlx::query("SELECT 1 FROM items WHERE collection = ? AND id = ?")
                .bind(collection)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Err(write_miss(
                &format!("item '{id}' in collection '{collection}'"),
                exists,
                if_match,
            ));
        };
        Self::unindex(&mut tx, pk).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_items(&self, items: &[PreparedItem], mode: InsertMode) -> Result<u64> {
        let mut tx = self.writer.begin().await?;

        let collections: BTreeSet<&str> = items.iter().map(|i| i.collection.as_str()).collect();
        for collection in &collections {
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM collections WHERE id = ?")
                .bind(*collection)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(Error::NotFound(format!(
                    "collection '{collection}' does not exist; create it before adding items"
                )));
            }
        }

        // Many rows per statement: each statement is a round trip to the thread
        // that runs SQLite, which costs more than the insert of one row.
        let conflict = match mode {
            InsertMode::Insert => "DO NOTHING",
            InsertMode::Upsert => {
                "DO UPDATE SET datetime = excluded.datetime, start_datetime = excluded.start_datetime, \
                 end_datetime = excluded.end_datetime, geometry = excluded.geometry, \
                 content = excluded.content, extra_links = excluded.extra_links, etag = excluded.etag"
            }
        };
        let mut duplicates = Vec::new();
        for chunk in items.chunks(ROWS_PER_STATEMENT) {
            let text = format!(
                "INSERT INTO items (collection, id, datetime, start_datetime, end_datetime, geometry, content, \
                 extra_links, etag) VALUES {} ON CONFLICT (collection, id) {conflict} RETURNING pk, collection, id",
                row_placeholders(chunk.len(), 9)
            );
            let mut query = sqlx::query(AssertSqlSafe(text));
            for item in chunk {
                query = query
                    .bind(&item.collection)
                    .bind(&item.id)
                    .bind(item.datetime)
                    .bind(item.start)
                    .bind(item.end)
                    .bind(item.wkb.as_deref())
                    .bind(&item.content)
                    .bind(&item.extra_links)
                    .bind(&item.etag);
            }
            // RETURNING gives rows in no particular order, so they are matched by key.
            let mut written = HashMap::with_capacity(chunk.len());
            for row in query.fetch_all(&mut *tx).await? {
                let key: (String, String) = (row.try_get(1)?, row.try_get(2)?);
                written.insert(key, row.try_get::<i64, _>(0)?);
            }
            let mut boxes = Vec::with_capacity(chunk.len());
            let mut without_box = Vec::new();
            for item in chunk {
                match written.get(&(item.collection.clone(), item.id.clone())) {
                    None => duplicates.push(format!("{}/{}", item.collection, item.id)),
                    Some(&pk) => match item.envelope {
                        Some(envelope) => boxes.push((pk, envelope, item.start, item.end)),
                        None => without_box.push((pk, item)),
                    },
                }
            }
            Self::index_envelopes(&mut tx, &boxes).await?;
            for (pk, item) in without_box {
                Self::index_envelope(&mut tx, pk, item).await?;
            }
        }
        if !duplicates.is_empty() {
            tx.rollback().await?;
            return Err(duplicate_error(&duplicates));
        }
        tx.commit().await?;
        Ok(items.len() as u64)
    }
}
