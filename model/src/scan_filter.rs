//! `--filter`, `--projection` and their expression attribute names and values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `--filter`, `--projection` and their expression attribute names and values, passed to
/// every Scan as DynamoDB takes them. Filtering happens after the read: every item is still
/// read (and paid for). Part of an export's fingerprint; the host checks it before a Scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanFilter {
    pub filter: Option<String>,
    pub projection: Option<String>,
    /// `#name` -> attribute name.
    pub names: BTreeMap<String, String>,
    /// `:value` -> the value, in DynamoDB JSON (`{"S":"x"}`), as given.
    pub values: BTreeMap<String, serde_json::Value>,
}

impl std::fmt::Display for ScanFilter {
    /// `filter <expression>, projection <expression>, names #a=x, values :v={"S":"1"}`, the
    /// parts it has.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(filter) = &self.filter {
            parts.push(format!("filter {filter}"));
        }
        if let Some(projection) = &self.projection {
            parts.push(format!("projection {projection}"));
        }
        if !self.names.is_empty() {
            let names: Vec<String> = self.names.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.push(format!("names {}", names.join(" ")));
        }
        if !self.values.is_empty() {
            let values: Vec<String> = self.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.push(format!("values {}", values.join(" ")));
        }
        match parts.is_empty() {
            true => f.write_str("none"),
            false => f.write_str(&parts.join(", ")),
        }
    }
}
