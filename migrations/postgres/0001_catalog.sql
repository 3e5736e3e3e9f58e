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
    extra_links jsonb NOT NULL DEFAULT '[]'
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
    PRIMARY KEY (collection, id)
);

-- The default order (datetime descending, then collection and id) and keyset paging.
CREATE INDEX items_sort ON stacd.items (datetime DESC, collection, id);
CREATE INDEX items_geometry ON stacd.items USING gist (geometry);
CREATE INDEX items_id ON stacd.items (id);
CREATE INDEX items_span ON stacd.items (end_datetime, start_datetime);
