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

/// `#name` or `:value` pairs, as a Scan request carries them.
pub type Pairs = Vec<(String, String)>;

impl ScanFilter {
    /// A filter from the parts a Scan request carries, each value in DynamoDB JSON text;
    /// `None` when it has none. `Err` names a value that is not JSON.
    pub fn from_request_parts<'a>(
        filter: Option<&str>,
        projection: Option<&str>,
        names: impl IntoIterator<Item = &'a (String, String)>,
        values: impl IntoIterator<Item = &'a (String, String)>,
    ) -> Result<Option<Self>, String> {
        let mut parsed = BTreeMap::new();
        for (name, json) in values {
            let value = serde_json::from_str(json).map_err(|e| format!("{name}: {json:?} is not JSON: {e}"))?;
            parsed.insert(name.clone(), value);
        }
        let names: BTreeMap<String, String> = names.into_iter().cloned().collect();
        if filter.is_none() && projection.is_none() && names.is_empty() && parsed.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            filter: filter.map(str::to_string),
            projection: projection.map(str::to_string),
            names,
            values: parsed,
        }))
    }

    /// The names and values as a Scan request carries them (values as DynamoDB JSON text).
    pub fn request_parts(&self) -> (Pairs, Pairs) {
        (
            self.names.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            self.values.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
        )
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_goes_to_a_request_s_parts_and_back() {
        let filter = ScanFilter {
            filter: Some("#s = :v".into()),
            projection: None,
            names: BTreeMap::from([("#s".to_string(), "status".to_string())]),
            values: BTreeMap::from([(":v".to_string(), serde_json::json!({"S": "PAID"}))]),
        };
        let (names, values) = filter.request_parts();
        assert_eq!(values, [(":v".to_string(), r#"{"S":"PAID"}"#.to_string())]);
        let back = ScanFilter::from_request_parts(Some("#s = :v"), None, &names, &values).unwrap();
        assert_eq!(back, Some(filter));
        assert_eq!(ScanFilter::from_request_parts(None, None, &[], &[]).unwrap(), None);
        let bad = [(":v".to_string(), "{".to_string())];
        assert!(ScanFilter::from_request_parts(None, None, &[], &bad).unwrap_err().starts_with(":v:"));
    }
}
