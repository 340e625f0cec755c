//! Items as DynamoDB JSON (the one reader and writer of AttributeValue JSON is the
//! `ddb-export-dynamodb` crate's, shared with the step adapter), and keys said in words.

pub use ddb_export_dynamodb::json::{Item, RawItems, attribute_from_json, key_from_json, key_to_json};

/// An item's key in words, for messages: `pk "a", sk 5` (binary as base64), read from the
/// item's DynamoDB JSON; `None` when the item is not readable or lacks a key attribute.
pub fn key_in_words(item_json: &str, key_attributes: &[String]) -> Option<String> {
    let item: serde_json::Value = serde_json::from_str(item_json).ok()?;
    let parts: Option<Vec<String>> = key_attributes
        .iter()
        .map(|name| {
            let typed = item.get(name)?.as_object()?;
            let (tag, value) = typed.iter().next()?;
            let text = value.as_str()?;
            Some(match tag.as_str() {
                "S" => format!("{name} {text:?}"),
                "N" | "B" => format!("{name} {text}"),
                _ => return None,
            })
        })
        .collect();
    parts.filter(|p| !p.is_empty()).map(|p| p.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_said_in_words() {
        let keys = ["pk".to_string(), "sk".to_string()];
        let item = r#"{"pk":{"S":"a \"b\""},"sk":{"N":"5"},"x":{"BOOL":true}}"#;
        assert_eq!(key_in_words(item, &keys).as_deref(), Some(r#"pk "a \"b\"", sk 5"#));
        assert_eq!(key_in_words(r#"{"pk":{"S":"a"}}"#, &keys), None, "a missing sort key");
        assert_eq!(key_in_words("not json", &keys), None);
    }
}
