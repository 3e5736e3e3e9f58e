//! The OpenAPI document that `/api` serves.

use serde_json::Value;

/// The OpenAPI document of the read API; `{{SERVER_URL}}` is replaced with the base URL.
const OPENAPI: &str = include_str!("../../schemas/openapi.json");
/// The write operations, merged into the document when writes are enabled.
const OPENAPI_TRANSACTIONS: &str = include_str!("../../schemas/openapi-transactions.json");

/// Returns the OpenAPI document, with the write operations when `writes` is set.
/// The merged variant is built once.
pub(super) fn openapi_document(writes: bool) -> &'static str {
    static WRITE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if !writes {
        return OPENAPI;
    }
    WRITE.get_or_init(|| match merge_openapi(OPENAPI, OPENAPI_TRANSACTIONS) {
        Ok(document) => document,
        Err(e) => {
            tracing::error!(error = %e, "cannot merge the write operations into the OpenAPI document");
            OPENAPI.to_string()
        }
    })
}

/// Adds the methods of each path in `extra` to the same path of `base`, and
/// the members of each `components` map.
fn merge_openapi(base: &str, extra: &str) -> std::result::Result<String, serde_json::Error> {
    let mut base: Value = serde_json::from_str(base)?;
    let extra: Value = serde_json::from_str(extra)?;
    for section in ["paths", "components"] {
        let Some(additions) = extra.get(section).and_then(Value::as_object) else {
            continue;
        };
        for (name, members) in additions {
            let target = &mut base[section][name];
            match (target.as_object_mut(), members.as_object()) {
                (Some(existing), Some(members)) => {
                    for (key, value) in members {
                        existing.insert(key.clone(), value.clone());
                    }
                }
                _ => *target = members.clone(),
            }
        }
    }
    serde_json::to_string(&base)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_operations_merge_into_the_document() {
        let merged: Value = serde_json::from_str(openapi_document(true)).unwrap();
        let item = &merged["paths"]["/collections/{collectionId}/items/{itemId}"];
        assert!(item["get"].is_object(), "the read operation stays");
        assert!(item["put"].is_object());
        assert!(item["delete"].is_object());
        assert!(merged["components"]["securitySchemes"]["bearerAuth"].is_object());
        assert!(merged["components"]["schemas"]["exception"].is_object());
        let read: Value = serde_json::from_str(openapi_document(false)).unwrap();
        assert!(read["paths"]["/collections/{collectionId}/items/{itemId}"]["put"].is_null());
    }
}
