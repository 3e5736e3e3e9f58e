-- One GiST index over footprint and time span. A search with both a bbox (or
-- geometry) and a datetime interval then reads only the items that match both,
-- where the footprint index alone read every item of the area over all years
-- and dropped the others one by one. It serves footprint-only searches as well,
-- so it replaces the footprint index.

CREATE INDEX items_geometry_span ON stacd.items
    USING gist (geometry, tstzrange(start_datetime, end_datetime, '[]'));
DROP INDEX stacd.items_geometry;
