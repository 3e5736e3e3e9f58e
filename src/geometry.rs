//! GeoJSON geometry parsing and checks shared by searches and writes.

use geo::{BoundingRect, Geometry};
use geojson::{GeometryValue, Position};
use serde_json::Value;

/// Parses a GeoJSON geometry object and checks that its coordinates are
/// finite, in WGS 84 range, and that polygon rings are closed with at least
/// four positions. `what` names the value in error messages.
pub fn parse_geojson(value: &Value, what: &str) -> Result<Geometry<f64>, String> {
    if !value.is_object() {
        return Err(format!("{what} must be a GeoJSON geometry object"));
    }
    let geometry: geojson::Geometry = serde_json::from_value(value.clone())
        .map_err(|e| format!("{what} is not a valid GeoJSON geometry: {e}"))?;
    check_value(&geometry.value, what)?;
    Geometry::<f64>::try_from(&geometry.value)
        .map_err(|e| format!("{what} is not a valid GeoJSON geometry: {e}"))
}

fn check_value(value: &GeometryValue, what: &str) -> Result<(), String> {
    match value {
        GeometryValue::Point { coordinates } => check_position(coordinates, what),
        GeometryValue::MultiPoint { coordinates } => {
            if coordinates.is_empty() {
                return Err(format!("{what}: a MultiPoint needs at least one position"));
            }
            coordinates.iter().try_for_each(|p| check_position(p, what))
        }
        GeometryValue::LineString { coordinates } => check_line(coordinates, what),
        GeometryValue::MultiLineString { coordinates } => {
            if coordinates.is_empty() {
                return Err(format!("{what}: a MultiLineString needs at least one line"));
            }
            coordinates.iter().try_for_each(|l| check_line(l, what))
        }
        GeometryValue::Polygon { coordinates } => check_polygon(coordinates, what),
        GeometryValue::MultiPolygon { coordinates } => {
            if coordinates.is_empty() {
                return Err(format!("{what}: a MultiPolygon needs at least one polygon"));
            }
            coordinates.iter().try_for_each(|p| check_polygon(p, what))
        }
        GeometryValue::GeometryCollection { geometries } => {
            if geometries.is_empty() {
                return Err(format!(
                    "{what}: a GeometryCollection needs at least one geometry"
                ));
            }
            // RFC 7946 section 3.1.8 advises against nesting; rejecting it also bounds recursion.
            if geometries
                .iter()
                .any(|g| matches!(g.value, GeometryValue::GeometryCollection { .. }))
            {
                return Err(format!(
                    "{what}: a GeometryCollection inside a GeometryCollection is not accepted; flatten it"
                ));
            }
            geometries.iter().try_for_each(|g| check_value(&g.value, what))
        }
    }
}

fn check_position(position: &Position, what: &str) -> Result<(), String> {
    let coordinates = position.as_slice();
    if coordinates.len() < 2 || coordinates.len() > 3 {
        return Err(format!(
            "{what}: a position needs 2 or 3 numbers, found {}",
            coordinates.len()
        ));
    }
    if coordinates.iter().any(|c| !c.is_finite()) {
        return Err(format!("{what}: coordinates must be finite numbers"));
    }
    let (lon, lat) = (coordinates[0], coordinates[1]);
    if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        return Err(format!(
            "{what}: position [{lon}, {lat}] is outside WGS 84 (longitude -180..180, latitude -90..90)"
        ));
    }
    Ok(())
}

fn check_line(line: &[Position], what: &str) -> Result<(), String> {
    if line.len() < 2 {
        return Err(format!(
            "{what}: a LineString needs at least 2 positions, found {}",
            line.len()
        ));
    }
    line.iter().try_for_each(|p| check_position(p, what))
}

fn check_polygon(rings: &[Vec<Position>], what: &str) -> Result<(), String> {
    if rings.is_empty() {
        return Err(format!("{what}: a Polygon needs at least one ring"));
    }
    for ring in rings {
        if ring.len() < 4 {
            return Err(format!(
                "{what}: a polygon ring needs at least 4 positions, found {}",
                ring.len()
            ));
        }
        ring.iter().try_for_each(|p| check_position(p, what))?;
        let (first, last) = (ring[0].as_slice(), ring[ring.len() - 1].as_slice());
        if first[..2] != last[..2] {
            return Err(format!(
                "{what}: a polygon ring must be closed (first position {first:?} differs from last {last:?})"
            ));
        }
    }
    Ok(())
}

/// Returns `[west, south, east, north]` of a geometry, or `None` when it is empty.
pub fn envelope(geometry: &Geometry<f64>) -> Option<[f64; 4]> {
    geometry
        .bounding_rect()
        .map(|r| [r.min().x, r.min().y, r.max().x, r.max().y])
}

/// Encodes a geometry as 2D little-endian WKB.
pub fn to_wkb(geometry: &Geometry<f64>) -> Result<Vec<u8>, String> {
    use geozero::{CoordDimensions, ToWkb};
    geometry
        .to_wkb(CoordDimensions::xy())
        .map_err(|e| format!("cannot encode geometry as WKB: {e}"))
}

/// Decodes WKB written by `to_wkb`.
pub fn from_wkb(bytes: &[u8]) -> Result<Geometry<f64>, String> {
    use geozero::ToGeo;
    geozero::wkb::Wkb(bytes.to_vec())
        .to_geo()
        .map_err(|e| format!("cannot decode stored geometry: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_accepts_every_geometry_type() {
        let cases = [
            json!({"type": "Point", "coordinates": [1.0, 2.0]}),
            json!({"type": "MultiPoint", "coordinates": [[1.0, 2.0], [3.0, 4.0]]}),
            json!({"type": "LineString", "coordinates": [[1.0, 2.0], [3.0, 4.0]]}),
            json!({"type": "MultiLineString", "coordinates": [[[1.0, 2.0], [3.0, 4.0]]]}),
            json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}),
            json!({"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]}),
            json!({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 2]}]}),
        ];
        for case in cases {
            assert!(parse_geojson(&case, "intersects").is_ok(), "{case}");
        }
    }

    #[test]
    fn parse_rejects_open_ring() {
        let open = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]});
        let error = parse_geojson(&open, "intersects").unwrap_err();
        assert!(error.contains("closed"), "{error}");
    }

    #[test]
    fn parse_rejects_short_ring_and_out_of_range() {
        let short = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]});
        assert!(parse_geojson(&short, "g").unwrap_err().contains("at least 4"));
        let far = json!({"type": "Point", "coordinates": [200.0, 0.0]});
        assert!(parse_geojson(&far, "g").unwrap_err().contains("outside WGS 84"));
        let unknown = json!({"type": "Circle", "coordinates": [0, 0]});
        assert!(parse_geojson(&unknown, "g").is_err());
        assert!(parse_geojson(&json!("POINT(0 0)"), "g").is_err());
    }

    #[test]
    fn wkb_round_trip_is_exact() {
        let value = json!({"type": "Polygon", "coordinates": [[[0.123456789012345, 0], [1, 0], [1, 1], [0.123456789012345, 0]]]});
        let geometry = parse_geojson(&value, "g").unwrap();
        let back = from_wkb(&to_wkb(&geometry).unwrap()).unwrap();
        assert_eq!(geometry, back);
    }
}
