//! The offline catalog (`specs/salesforce.toml`) matches what the connector reads.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use weft_arrow::{FieldType, field_type_of};
use weft_core::DELETED_AT;

#[test]
fn offline_catalog_lists_the_default_objects_with_keys_and_cursor() {
    let catalog = weft_salesforce::catalog().unwrap();
    assert_eq!(catalog.connector, "salesforce");
    let names: Vec<&str> = catalog
        .streams
        .iter()
        .map(|s| s.spec.name.as_str())
        .collect();
    assert_eq!(names, weft_salesforce::DEFAULT_OBJECTS);
    for s in &catalog.streams {
        assert_eq!(
            s.spec.primary_key,
            vec!["Id".to_string()],
            "{}",
            s.spec.name
        );
        assert_eq!(s.spec.cursor_field.as_deref(), Some("SystemModstamp"));
        let ty = |n: &str| field_type_of(s.spec.schema.field_with_name(n).unwrap());
        assert_eq!(ty("SystemModstamp"), Some(FieldType::Timestamp));
        assert_eq!(ty("IsDeleted"), Some(FieldType::Boolean));
        assert_eq!(ty(DELETED_AT), Some(FieldType::Timestamp));
        assert!(s.spec.schema.fields().len() >= 8, "{}", s.spec.name);
    }
    let contact = catalog.stream("Contact").unwrap();
    for f in ["FirstName", "LastName", "Email", "AccountId"] {
        assert!(contact.spec.schema.field_with_name(f).is_ok(), "{f}");
    }
}
