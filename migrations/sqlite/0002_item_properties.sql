-- The JSON types that stored items have for each property, per collection:
-- the source of /queryables and of the type checks on CQL2 filters. Types use
-- the JSON Schema names (number, string, boolean, array, object, null).
-- Triggers keep the table current on every insert and update; they test for
-- existing rows instead of using INSERT OR IGNORE, because the conflict clause
-- of the outer INSERT (an upsert) would override theirs. Deleting items
-- leaves their types in place, so the list can name a type that no item has
-- any more.

CREATE TABLE item_properties (
    collection TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    type       TEXT NOT NULL,
    PRIMARY KEY (collection, name, type)
);

INSERT OR IGNORE INTO item_properties (collection, name, type)
SELECT DISTINCT i.collection, p.key,
    CASE p.type WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' WHEN 'text' THEN 'string'
        WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' ELSE p.type END
FROM items i, json_each(i.content, '$.properties') p
WHERE json_type(i.content, '$.properties') = 'object';

CREATE TRIGGER items_properties_insert AFTER INSERT ON items
WHEN json_type(new.content, '$.properties') = 'object'
BEGIN
    INSERT INTO item_properties (collection, name, type)
    SELECT new.collection, t.name, t.type
    FROM (SELECT p.key AS name,
            CASE p.type WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' WHEN 'text' THEN 'string'
                WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' ELSE p.type END AS type
          FROM json_each(new.content, '$.properties') p) t
    WHERE NOT EXISTS (SELECT 1 FROM item_properties x
                      WHERE x.collection = new.collection AND x.name = t.name AND x.type = t.type);
END;

CREATE TRIGGER items_properties_update AFTER UPDATE OF content ON items
WHEN json_type(new.content, '$.properties') = 'object'
BEGIN
    INSERT INTO item_properties (collection, name, type)
    SELECT new.collection, t.name, t.type
    FROM (SELECT p.key AS name,
            CASE p.type WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' WHEN 'text' THEN 'string'
                WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' ELSE p.type END AS type
          FROM json_each(new.content, '$.properties') p) t
    WHERE NOT EXISTS (SELECT 1 FROM item_properties x
                      WHERE x.collection = new.collection AND x.name = t.name AND x.type = t.type);
END;
