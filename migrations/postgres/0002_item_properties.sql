-- The JSON types that stored items have for each property, per collection:
-- the source of /queryables and of the type checks on CQL2 filters. Triggers
-- keep it current on every insert and update. Deleting items leaves their
-- types in place, so the list can name a type that no item has any more.

CREATE TABLE stacd.item_properties (
    collection text COLLATE "C" NOT NULL REFERENCES stacd.collections (id) ON DELETE CASCADE,
    name       text COLLATE "C" NOT NULL,
    type       text NOT NULL,
    PRIMARY KEY (collection, name, type)
);

INSERT INTO stacd.item_properties (collection, name, type)
SELECT DISTINCT i.collection, p.key, jsonb_typeof(p.value)
FROM stacd.items i, jsonb_each(i.content->'properties') p
WHERE jsonb_typeof(i.content->'properties') = 'object'
ON CONFLICT DO NOTHING;

CREATE FUNCTION stacd.record_item_properties() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stacd.item_properties (collection, name, type)
    SELECT DISTINCT c.collection, p.key, jsonb_typeof(p.value)
    FROM changed c, jsonb_each(c.content->'properties') p
    WHERE jsonb_typeof(c.content->'properties') = 'object'
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER items_properties_insert AFTER INSERT ON stacd.items
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stacd.record_item_properties();
CREATE TRIGGER items_properties_update AFTER UPDATE ON stacd.items
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stacd.record_item_properties();
