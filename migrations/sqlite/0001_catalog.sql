-- The embedded catalog store.
--
-- Items keep their JSON document (without links) beside the columns that
-- searches filter and sort on. Times are microseconds since the Unix epoch, so
-- comparisons are integer comparisons. The R*Tree holds each geometry's
-- envelope in 32-bit floats rounded outward, so it only selects candidates;
-- the exact geometry test runs on the WKB in `items.geometry`.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE collections (
    id          TEXT PRIMARY KEY,
    content     TEXT NOT NULL,
    extra_links TEXT NOT NULL DEFAULT '[]',
    -- Strong entity tag of the stored document, for If-Match.
    etag        TEXT NOT NULL
);

CREATE TABLE items (
    pk             INTEGER PRIMARY KEY,
    collection     TEXT NOT NULL REFERENCES collections (id),
    id             TEXT NOT NULL,
    -- `datetime`, or `start_datetime` when `datetime` is null: the sort key.
    datetime       INTEGER NOT NULL,
    start_datetime INTEGER NOT NULL,
    end_datetime   INTEGER NOT NULL,
    geometry       BLOB,
    content        TEXT NOT NULL,
    extra_links    TEXT NOT NULL DEFAULT '[]',
    -- Strong entity tag of the stored document, for If-Match.
    etag           TEXT NOT NULL,
    UNIQUE (collection, id)
);

-- The default order (datetime descending, then collection and id) and keyset paging.
CREATE INDEX items_sort ON items (datetime DESC, collection, id);
-- The same order within one collection, for /collections/{id}/items.
CREATE INDEX items_collection_sort ON items (collection, datetime DESC, id);
CREATE INDEX items_id ON items (id);
CREATE INDEX items_end ON items (end_datetime);

CREATE VIRTUAL TABLE items_rtree USING rtree (pk, min_x, max_x, min_y, max_y);

-- Item counts per collection, kept by triggers, so that numberMatched of a
-- search that selects whole collections costs one lookup whatever their size.
CREATE TABLE collection_counts (
    collection TEXT PRIMARY KEY,
    items      INTEGER NOT NULL
);

CREATE TRIGGER items_count_insert AFTER INSERT ON items
BEGIN
    INSERT INTO collection_counts (collection, items) VALUES (new.collection, 1)
        ON CONFLICT (collection) DO UPDATE SET items = items + 1;
END;

CREATE TRIGGER items_count_delete AFTER DELETE ON items
BEGIN
    UPDATE collection_counts SET items = items - 1 WHERE collection = old.collection;
END;
