-- Free-text search over items: the id, and the title, description and
-- keywords of the properties, as words of the 'simple' configuration
-- (lower-cased, not stemmed), so a term matches whole words in any language.

ALTER TABLE stacd.items ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple',
        id || ' ' ||
        coalesce(content->'properties'->>'title', '') || ' ' ||
        coalesce(content->'properties'->>'description', '') || ' ' ||
        coalesce((content->'properties'->'keywords')::text, ''))
) STORED;

CREATE INDEX items_search ON stacd.items USING gin (search);
