-- Free-text search over items: the id, and the title, description and
-- keywords of the properties, in an FTS5 index keyed by the item's rowid.
-- Diacritics are kept, as in the PostgreSQL store's 'simple' configuration,
-- so both stores match the same words.

CREATE VIRTUAL TABLE items_fts USING fts5(
    words,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0'
);

INSERT INTO items_fts (rowid, words)
SELECT pk, id || ' ' ||
    coalesce(json_extract(content, '$.properties.title'), '') || ' ' ||
    coalesce(json_extract(content, '$.properties.description'), '') || ' ' ||
    coalesce(json_extract(content, '$.properties.keywords'), '')
FROM items;

CREATE TRIGGER items_fts_insert AFTER INSERT ON items
BEGIN
    INSERT INTO items_fts (rowid, words) VALUES (new.pk, new.id || ' ' ||
        coalesce(json_extract(new.content, '$.properties.title'), '') || ' ' ||
        coalesce(json_extract(new.content, '$.properties.description'), '') || ' ' ||
        coalesce(json_extract(new.content, '$.properties.keywords'), ''));
END;

CREATE TRIGGER items_fts_delete AFTER DELETE ON items
BEGIN
    DELETE FROM items_fts WHERE rowid = old.pk;
END;

CREATE TRIGGER items_fts_update AFTER UPDATE OF content ON items
BEGIN
    DELETE FROM items_fts WHERE rowid = old.pk;
    INSERT INTO items_fts (rowid, words) VALUES (new.pk, new.id || ' ' ||
        coalesce(json_extract(new.content, '$.properties.title'), '') || ' ' ||
        coalesce(json_extract(new.content, '$.properties.description'), '') || ' ' ||
        coalesce(json_extract(new.content, '$.properties.keywords'), ''));
END;
