//! Stream catalogs declared in `specs/*.toml`.
//!
//! One file per connector lists its streams: endpoint, primary key, cursor,
//! pagination style, write disposition, and the Arrow fields with types and
//! docs. Connectors embed their file with `include_str!` and parse it here, so
//! no schema is written as Rust literals.
//!
//! ```
//! let catalog = weft_core::Catalog::from_toml("example", r#"
//! connector = "example"
//! [[streams]]
//! name = "users"
//! endpoint = "/users"
//! primary_key = ["id"]
//! cursor = "updated"
//! [[streams.fields]]
//! name = "id"
//! type = "string"
//! doc = "User id."
//! [[streams.fields]]
//! name = "updated"
//! type = "unix_seconds"
//! doc = "Last change."
//! "#).unwrap();
//! let users = catalog.stream("users").unwrap();
//! assert_eq!(users.spec.primary_key, vec!["id".to_string()]);
//! assert!(users.spec.is_incremental());
//! ```

use std::collections::HashSet;

use arrow_schema::Schema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use weft_arrow::FieldType;

use crate::CoreError;
use crate::spec::{DELETED_AT, StreamSpec, SyncMode, WriteDisposition};

/// A parsed stream catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Connector the catalog belongs to.
    pub connector: String,
    /// Its streams, in declaration order.
    pub streams: Vec<CatalogStream>,
}

/// One declared stream: its [`StreamSpec`] plus how to fetch it.
#[derive(Debug, Clone)]
pub struct CatalogStream {
    /// The engine-facing spec (keys, cursor, schema).
    pub spec: StreamSpec,
    /// API path the stream is read from.
    pub endpoint: Option<String>,
    /// Pagination style name (connector-interpreted).
    pub pagination: Option<String>,
    /// Whether the API reports deletions (adds `_weft_deleted_at`).
    pub deletes: bool,
    /// The declared fields, with types and docs.
    pub fields: Vec<DeclaredField>,
    /// Connector-specific options from the stream's `options` table.
    options: serde_json::Value,
}

impl CatalogStream {
    /// Deserializes the connector-specific `options` table of this stream.
    pub fn options<T: DeserializeOwned>(&self) -> Result<T, CoreError> {
        serde_json::from_value(self.options.clone()).map_err(|e| CoreError::Catalog {
            catalog: self.spec.name.clone(),
            reason: format!("stream `{}` options: {e}", self.spec.name),
        })
    }
}

/// A field as declared in a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredField {
    /// Column name (the API's field name).
    pub name: String,
    /// Logical type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// What the field means.
    #[serde(default)]
    pub doc: String,
    /// Whether the value may be null or absent (primary key fields never are).
    #[serde(default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    connector: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    streams: Vec<RawStream>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStream {
    name: String,
    #[serde(default)]
    description: String,
    endpoint: Option<String>,
    pagination: Option<String>,
    #[serde(default)]
    primary_key: Vec<String>,
    cursor: Option<String>,
    sync_modes: Option<Vec<SyncMode>>,
    #[serde(default)]
    write_disposition: WriteDisposition,
    #[serde(default)]
    deletes: bool,
    #[serde(default)]
    options: Option<toml::Table>,
    fields: Vec<DeclaredField>,
}

impl Catalog {
    /// Parses a catalog from TOML text; `origin` names it in errors.
    pub fn from_toml(origin: &str, text: &str) -> Result<Catalog, CoreError> {
        let err = |reason: String| CoreError::Catalog {
            catalog: origin.to_string(),
            reason,
        };
        let raw: RawCatalog = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut names = HashSet::new();
        let mut streams = Vec::with_capacity(raw.streams.len());
        for s in raw.streams {
            if !names.insert(s.name.clone()) {
                return Err(err(format!("stream `{}` is declared twice", s.name)));
            }
            streams.push(build_stream(s).map_err(err)?);
        }
        Ok(Catalog {
            connector: raw.connector,
            streams,
        })
    }

    /// The stream with this name.
    pub fn stream(&self, name: &str) -> Option<&CatalogStream> {
        self.streams.iter().find(|s| s.spec.name == name)
    }

    /// The stream with this name, or [`CoreError::UnknownStream`] naming
    /// `connector` and the streams it declares.
    pub fn require(&self, connector: &str, name: &str) -> Result<&CatalogStream, CoreError> {
        self.stream(name).ok_or_else(|| {
            CoreError::unknown_stream(
                connector,
                name,
                self.streams.iter().map(|s| s.spec.name.as_str()),
            )
        })
    }

    /// The specs of every stream, in declaration order.
    pub fn specs(&self) -> Vec<StreamSpec> {
        self.streams.iter().map(|s| s.spec.clone()).collect()
    }
}

fn build_stream(s: RawStream) -> Result<CatalogStream, String> {
    let mut seen = HashSet::new();
    for f in &s.fields {
        if !seen.insert(f.name.as_str()) {
            return Err(format!(
                "stream `{}`: field `{}` is declared twice",
                s.name, f.name
            ));
        }
    }
    for key in s.primary_key.iter().chain(s.cursor.iter()) {
        if !seen.contains(key.as_str()) {
            return Err(format!(
                "stream `{}`: key or cursor `{key}` is not a declared field",
                s.name
            ));
        }
    }
    let mut fields: Vec<_> = s
        .fields
        .iter()
        .map(|f| {
            let nullable = f.nullable && !s.primary_key.contains(&f.name);
            f.field_type.field(&f.name, nullable, &f.doc)
        })
        .collect();
    if s.deletes {
        fields.push(FieldType::Timestamp.field(
            DELETED_AT,
            true,
            "When the source reported this record deleted; null while it exists.",
        ));
    }
    let sync_modes = s.sync_modes.unwrap_or_else(|| {
        if s.cursor.is_some() {
            vec![SyncMode::FullRefresh, SyncMode::Incremental]
        } else {
            vec![SyncMode::FullRefresh]
        }
    });
    if sync_modes.contains(&SyncMode::Incremental) && s.cursor.is_none() {
        return Err(format!("stream `{}`: incremental without a cursor", s.name));
    }
    let options = match s.options {
        Some(t) => serde_json::to_value(t).map_err(|e| e.to_string())?,
        None => serde_json::Value::Object(Default::default()),
    };
    Ok(CatalogStream {
        spec: StreamSpec {
            name: s.name,
            description: s.description,
            primary_key: s.primary_key,
            cursor_field: s.cursor,
            sync_modes,
            write_disposition: s.write_disposition,
            schema: std::sync::Arc::new(Schema::new(fields)),
        },
        endpoint: s.endpoint,
        pagination: s.pagination,
        deletes: s.deletes,
        fields: s.fields,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
connector = "t"
[[streams]]
name = "a"
primary_key = ["id"]
cursor = "ts"
deletes = true
[streams.options]
events = ["a.updated"]
[[streams.fields]]
name = "id"
type = "string"
[[streams.fields]]
name = "ts"
type = "unix_seconds"
[[streams.fields]]
name = "meta"
type = "json"
"#;

    #[test]
    fn parses_keys_cursor_deletes_and_options() {
        let c = Catalog::from_toml("t", BASE).unwrap();
        let a = c.stream("a").unwrap();
        let schema = &a.spec.schema;
        assert_eq!(schema.fields().len(), 4);
        assert!(!schema.field_with_name("id").unwrap().is_nullable());
        assert!(schema.field_with_name("ts").unwrap().is_nullable());
        assert!(weft_arrow::is_json_field(
            schema.field_with_name("meta").unwrap()
        ));
        assert!(schema.field_with_name(DELETED_AT).is_ok());
        assert_eq!(
            a.spec.sync_modes,
            vec![SyncMode::FullRefresh, SyncMode::Incremental]
        );
        #[derive(Deserialize)]
        struct Opts {
            events: Vec<String>,
        }
        let o: Opts = a.options().unwrap();
        assert_eq!(o.events, vec!["a.updated"]);
    }

    #[test]
    fn rejects_key_that_is_not_a_field() {
        let bad = BASE.replace(r#"primary_key = ["id"]"#, r#"primary_key = ["nope"]"#);
        let e = Catalog::from_toml("t", &bad).unwrap_err().to_string();
        assert!(e.contains("`nope` is not a declared field"), "{e}");
    }

    #[test]
    fn rejects_unknown_type_and_duplicate_field() {
        let bad = BASE.replace(r#"type = "json""#, r#"type = "blob""#);
        assert!(Catalog::from_toml("t", &bad).is_err());
        let dup = BASE.replace(r#"name = "meta""#, r#"name = "id""#);
        let e = Catalog::from_toml("t", &dup).unwrap_err().to_string();
        assert!(e.contains("declared twice"), "{e}");
    }

    #[test]
    fn require_names_the_connector_and_its_streams() {
        let c = Catalog::from_toml("t", BASE).unwrap();
        assert_eq!(c.require("shop", "a").unwrap().spec.name, "a");
        let e = c.require("shop", "nope").unwrap_err().to_string();
        assert_eq!(e, "shop has no stream named `nope` (available: a)");
    }
}
