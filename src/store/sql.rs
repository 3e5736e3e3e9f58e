//! The WHERE and ORDER BY clauses of an item search, written once for both
//! SQL dialects. Every value is a bound parameter; only column names and
//! placeholders are ever written into the SQL text.

use geo::{Geometry, Intersects, Rect, coord};

use crate::filter::Kind;
use crate::geometry::to_wkb;
use crate::sort::{SortField, SortTarget};
use crate::store::{Cursor, Direction, ItemQuery, SortValue};
use crate::text::TextQuery;

/// The SQL dialect to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite with the R*Tree module.
    Sqlite,
    /// PostgreSQL with PostGIS.
    Postgres,
}

/// A bound parameter value.
#[derive(Debug, Clone)]
pub enum Arg {
    /// A text value.
    Text(String),
    /// A list of text values (PostgreSQL arrays; SQLite gets one placeholder each).
    TextList(Vec<String>),
    /// A float.
    Float(f64),
    /// A time in microseconds since the Unix epoch.
    Time(i64),
    /// Binary data (WKB).
    Bytes(Vec<u8>),
    /// A boolean (PostgreSQL only; SQLite compares JSON booleans as 1 and 0).
    Bool(bool),
}

/// A WHERE clause with its parameters, and the geometries that the SQLite
/// store must test exactly after the R*Tree has selected candidates.
#[derive(Debug, Default)]
pub struct Filter {
    /// The condition, starting with `WHERE`, or empty.
    pub sql: String,
    /// The ORDER BY clause of a page.
    pub order: String,
    /// Extra SELECT columns `s0`, `s1`, ... with the sort field values, each
    /// starting with a comma; empty in the default order.
    pub select: String,
    /// Parameters in placeholder order.
    pub args: Vec<Arg>,
    /// Geometries an item must intersect (any of them); empty when there is
    /// no spatial filter.
    pub geometries: Vec<Geometry<f64>>,
}

impl Filter {
    /// Tells whether a stored geometry passes the exact spatial test.
    pub fn matches_geometry(&self, geometry: Option<&Geometry<f64>>) -> bool {
        if self.geometries.is_empty() {
            return true;
        }
        match geometry {
            Some(g) => self.geometries.iter().any(|f| f.intersects(g)),
            None => false,
        }
    }
}

/// Collects the parameters of one statement and writes their placeholders.
/// Placeholders are numbered (`$N` in PostgreSQL, `?N` in SQLite), so parts
/// of the statement can be written in any order.
pub(super) struct Writer {
    pub(super) dialect: Dialect,
    conditions: Vec<String>,
    pub(super) args: Vec<Arg>,
    /// SQLite parameters bound so far; a text list takes one per element.
    sqlite_count: usize,
}

impl Writer {
    pub(super) fn new(dialect: Dialect) -> Self {
        Writer {
            dialect,
            conditions: Vec::new(),
            args: Vec::new(),
            sqlite_count: 0,
        }
    }

    /// Adds a parameter and returns its placeholder.
    pub(super) fn bind(&mut self, arg: Arg) -> String {
        let placeholder = match (&arg, self.dialect) {
            (Arg::TextList(values), Dialect::Sqlite) => {
                let first = self.sqlite_count + 1;
                self.sqlite_count += values.len();
                let list: Vec<String> = (first..first + values.len()).map(|n| format!("?{n}")).collect();
                // An empty list matches nothing.
                if list.is_empty() {
                    "(NULL)".to_string()
                } else {
                    format!("({})", list.join(", "))
                }
            }
            (_, Dialect::Sqlite) => {
                self.sqlite_count += 1;
                format!("?{}", self.sqlite_count)
            }
            (_, Dialect::Postgres) => format!("${}", self.args.len() + 1),
        };
        self.args.push(arg);
        placeholder
    }
}

/// Turns a box into the geometry it stands for: a point, a line or a polygon
/// when it has zero width or height, so degenerate boxes still match.
pub fn bbox_geometry(bbox: &[f64; 4]) -> Geometry<f64> {
    let [west, south, east, north] = *bbox;
    if west == east && south == north {
        Geometry::Point(geo::Point::new(west, south))
    } else if west == east || south == north {
        Geometry::Line(geo::Line::new(
            coord! { x: west, y: south },
            coord! { x: east, y: north },
        ))
    } else {
        Geometry::Rect(Rect::new(
            coord! { x: west, y: south },
            coord! { x: east, y: north },
        ))
    }
}

/// Writes the filter of a search for counting: no pagination and no order,
/// so its parameters are only those of the condition.
pub fn filter(query: &ItemQuery, dialect: Dialect) -> Result<Filter, String> {
    write_filter(query, None, false, dialect)
}

/// Writes the filter of a page of a search, including the keyset condition
/// of `cursor` and the order.
pub fn filter_with_cursor(
    query: &ItemQuery,
    cursor: Option<&Cursor>,
    dialect: Dialect,
) -> Result<Filter, String> {
    write_filter(query, cursor, true, dialect)
}

fn write_filter(
    query: &ItemQuery,
    cursor: Option<&Cursor>,
    ordered: bool,
    dialect: Dialect,
) -> Result<Filter, String> {
    let mut w = Writer::new(dialect);

    // Collections and ids: equality lists, served by the primary key and the id index.
    // One value becomes `=`, so the planner can walk the (collection, datetime, id)
    // index in order instead of sorting the matches of an IN list.
    let list_condition = |w: &mut Writer, column: &str, values: &[String]| {
        let condition = match (values, dialect) {
            ([single], _) => format!("i.{column} = {}", w.bind(Arg::Text(single.clone()))),
            (_, Dialect::Sqlite) => format!("i.{column} IN {}", w.bind(Arg::TextList(values.to_vec()))),
            (_, Dialect::Postgres) => format!("i.{column} = ANY({})", w.bind(Arg::TextList(values.to_vec()))),
        };
        w.conditions.push(condition);
    };
    if !query.collections.is_empty() {
        list_condition(&mut w, "collection", &query.collections);
    }
    if !query.ids.is_empty() {
        list_condition(&mut w, "id", &query.ids);
    }

    // Space: the item must intersect any of the boxes, or the geometry.
    let mut geometries: Vec<(Geometry<f64>, [f64; 4])> =
        query.bboxes.iter().map(|b| (bbox_geometry(b), *b)).collect();
    if let Some(spatial) = &query.intersects {
        geometries.push((spatial.geometry.clone(), spatial.bbox));
    }
    if !geometries.is_empty() {
        let mut alternatives = Vec::new();
        for (geometry, bbox) in &geometries {
            match dialect {
                Dialect::Sqlite => {
                    let [west, south, east, north] = *bbox;
                    let max_x = w.bind(Arg::Float(west));
                    let min_x = w.bind(Arg::Float(east));
                    let max_y = w.bind(Arg::Float(south));
                    let min_y = w.bind(Arg::Float(north));
                    // With a datetime interval, the space-time tree narrows the
                    // candidates by time in the same lookup. Without one, the
                    // footprint tree is faster: its nodes are tighter in space.
                    let mut span = String::new();
                    if let Some((start, end)) = query.datetime {
                        if let Some(start) = start {
                            span += &format!(" AND max_t >= {}", w.bind(Arg::Float(tree_time(start))));
                        }
                        if let Some(end) = end {
                            span += &format!(" AND min_t <= {}", w.bind(Arg::Float(tree_time(end))));
                        }
                    }
                    let tree = if span.is_empty() {
                        "items_rtree"
                    } else {
                        "items_space_time"
                    };
                    alternatives.push(format!(
                        "SELECT pk FROM {tree} WHERE max_x >= {max_x} AND min_x <= {min_x} \
                         AND max_y >= {max_y} AND min_y <= {min_y}{span}"
                    ));
                }
                Dialect::Postgres => {
                    let wkb = w.bind(Arg::Bytes(to_wkb(geometry)?));
                    alternatives.push(format!("ST_Intersects(i.geometry, ST_GeomFromWKB({wkb}, 4326))"));
                }
            }
        }
        let condition = match dialect {
            Dialect::Sqlite => format!("i.pk IN ({})", alternatives.join(" UNION ")),
            Dialect::Postgres => format!("({})", alternatives.join(" OR ")),
        };
        w.conditions.push(condition);
    }

    // Time: the item's span [start, end] overlaps the requested interval.
    if let Some((start, end)) = query.datetime {
        if let Some(start) = start {
            let p = w.bind(Arg::Time(start));
            w.conditions.push(format!("i.end_datetime >= {p}"));
        }
        if let Some(end) = end {
            let p = w.bind(Arg::Time(end));
            w.conditions.push(format!("i.start_datetime <= {p}"));
        }
        // The same overlap as a range, which the space-time GiST index can
        // evaluate together with the footprint. The two conditions above serve
        // the B-tree on the span when there is no spatial filter.
        if dialect == Dialect::Postgres && (start.is_some() || end.is_some()) {
            let mut bound = |value: Option<i64>| match value {
                Some(t) => w.bind(Arg::Time(t)),
                None => "NULL".to_string(),
            };
            let (s, e) = (bound(start), bound(end));
            w.conditions.push(format!(
                "tstzrange(i.start_datetime, i.end_datetime, '[]') && tstzrange({s}, {e}, '[]')"
            ));
        }
    }

    // Properties: the CQL2 filter.
    if let Some(filter) = &query.filter {
        let condition = super::cql2_sql::condition(&mut w, &filter.condition);
        w.conditions.push(condition);
    }

    // Free text: whole words in the full-text index.
    if let Some(text) = &query.text {
        let condition = text_condition(&mut w, text);
        w.conditions.push(condition);
    }

    // Keyset: strictly after (or before) the boundary item in the sort order.
    let direction = cursor.map_or(Direction::Next, |c| c.direction);
    if let Some(cursor) = cursor {
        let condition = if query.sort.is_empty() {
            default_keyset(&mut w, cursor)
        } else {
            sorted_keyset(&mut w, &query.sort, cursor)?
        };
        w.conditions.push(condition);
    }

    let sql = if w.conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", w.conditions.join(" AND "))
    };
    let (order, select) = if !ordered {
        (String::new(), String::new())
    } else if query.sort.is_empty() {
        (order_by(direction).to_string(), String::new())
    } else {
        sorted_order(&mut w, &query.sort, direction)
    };
    Ok(Filter {
        sql,
        order,
        select,
        args: w.args,
        geometries: geometries.into_iter().map(|(g, _)| g).collect(),
    })
}

/// Converts microseconds to the time unit of the SQLite space-time R*Tree: 2^50
/// microseconds, so that five years weigh like a seventh of a degree when the
/// tree splits its nodes (migration 4 of the SQLite store explains why).
/// SQLite computes the same value in that migration: both convert the integer
/// to the nearest `f64`, and dividing by a power of two is exact. Both steps
/// keep the order of times, so the tree never misses an item.
pub(super) fn tree_time(microseconds: i64) -> f64 {
    microseconds as f64 / 1_125_899_906_842_624.0
}

/// Writes the condition of a free-text query, with one full-text match per phrase.
fn text_condition(w: &mut Writer, text: &TextQuery) -> String {
    let join = |w: &mut Writer, parts: &[TextQuery], separator: &str| {
        let parts: Vec<String> = parts.iter().map(|p| text_condition(w, p)).collect();
        format!("({})", parts.join(separator))
    };
    match text {
        TextQuery::Phrase(words) => match w.dialect {
            Dialect::Postgres => {
                let p = w.bind(Arg::Text(words.join(" ")));
                format!("i.search @@ phraseto_tsquery('simple', {p})")
            }
            Dialect::Sqlite => {
                // An FTS5 string is a phrase; the words hold only letters and digits.
                let phrase = format!("\"{}\"", words.join(" ").replace('"', "\"\""));
                let p = w.bind(Arg::Text(phrase));
                format!("i.pk IN (SELECT rowid FROM items_fts WHERE items_fts MATCH {p})")
            }
        },
        TextQuery::And(parts) => join(w, parts, " AND "),
        TextQuery::Or(parts) => join(w, parts, " OR "),
        TextQuery::Not(inner) => format!("(NOT {})", text_condition(w, inner)),
    }
}

/// Writes the keyset condition of the default order.
fn default_keyset(w: &mut Writer, cursor: &Cursor) -> String {
    let (time_op, text_op) = match cursor.direction {
        Direction::Next => ("<", ">"),
        Direction::Prev => (">", "<"),
    };
    let t0 = w.bind(Arg::Time(cursor.key.datetime));
    let t1 = w.bind(Arg::Time(cursor.key.datetime));
    let t2 = w.bind(Arg::Time(cursor.key.datetime));
    let c1 = w.bind(Arg::Text(cursor.key.collection.clone()));
    let c2 = w.bind(Arg::Text(cursor.key.collection.clone()));
    let id = w.bind(Arg::Text(cursor.key.id.clone()));
    // The first term repeats what the rest implies, as a plain range on `datetime`,
    // because an index scan can start from a range but not from the OR.
    format!(
        "(i.datetime {time_op}= {t0} AND (i.datetime {time_op} {t1} OR (i.datetime = {t2} \
         AND (i.collection {text_op} {c1} OR (i.collection = {c2} AND i.id {text_op} {id})))))"
    )
}

/// Writes the SQL value of a sort field. Text compares bytewise in both stores.
fn sort_expression(w: &mut Writer, field: &SortField) -> String {
    match &field.target {
        SortTarget::Column(column) => super::cql2_sql::column(*column).to_string(),
        SortTarget::Property(name, kind) => {
            let value = super::cql2_sql::property(w, name, *kind);
            match (kind, w.dialect) {
                (Kind::Text, Dialect::Postgres) => format!("({value} COLLATE \"C\")"),
                _ => value,
            }
        }
    }
}

/// Writes the keyset condition of a requested sort: the rows after (or, for a
/// `prev` page, before) the cursor, with missing values last.
fn sorted_keyset(w: &mut Writer, sort: &[SortField], cursor: &Cursor) -> Result<String, String> {
    if cursor.key.sort.len() != sort.len() {
        return Err("the page token does not match the sort fields".into());
    }
    let forward = cursor.direction == Direction::Next;
    // Built from the last field back, so each level wraps the ones after it.
    let tie = if forward { ">" } else { "<" };
    let c1 = w.bind(Arg::Text(cursor.key.collection.clone()));
    let c2 = w.bind(Arg::Text(cursor.key.collection.clone()));
    let id = w.bind(Arg::Text(cursor.key.id.clone()));
    let mut rest = format!("(i.collection {tie} {c1} OR (i.collection = {c2} AND i.id {tie} {id}))");
    for (field, value) in sort.iter().zip(&cursor.key.sort).rev() {
        let ascending_in_read = field.descending != forward;
        let op = if ascending_in_read { ">" } else { "<" };
        let arg = match value {
            SortValue::Missing => None,
            SortValue::Number(n) => Some(Arg::Float(*n)),
            SortValue::Text(t) => Some(Arg::Text(t.clone())),
            SortValue::Time(t) => Some(Arg::Time(*t)),
        };
        rest = match (arg, forward) {
            (None, true) => {
                let e = sort_expression(w, field);
                format!("(({e}) IS NULL AND {rest})")
            }
            (None, false) => {
                let e1 = sort_expression(w, field);
                let e2 = sort_expression(w, field);
                format!("(({e1}) IS NOT NULL OR (({e2}) IS NULL AND {rest}))")
            }
            (Some(arg), true) => {
                let (e1, e2, e3) = (
                    sort_expression(w, field),
                    sort_expression(w, field),
                    sort_expression(w, field),
                );
                let (v1, v2) = (w.bind(arg.clone()), w.bind(arg));
                format!("(({e1}) IS NULL OR {e2} {op} {v1} OR ({e3} = {v2} AND {rest}))")
            }
            (Some(arg), false) => {
                let (e1, e2) = (sort_expression(w, field), sort_expression(w, field));
                let (v1, v2) = (w.bind(arg.clone()), w.bind(arg));
                format!("({e1} {op} {v1} OR ({e2} = {v2} AND {rest}))")
            }
        };
    }
    Ok(rest)
}

/// Writes the ORDER BY clause and the extra SELECT columns of a requested sort.
fn sorted_order(w: &mut Writer, sort: &[SortField], direction: Direction) -> (String, String) {
    let forward = direction == Direction::Next;
    let mut terms = Vec::new();
    let mut select = String::new();
    for (n, field) in sort.iter().enumerate() {
        let expression = sort_expression(w, field);
        if field.nullable() {
            terms.push(format!(
                "(({expression}) IS NULL) {}",
                if forward { "ASC" } else { "DESC" }
            ));
        }
        let ascending_in_read = field.descending != forward;
        terms.push(format!(
            "{expression} {}",
            if ascending_in_read { "ASC" } else { "DESC" }
        ));
        let value = sort_expression(w, field);
        // SQLite reads JSON integers as INTEGER, so numbers are cast to one type.
        let value = match (field.kind(), w.dialect) {
            (Kind::Number, Dialect::Sqlite) => format!("CAST({value} AS REAL)"),
            _ => value,
        };
        select.push_str(&format!(", {value} AS s{n}"));
    }
    let tie = if forward { "ASC" } else { "DESC" };
    terms.push(format!("i.collection {tie}"));
    terms.push(format!("i.id {tie}"));
    (format!("ORDER BY {}", terms.join(", ")), select)
}

/// Returns the ORDER BY clause for a page read in `direction`. Pages before a cursor
/// are read in reverse and flipped afterwards.
pub fn order_by(direction: Direction) -> &'static str {
    match direction {
        Direction::Next => "ORDER BY i.datetime DESC, i.collection ASC, i.id ASC",
        Direction::Prev => "ORDER BY i.datetime ASC, i.collection DESC, i.id DESC",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SortKey;

    #[test]
    fn values_never_enter_the_sql_text() {
        let query = ItemQuery {
            collections: vec!["x'; DROP TABLE items; --".into()],
            ids: vec!["a".into(), "b".into()],
            bboxes: vec![[0.0, 0.0, 1.0, 1.0]],
            datetime: Some((Some(1), None)),
            ..ItemQuery::default()
        };
        let cursor = Cursor {
            direction: Direction::Next,
            key: SortKey {
                datetime: 5,
                collection: "c".into(),
                id: "' OR 1=1".into(),
                sort: Vec::new(),
            },
        };
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let filter = filter_with_cursor(&query, Some(&cursor), dialect).unwrap();
            assert!(!filter.sql.contains("DROP"), "{}", filter.sql);
            assert!(!filter.sql.contains("OR 1=1"), "{}", filter.sql);
        }
    }

    #[test]
    fn sqlite_placeholders_match_args() {
        let query = ItemQuery {
            ids: vec!["a".into(), "b".into(), "c".into()],
            bboxes: vec![[0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]],
            ..ItemQuery::default()
        };
        let filter = filter(&query, Dialect::Sqlite).unwrap();
        let placeholders = filter.sql.matches('?').count();
        let values: usize = filter
            .args
            .iter()
            .map(|a| match a {
                Arg::TextList(v) => v.len(),
                _ => 1,
            })
            .sum();
        assert_eq!(placeholders, values);
    }

    #[test]
    fn degenerate_boxes_become_points_and_lines() {
        assert!(matches!(bbox_geometry(&[1.0, 1.0, 1.0, 1.0]), Geometry::Point(_)));
        assert!(matches!(bbox_geometry(&[1.0, 1.0, 2.0, 1.0]), Geometry::Line(_)));
        assert!(matches!(bbox_geometry(&[1.0, 1.0, 2.0, 2.0]), Geometry::Rect(_)));
    }
}
