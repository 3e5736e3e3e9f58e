-- The PostgreSQL + PostGIS catalog store, in its own schema.
--
-- Items keep their JSON document (without links) beside the columns that
-- searches filter and sort on. Text keys use the "C" collation so that
-- ordering and keyset comparisons are bytewise, as in the SQLite store.

CREATE SCHEMA IF NOT EXISTS stacd;

CREATE TABLE stacd.settings (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE stacd.collections (
    id          text COLLATE "C" PRIMARY KEY,
    content     jsonb NOT NULL,
    extra_links jsonb NOT NULL DEFAULT '[]',
    -- Strong entity tag of the stored document, for If-Match.
    etag        text NOT NULL
);

CREATE TABLE stacd.items (
    collection     text COLLATE "C" NOT NULL REFERENCES stacd.collections (id),
    id             text COLLATE "C" NOT NULL,
    -- `datetime`, or `start_datetime` when `datetime` is null: the sort key.
    datetime       timestamptz NOT NULL,
    start_datetime timestamptz NOT NULL,
    end_datetime   timestamptz NOT NULL,
    geometry       geometry(Geometry, 4326),
    content        jsonb NOT NULL,
    extra_links    jsonb NOT NULL DEFAULT '[]',
    -- Strong entity tag of the stored document, for If-Match.
    etag           text NOT NULL,
    PRIMARY KEY (collection, id)
);

-- The default order (datetime descending, then collection and id) and keyset paging.
CREATE INDEX items_sort ON stacd.items (datetime DESC, collection, id);
-- The same order within one collection, for /collections/{id}/items.
CREATE INDEX items_collection_sort ON stacd.items (collection, datetime DESC, id);
CREATE INDEX items_geometry ON stacd.items USING gist (geometry);
CREATE INDEX items_id ON stacd.items (id);
CREATE INDEX items_span ON stacd.items (end_datetime, start_datetime);

-- Item counts per collection, kept by statement-level triggers, so that
-- numberMatched of a search that selects whole collections costs one lookup
-- whatever their size. An upsert that replaces an item fires the UPDATE
-- trigger, not the INSERT one, so it does not change the count.
CREATE TABLE stacd.collection_counts (
    collection text COLLATE "C" PRIMARY KEY,
    items      bigint NOT NULL
);

CREATE FUNCTION stacd.count_inserted_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stacd.collection_counts (collection, items)
    SELECT collection, count(*) FROM inserted GROUP BY collection
    ON CONFLICT (collection) DO UPDATE SET items = stacd.collection_counts.items + excluded.items;
    RETURN NULL;
END $$;

CREATE FUNCTION stacd.count_deleted_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE stacd.collection_counts c SET items = c.items - d.n
    FROM (SELECT collection, count(*) AS n FROM deleted GROUP BY collection) d
    WHERE c.collection = d.collection;
    RETURN NULL;
END $$;

CREATE TRIGGER items_count_insert AFTER INSERT ON stacd.items
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION stacd.count_inserted_items();
CREATE TRIGGER items_count_delete AFTER DELETE ON stacd.items
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION stacd.count_deleted_items();
