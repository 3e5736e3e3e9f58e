//! The PostgreSQL + PostGIS store.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};

use super::pg_pools::{PgPools, Replica};
use super::sql::{self, Arg, Dialect};
use super::{
    Backend, ConnectOptions, InsertMode, ItemQuery, ItemStream, SortKey, SortValue, StoredCollection,
    StoredItem, duplicate_error, spawn_stream, write_miss,
};
use crate::error::{Error, Result};
use crate::filter::Kind;
use crate::filter::PropertyTypes;
use crate::metrics::PoolStats;
use crate::prepare::{PreparedCollection, PreparedItem};
use crate::sort::SortField;
use futures::TryStreamExt;
use tokio::sync::mpsc::Sender;

/// The PostgreSQL catalog store.
pub struct PostgresStore {
    /// The primary, which takes every write.
    pool: PgPool,
    /// The primary and the optional read replica, for reads.
    pools: PgPools,
    /// Connection options without the statement timeout, for migrations.
    migration_options: PgConnectOptions,
}

fn migrator() -> sqlx::migrate::Migrator {
    super::migrator(&[
        (
            1,
            "catalog",
            include_str!("../../migrations/postgres/0001_catalog.sql"),
        ),
        (
            2,
            "item properties",
            include_str!("../../migrations/postgres/0002_item_properties.sql"),
        ),
        (
            3,
            "free text",
            include_str!("../../migrations/postgres/0003_free_text.sql"),
        ),
        (
            4,
            "lz4 content",
            include_str!("../../migrations/postgres/0004_lz4_content.sql"),
        ),
        (
            5,
            "space time index",
            include_str!("../../migrations/postgres/0005_space_time_index.sql"),
        ),
    ])
}

/// SQLSTATE of a statement stopped by `statement_timeout`.
const QUERY_CANCELED: &str = "57014";

/// A pooled connection idle for this long is tested before it is used.
const IDLE_BEFORE_TEST: Duration = Duration::from_secs(1);

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn to_time(micros: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn bind_all<'q>(mut query: PgQuery<'q>, args: &[Arg]) -> PgQuery<'q> {
    for arg in args {
        query = match arg {
            Arg::Text(v) => query.bind(v.clone()),
            Arg::TextList(v) => query.bind(v.clone()),
            Arg::Float(v) => query.bind(*v),
            Arg::Time(v) => query.bind(to_time(*v)),
            Arg::Bytes(v) => query.bind(v.clone()),
            Arg::Bool(v) => query.bind(*v),
        };
    }
    query
}

const ITEM_COLUMNS: &str =
    "i.collection, i.id, i.datetime, i.content::text AS content, i.extra_links::text AS extra_links, i.etag";

impl PostgresStore {
    /// Connects, and checks that PostGIS is available. With a statement
    /// timeout, PostgreSQL cancels any statement that runs longer.
    pub async fn connect(url: &str, settings: &ConnectOptions) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::InvalidParameter(format!("invalid PostgreSQL URL: {e}")))?;
        let migration_options = options.clone();
        let pool = Self::ping_idle_only(Self::pool_options(settings, settings.acquire_timeout))
            .connect_with(Self::with_timeout(options, settings))
            .await?;
        let replica = match &settings.read_url {
            Some(read_url) => {
                let options = PgConnectOptions::from_str(read_url)
                    .map_err(|e| Error::InvalidParameter(format!("invalid read replica URL: {e}")))?;
                // A replica that is down costs each read at most this wait before it goes to the primary.
                let wait = settings.acquire_timeout.min(Duration::from_secs(1));
                let replica_pool = Self::pool_options(settings, wait)
                    .connect_lazy_with(Self::with_timeout(options, settings));
                Some(Arc::new(Replica::new(replica_pool)))
            }
            None => None,
        };
        let store = PostgresStore {
            pools: PgPools {
                primary: pool.clone(),
                replica,
            },
            pool,
            migration_options,
        };
        store.ensure_postgis().await?;
        if let Some(replica) = &store.pools.replica
            && !replica.ping().await
        {
            tracing::warn!(
                "the read replica does not respond at start-up; reads use the primary until it does"
            );
        }
        Ok(store)
    }

    fn pool_options(settings: &ConnectOptions, acquire_timeout: Duration) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(acquire_timeout)
    }

    /// Pings only connections that were idle, for the primary's pool.
    ///
    /// sqlx pings a connection when it returns to the pool, and by default
    /// again when it is taken out, which makes three round trips of a lookup by
    /// id instead of two. Only a connection idle long enough for the server or
    /// a proxy to have closed it is pinged again. The replica's pool keeps the
    /// ping before each use, because reads move to the primary when that ping
    /// fails, where a failed query would be an error.
    fn ping_idle_only(options: PgPoolOptions) -> PgPoolOptions {
        options
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_TEST {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            })
    }

    fn with_timeout(options: PgConnectOptions, settings: &ConnectOptions) -> PgConnectOptions {
        // JIT compilation pays off for long analytical queries; for searches that
        // take milliseconds it adds tens of milliseconds of compile time.
        let options = options.options([("jit", "off")]);
        match settings.statement_timeout {
            Some(timeout) => {
                options.options([("statement_timeout", format!("{}ms", timeout.as_millis().max(1)))])
            }
            None => options,
        }
    }

    /// Creates the PostGIS extension when it is installed but not enabled, and
    /// fails with a clear message when it is not installed at all.
    async fn ensure_postgis(&self) -> Result<()> {
        let enabled: Option<String> =
            sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
                .fetch_optional(&self.pool)
                .await?;
        if enabled.is_some() {
            return Ok(());
        }
        let available: Option<String> =
            sqlx::query_scalar("SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'")
                .fetch_optional(&self.pool)
                .await?;
        if available.is_none() {
            return Err(Error::Unavailable(
                "PostGIS is not installed on this PostgreSQL server; install it (on Debian: \
                 apt-get install postgresql-15-postgis-3) and restart"
                    .into(),
            ));
        }
        sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis")
            .execute(&self.pool)
            .await
            .map_err(|e| {
                Error::Unavailable(format!(
                    "PostGIS is installed but not enabled in this database, and enabling it failed ({e}); \
                     run CREATE EXTENSION postgis as a superuser"
                ))
            })?;
        Ok(())
    }

    fn decode_item(row: &PgRow) -> Result<StoredItem> {
        Self::decode_sorted_item(row, &[])
    }

    /// Decodes an item with the values of the sort fields, selected as `s0`, `s1`, ...
    fn decode_sorted_item(row: &PgRow, sort: &[SortField]) -> Result<StoredItem> {
        let mut values = Vec::with_capacity(sort.len());
        for (n, field) in sort.iter().enumerate() {
            let column = format!("s{n}");
            let value = match field.kind() {
                Kind::Number => row
                    .try_get::<Option<f64>, _>(column.as_str())?
                    .map(SortValue::Number),
                Kind::Time => row
                    .try_get::<Option<DateTime<Utc>>, _>(column.as_str())?
                    .map(|t| SortValue::Time(t.timestamp_micros())),
                _ => row
                    .try_get::<Option<String>, _>(column.as_str())?
                    .map(SortValue::Text),
            };
            values.push(value.unwrap_or(SortValue::Missing));
        }
        let datetime: DateTime<Utc> = row.try_get("datetime")?;
        Ok(StoredItem {
            key: SortKey {
                collection: row.try_get("collection")?,
                id: row.try_get("id")?,
                datetime: datetime.timestamp_micros(),
                sort: values,
            },
            content: row.try_get("content")?,
            extra_links: row.try_get("extra_links")?,
            etag: row.try_get("etag")?,
        })
    }

    fn decode_collection(row: &PgRow) -> Result<StoredCollection> {
        Ok(StoredCollection {
            id: row.try_get("id")?,
            content: row.try_get("content")?,
            extra_links: row.try_get("extra_links")?,
            etag: row.try_get("etag")?,
        })
    }

    async fn fetch_collection(connection: &mut PgConnection, id: &str) -> Result<Option<StoredCollection>> {
        let row = sqlx::query(
            "SELECT id, content::text AS content, extra_links::text AS extra_links, etag \
             FROM stacd.collections WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
        row.as_ref().map(Self::decode_collection).transpose()
    }

    async fn fetch_item(
        connection: &mut PgConnection,
        collection: &str,
        id: &str,
    ) -> Result<Option<StoredItem>> {
        let text = format!("SELECT {ITEM_COLUMNS} FROM stacd.items i WHERE i.collection = $1 AND i.id = $2");
        let row = sqlx::query(AssertSqlSafe(text))
            .bind(collection)
            .bind(id)
            .fetch_optional(&mut *connection)
            .await?;
        row.as_ref().map(Self::decode_item).transpose()
    }

    /// Tells whether a row with this key exists, inside a transaction.
    async fn exists(tx: &mut sqlx::PgConnection, sql: &'static str, keys: &[&str]) -> Result<bool> {
        let mut query = sqlx::query(sql);
        for key in keys {
            query = query.bind(*key);
        }
        Ok(query.fetch_optional(&mut *tx).await?.is_some())
    }

    /// Reads one page of items in order and sends them until the receiver is gone.
    async fn read_page(pools: PgPools, query: ItemQuery, sender: &Sender<Result<StoredItem>>) -> Result<()> {
        let filter = sql::filter_with_cursor(&query, query.cursor.as_ref(), Dialect::Postgres)
            .map_err(Error::Internal)?;
        // The inner query picks and orders the rows; the outer one turns JSON into
        // text for those rows only. Written as one query, PostgreSQL would cast
        // every matching row before sorting them.
        let sort_columns: String = (0..query.sort.len()).map(|n| format!(", i.s{n}")).collect();
        let text = format!(
            "SELECT {ITEM_COLUMNS}{sort_columns} FROM (SELECT i.collection, i.id, i.datetime, \
             i.content, i.extra_links, i.etag{} FROM stacd.items i {} {} LIMIT {}) i {}",
            filter.select,
            filter.sql,
            filter.order,
            query.limit + 1,
            filter.order,
        );
        let mut connection = pools.read().await?;
        let mut rows = bind_all(sqlx::query(AssertSqlSafe(text)), &filter.args).fetch(&mut *connection);
        while let Some(row) = rows.try_next().await? {
            if sender
                .send(Ok(Self::decode_sorted_item(&row, &query.sort)?))
                .await
                .is_err()
            {
                break;
            }
        }
        Ok(())
    }

    /// Counts the items a search matches. Whole collections are counted from
    /// `collection_counts`. Other searches are counted exactly up to
    /// `query.count_limit`, and above it the planner's row estimate is returned
    /// (never less than the exact bound). With `query.count_timeout`, the count
    /// runs in a transaction whose statement timeout is that budget, and a
    /// count that reaches it gives `None`.
    async fn count_matches(&self, query: &ItemQuery) -> Result<Option<(u64, bool)>> {
        let mut connection = self.pools.read().await?;
        if query.selects_whole_collections() {
            let total: i64 = sqlx::query_scalar(
                "SELECT coalesce(sum(items), 0)::bigint FROM stacd.collection_counts \
                 WHERE cardinality($1::text[]) = 0 OR collection = ANY($1)",
            )
            .bind(&query.collections)
            .fetch_one(&mut *connection)
            .await?;
            return Ok(Some((total.max(0) as u64, false)));
        }
        let filter = sql::filter(query, Dialect::Postgres).map_err(Error::Internal)?;
        let bounded = format!(
            "SELECT count(*) FROM (SELECT 1 FROM stacd.items i {} LIMIT {}) s",
            filter.sql,
            query.count_limit + 1
        );
        let counted = match query.count_timeout {
            None => {
                bind_all(sqlx::query(AssertSqlSafe(bounded)), &filter.args)
                    .fetch_one(&mut *connection)
                    .await
            }
            Some(budget) => {
                let begin = format!(
                    "BEGIN; SET LOCAL statement_timeout = {}",
                    budget.as_millis().max(1)
                );
                let mut tx = sqlx::Connection::begin_with(&mut *connection, AssertSqlSafe(begin)).await?;
                let counted = bind_all(sqlx::query(AssertSqlSafe(bounded)), &filter.args)
                    .fetch_one(&mut *tx)
                    .await;
                tx.rollback().await?;
                counted
            }
        };
        let count: i64 = match counted {
            Ok(row) => row.try_get(0)?,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(QUERY_CANCELED) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let count = count as u64;
        if count <= query.count_limit {
            return Ok(Some((count, false)));
        }
        let explain = format!("EXPLAIN (FORMAT JSON) SELECT 1 FROM stacd.items i {}", filter.sql);
        let plan: serde_json::Value = bind_all(sqlx::query(AssertSqlSafe(explain)), &filter.args)
            .fetch_one(&mut *connection)
            .await?
            .try_get(0)?;
        let estimate = plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0) as u64;
        Ok(Some((estimate.max(count), true)))
    }
}

#[async_trait]
impl Backend for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn version(&self) -> Result<String> {
        let row = sqlx::query("SELECT current_setting('server_version'), postgis_lib_version()")
            .fetch_one(&self.pool)
            .await?;
        let server: String = row.try_get(0)?;
        let postgis: String = row.try_get(1)?;
        Ok(format!("PostgreSQL {server}, PostGIS {postgis}"))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn ping_replica(&self) -> Option<bool> {
        Some(self.pools.replica.as_ref()?.ping().await)
    }

    async fn property_types(&self, collections: &[String]) -> Result<PropertyTypes> {
        let mut connection = self.pools.read().await?;
        let rows = sqlx::query(
            "SELECT name, type FROM stacd.item_properties \
             WHERE cardinality($1::text[]) = 0 OR collection = ANY($1)",
        )
        .bind(collections)
        .fetch_all(&mut *connection)
        .await?;
        let mut types = PropertyTypes::new();
        for row in rows {
            let name: String = row.try_get(0)?;
            let kind: String = row.try_get(1)?;
            types.entry(name).or_default().insert(kind);
        }
        Ok(types)
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.pools.stats()
    }

    async fn migrate(&self) -> Result<()> {
        // Migrations may build indexes on large tables, so the serving
        // statement timeout does not apply to them.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.migration_options.clone())
            .await?;
        let result = migrator().run(&pool).await;
        pool.close().await;
        result?;
        Ok(())
    }

    async fn secret(&self) -> Result<Vec<u8>> {
        let fresh = uuid::Uuid::new_v4().as_bytes().to_vec();
        sqlx::query(
            "INSERT INTO stacd.settings (key, value) VALUES ('token_key', $1) ON CONFLICT DO NOTHING",
        )
        .bind(fresh)
        .execute(&self.pool)
        .await?;
        let key: Vec<u8> = sqlx::query_scalar("SELECT value FROM stacd.settings WHERE key = 'token_key'")
            .fetch_one(&self.pool)
            .await?;
        Ok(key)
    }

    async fn collections(&self) -> Result<Vec<StoredCollection>> {
        let mut connection = self.pools.read().await?;
        let rows = sqlx::query(
            "SELECT id, content::text AS content, extra_links::text AS extra_links, etag \
             FROM stacd.collections ORDER BY id",
        )
        .fetch_all(&mut *connection)
        .await?;
        rows.iter().map(Self::decode_collection).collect()
    }

    async fn collection(&self, id: &str) -> Result<Option<StoredCollection>> {
        let mut connection = self.pools.read().await?;
        Self::fetch_collection(&mut connection, id).await
    }

    async fn latest_collection(&self, id: &str) -> Result<Option<StoredCollection>> {
        let mut connection = self.pools.write().await?;
        Self::fetch_collection(&mut connection, id).await
    }

    async fn item(&self, collection: &str, id: &str) -> Result<Option<StoredItem>> {
        let mut connection = self.pools.read().await?;
        Self::fetch_item(&mut connection, collection, id).await
    }

    async fn latest_item(&self, collection: &str, id: &str) -> Result<Option<StoredItem>> {
        let mut connection = self.pools.write().await?;
        Self::fetch_item(&mut connection, collection, id).await
    }

    fn page_items(&self, query: &ItemQuery) -> ItemStream {
        let (pools, query) = (self.pools.clone(), query.clone());
        spawn_stream(move |sender| async move {
            if let Err(e) = Self::read_page(pools, query, &sender).await {
                let _ = sender.send(Err(e)).await;
            }
        })
    }

    async fn count(&self, query: &ItemQuery) -> Result<Option<(u64, bool)>> {
        self.count_matches(query).await
    }

    async fn upsert_collection(&self, collection: &PreparedCollection) -> Result<()> {
        sqlx::query(
            "INSERT INTO stacd.collections (id, content, extra_links, etag) VALUES ($1, $2::jsonb, $3::jsonb, $4) \
             ON CONFLICT (id) DO UPDATE SET content = excluded.content, extra_links = excluded.extra_links, \
             etag = excluded.etag",
        )
        .bind(&collection.id)
        .bind(&collection.content)
        .bind(&collection.extra_links)
        .bind(&collection.etag)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_collection(&self, collection: &PreparedCollection) -> Result<()> {
        let created = sqlx::query(
            "INSERT INTO stacd.collections (id, content, extra_links, etag) VALUES ($1, $2::jsonb, $3::jsonb, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&collection.id)
        .bind(&collection.content)
        .bind(&collection.extra_links)
        .bind(&collection.etag)
        .execute(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE stacd.collections SET content = $1::jsonb, extra_links = $2::jsonb, etag = $3 \
             WHERE id = $4 AND ($5::text IS NULL OR etag = $5)",
        )
        .bind(&collection.content)
        .bind(&collection.extra_links)
        .bind(&collection.etag)
        .bind(&collection.id)
        .bind(if_match)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            let exists = Self::exists(
                &mut tx,
                "SELECT 1 FROM stacd.collections WHERE id = $1",
                &[&collection.id],
            )
            .await?;
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
        let mut tx = self.pool.begin().await?;
        // Locks the row, so no item can be added to the collection until the transaction ends.
        let etag: Option<String> =
            sqlx::query_scalar("SELECT etag FROM stacd.collections WHERE id = $1 FOR UPDATE")
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
        let has_items = Self::exists(
            &mut tx,
            "SELECT 1 FROM stacd.items WHERE collection = $1 LIMIT 1",
            &[id],
        )
        .await?;
        if has_items && !cascade {
            return Err(Error::Conflict(format!(
                "collection '{id}' still has items; delete them first, or add ?cascade=true to delete them with it"
            )));
        }
        for statement in [
            "DELETE FROM stacd.items WHERE collection = $1",
            "DELETE FROM stacd.collection_counts WHERE collection = $1",
            "DELETE FROM stacd.collections WHERE id = $1",
        ] {
            sqlx::query(statement).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn replace_item(&self, item: &PreparedItem, if_match: Option<&str>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE stacd.items SET datetime = $1, start_datetime = $2, end_datetime = $3, \
             geometry = ST_GeomFromWKB($4, 4326), content = $5::jsonb, extra_links = $6::jsonb, etag = $7 \
             WHERE collection = $8 AND id = $9 AND ($10::text IS NULL OR etag = $10)",
        )
        .bind(to_time(item.datetime))
        .bind(to_time(item.start))
        .bind(to_time(item.end))
        .bind(item.wkb.as_deref())
        .bind(&item.content)
        .bind(&item.extra_links)
        .bind(&item.etag)
        .bind(&item.collection)
        .bind(&item.id)
        .bind(if_match)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            let exists = Self::exists(
                &mut tx,
                "SELECT 1 FROM stacd.items WHERE collection = $1 AND id = $2",
                &[&item.collection, &item.id],
            )
            .await?;
            let what = format!("item '{}' in collection '{}'", item.id, item.collection);
            return Err(write_miss(&what, exists, if_match));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_item(&self, collection: &str, id: &str, if_match: Option<&str>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            "DELETE FROM stacd.items WHERE collection = $1 AND id = $2 AND ($3::text IS NULL OR etag = $3)",
        )
        .bind(collection)
        .bind(id)
        .bind(if_match)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 0 {
            let exists = Self::exists(
                &mut tx,
                "SELECT 1 FROM stacd.items WHERE collection = $1 AND id = $2",
                &[collection, id],
            )
            .await?;
            return Err(write_miss(
                &format!("item '{id}' in collection '{collection}'"),
                exists,
                if_match,
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_items(&self, items: &[PreparedItem], mode: InsertMode) -> Result<u64> {
        if items.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;

        let wanted: Vec<String> = items
            .iter()
            .map(|i| i.collection.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let found: Vec<String> = sqlx::query_scalar("SELECT id FROM stacd.collections WHERE id = ANY($1)")
            .bind(&wanted)
            .fetch_all(&mut *tx)
            .await?;
        if let Some(missing) = wanted.iter().find(|c| !found.contains(c)) {
            return Err(Error::NotFound(format!(
                "collection '{missing}' does not exist; create it before adding items"
            )));
        }

        // One statement per batch: the columns travel as arrays and UNNEST turns them into rows.
        let on_conflict = match mode {
            InsertMode::Insert => "ON CONFLICT (collection, id) DO NOTHING",
            InsertMode::Upsert => {
                "ON CONFLICT (collection, id) DO UPDATE SET datetime = excluded.datetime, \
                 start_datetime = excluded.start_datetime, end_datetime = excluded.end_datetime, \
                 geometry = excluded.geometry, content = excluded.content, extra_links = excluded.extra_links, \
                 etag = excluded.etag"
            }
        };
        let text = format!(
            "INSERT INTO stacd.items (collection, id, datetime, start_datetime, end_datetime, geometry, content, extra_links, etag) \
             SELECT c, i, d, s, e, ST_GeomFromWKB(g, 4326), t::jsonb, l::jsonb, h \
             FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[], \
                         $6::bytea[], $7::text[], $8::text[], $9::text[]) AS u(c, i, d, s, e, g, t, l, h) \
             {on_conflict} RETURNING collection, id"
        );
        let rows = sqlx::query(AssertSqlSafe(text))
            .bind(items.iter().map(|i| i.collection.clone()).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.id.clone()).collect::<Vec<_>>())
            .bind(items.iter().map(|i| to_time(i.datetime)).collect::<Vec<_>>())
            .bind(items.iter().map(|i| to_time(i.start)).collect::<Vec<_>>())
            .bind(items.iter().map(|i| to_time(i.end)).collect::<Vec<_>>())
            .bind(
                items
                    .iter()
                    .map(|i| i.wkb.clone())
                    .collect::<Vec<Option<Vec<u8>>>>(),
            )
            .bind(items.iter().map(|i| i.content.clone()).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.extra_links.clone()).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.etag.clone()).collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .await?;
        if rows.len() != items.len() {
            let written: HashSet<(String, String)> = rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_>>()?;
            let duplicates: Vec<String> = items
                .iter()
                .filter(|i| !written.contains(&(i.collection.clone(), i.id.clone())))
                .map(|i| format!("{}/{}", i.collection, i.id))
                .collect();
            tx.rollback().await?;
            if duplicates.is_empty() {
                // Every key was written once, so the batch itself repeats a key.
                return Err(Error::Conflict(
                    "the batch repeats a collection/id pair; each item may appear once".into(),
                ));
            }
            return Err(duplicate_error(&duplicates));
        }
        tx.commit().await?;
        Ok(items.len() as u64)
    }
}
