//! SQL functions that the SQLite store adds to each connection, and the
//! interruption of a running statement.
//!
//! SQLite has no spatial predicates of its own, and stacd does not load
//! SpatiaLite, so `stacd_relate(a, b, relation)` tests DE-9IM relations of two
//! WKB geometries with the `geo` crate. sqlx has no safe wrapper for
//! registering scalar functions, so this goes through the SQLite C API, as
//! sqlx does for its own REGEXP function.

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;

use geo::Relate;
use libsqlite3_sys as ffi;

use super::cql2_sql::SPATIAL_RELATIONS;
use crate::geometry::from_wkb;

/// Registers the functions on a connection.
///
/// # Safety
/// `db` must be an open SQLite connection handle, used only by this thread during the call.
pub(super) unsafe fn register(db: NonNull<ffi::sqlite3>) -> Result<(), String> {
    let name = c"stacd_relate";
    // SAFETY: the handle is open, the name is a NUL-terminated static string,
    // and the function pointer has the signature SQLite expects.
    let code = unsafe {
        ffi::sqlite3_create_function_v2(
            db.as_ptr(),
            name.as_ptr(),
            3,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC,
            std::ptr::null_mut::<c_void>(),
            Some(relate),
            None,
            None,
            None,
        )
    };
    if code == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(format!("registering stacd_relate failed with SQLite code {code}"))
    }
}

/// Reads a BLOB argument, or `None` for NULL and other types.
///
/// # Safety
/// `value` must be an argument of the current function call.
unsafe fn blob<'a>(value: *mut ffi::sqlite3_value) -> Option<&'a [u8]> {
    // SAFETY: SQLite keeps the blob valid until the function returns, and the
    // length comes from the same value.
    unsafe {
        if ffi::sqlite3_value_type(value) != ffi::SQLITE_BLOB {
            return None;
        }
        let data = ffi::sqlite3_value_blob(value) as *const u8;
        let length = usize::try_from(ffi::sqlite3_value_bytes(value)).ok()?;
        if data.is_null() {
            return Some(&[]);
        }
        Some(std::slice::from_raw_parts(data, length))
    }
}

/// Computes the relation; `None` when an argument is not a geometry.
fn relation_holds(a: &[u8], b: &[u8], relation: usize) -> Option<bool> {
    let (a, b) = (from_wkb(a).ok()?, from_wkb(b).ok()?);
    let matrix = a.relate(&b);
    Some(match *SPATIAL_RELATIONS.get(relation)? {
        "intersects" => matrix.is_intersects(),
        "equals" => matrix.is_equal_topo(),
        "disjoint" => matrix.is_disjoint(),
        "touches" => matrix.is_touches(),
        "within" => matrix.is_within(),
        "overlaps" => matrix.is_overlaps(),
        "crosses" => matrix.is_crosses(),
        _ => matrix.is_contains(),
    })
}

/// `stacd_relate(a BLOB, b BLOB, relation INTEGER)`: 1 or 0, NULL when a
/// geometry is NULL or not valid WKB.
unsafe extern "C" fn relate(
    context: *mut ffi::sqlite3_context,
    count: c_int,
    values: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite passes `count` (3, as registered) argument values.
    let arguments = unsafe { std::slice::from_raw_parts(values, count as usize) };
    let [a, b, relation] = arguments else {
        // SAFETY: the context belongs to this call.
        unsafe { ffi::sqlite3_result_null(context) };
        return;
    };
    // SAFETY: the values are arguments of this call.
    let (a, b, relation) = unsafe { (blob(*a), blob(*b), ffi::sqlite3_value_int(*relation)) };
    let outcome = match (a, b, usize::try_from(relation)) {
        // A panic must not unwind into SQLite, so it becomes NULL.
        (Some(a), Some(b), Ok(relation)) => {
            std::panic::catch_unwind(|| relation_holds(a, b, relation)).unwrap_or(None)
        }
        _ => None,
    };
    // SAFETY: the context belongs to this call.
    unsafe {
        match outcome {
            Some(holds) => ffi::sqlite3_result_int(context, c_int::from(holds)),
            None => ffi::sqlite3_result_null(context),
        }
    }
}

/// Stops the statement running on a connection from another task: the count
/// of a search that has used up its time.
pub(super) struct Interrupter(NonNull<ffi::sqlite3>);

// SAFETY: `sqlite3_interrupt` may be called from any thread; the pointer is
// only passed to it.
unsafe impl Send for Interrupter {}
// SAFETY: as above; the pointer is never dereferenced in Rust.
unsafe impl Sync for Interrupter {}

impl Interrupter {
    pub(super) fn new(db: NonNull<ffi::sqlite3>) -> Self {
        Interrupter(db)
    }

    /// Makes the running statement of the connection fail with SQLITE_INTERRUPT.
    ///
    /// # Safety
    /// The connection must still be open.
    pub(super) unsafe fn interrupt(&self) {
        // SAFETY: the caller keeps the connection open; SQLite allows this call
        // from any thread while a statement runs.
        unsafe { ffi::sqlite3_interrupt(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Geometry, Point, Rect, coord};

    fn wkb(geometry: Geometry<f64>) -> Vec<u8> {
        crate::geometry::to_wkb(&geometry).unwrap()
    }

    #[test]
    fn relations_follow_de9im() {
        let square = wkb(Geometry::Rect(Rect::new(
            coord! { x: 0.0, y: 0.0 },
            coord! { x: 2.0, y: 2.0 },
        )));
        let inside = wkb(Geometry::Point(Point::new(1.0, 1.0)));
        let corner = wkb(Geometry::Point(Point::new(2.0, 2.0)));
        let position = |name: &str| SPATIAL_RELATIONS.iter().position(|r| *r == name).unwrap();
        assert_eq!(relation_holds(&square, &inside, position("contains")), Some(true));
        assert_eq!(relation_holds(&inside, &square, position("within")), Some(true));
        assert_eq!(relation_holds(&corner, &square, position("touches")), Some(true));
        assert_eq!(relation_holds(&corner, &square, position("within")), Some(false));
        assert_eq!(relation_holds(&square, &square, position("equals")), Some(true));
        assert_eq!(relation_holds(&inside, &corner, position("disjoint")), Some(true));
        assert_eq!(relation_holds(b"not wkb", &square, 0), None);
    }
}
