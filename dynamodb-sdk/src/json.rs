//! Items as DynamoDB JSON: the one reader and writer of AttributeValue JSON, the raw `Items`
//! array of a Scan page as the service sent it, and keys (kept in checkpoints).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// An item as the SDK returns it.
pub type Item = HashMap<String, AttributeValue>;

/// A page's items in DynamoDB JSON, exactly as the Scan response holds them (its `Items`
/// array): the bytes the encoder turns into data lines, never parsed into SDK types (the one
/// parse of them is the encoder's). `count` is the number of items in it, counted.
#[derive(Debug, Clone, Default)]
pub struct RawItems {
    pub(crate) body: bytes::Bytes,
    pub(crate) range: std::ops::Range<usize>,
    pub count: u64,
}

impl RawItems {
    /// The `Items` array, `[…]`.
    pub fn json(&self) -> &[u8] {
        match self.range.is_empty() {
            true => b"[]",
            false => self.body.get(self.range.clone()).unwrap_or(b"[]"),
        }
    }

    /// Items held in memory, as a JSON array (the consistent mode's final images).
    pub fn from_items(items: &[Item]) -> Self {
        let values: Vec<serde_json::Value> = items
            .iter()
            .map(|item| {
                serde_json::Value::Object(item.iter().map(|(k, v)| (k.clone(), attribute_to_json(v))).collect())
            })
            .collect();
        let body = serde_json::to_vec(&values).unwrap_or_else(|_| b"[]".to_vec());
        let range = 0..body.len();
        Self { body: body.into(), range, count: items.len() as u64 }
    }
}

/// An AttributeValue as DynamoDB JSON: the inverse of [`attribute_from_json`].
pub fn attribute_to_json(value: &AttributeValue) -> serde_json::Value {
    use base64::Engine as _;
    use serde_json::json;
    let blob = |b: &aws_sdk_dynamodb::primitives::Blob| base64::engine::general_purpose::STANDARD.encode(b.as_ref());
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": blob(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::Ss(s) => json!({ "SS": s }),
        AttributeValue::Ns(s) => json!({ "NS": s }),
        AttributeValue::Bs(s) => json!({ "BS": s.iter().map(blob).collect::<Vec<_>>() }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(attribute_to_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => {
            json!({ "M": m.iter().map(|(k, v)| (k.clone(), attribute_to_json(v))).collect::<serde_json::Map<_, _>>() })
        }
        _ => json!({ "NULL": true }),
    }
}

/// An AttributeValue from its DynamoDB JSON (`{"S":"x"}`, `{"L":[…]}`, …).
pub fn attribute_from_json(value: &serde_json::Value) -> Result<AttributeValue, String> {
    use base64::Engine as _;
    use serde_json::Value;
    let (tag, inner) = value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
        .ok_or("not an AttributeValue ({\"<type>\": value})")?;
    let text = |v: &Value| v.as_str().map(str::to_string).ok_or(format!("{tag} needs a string"));
    let strings = |v: &Value| -> Result<Vec<String>, String> {
        v.as_array().ok_or(format!("{tag} needs an array"))?.iter().map(text).collect()
    };
    let blob = |s: String| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(aws_sdk_dynamodb::primitives::Blob::new)
            .map_err(|e| format!("{tag}: {e}"))
    };
    Ok(match tag.as_str() {
        "S" => AttributeValue::S(text(inner)?),
        "N" => AttributeValue::N(text(inner)?),
        "B" => AttributeValue::B(blob(text(inner)?)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool().ok_or("BOOL needs true or false")?),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        "BS" => AttributeValue::Bs(strings(inner)?.into_iter().map(blob).collect::<Result<_, _>>()?),
        "L" => AttributeValue::L(
            inner.as_array().ok_or("L needs an array")?.iter().map(attribute_from_json).collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(
            inner
                .as_object()
                .ok_or("M needs an object")?
                .iter()
                .map(|(k, v)| Ok((k.clone(), attribute_from_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => return Err(format!("{other:?} is not an AttributeValue type")),
    })
}

/// A primary key (or a Scan's `LastEvaluatedKey`) as DynamoDB JSON, as checkpoints keep it: a
/// key's attributes are strings, numbers or binaries.
pub fn key_to_json(key: &Item) -> Result<serde_json::Value, String> {
    let mut object = serde_json::Map::new();
    for (name, value) in key {
        check_key_attribute(name, value)?;
        object.insert(name.clone(), attribute_to_json(value));
    }
    Ok(serde_json::Value::Object(object))
}

/// A key's attributes are strings, numbers or binaries.
fn check_key_attribute(name: &str, value: &AttributeValue) -> Result<(), String> {
    match value {
        AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_) => Ok(()),
        _ => Err(format!("key attribute {name:?} is not a string, number or binary")),
    }
}

/// The inverse of [`key_to_json`], by the one reader of DynamoDB JSON ([`attribute_from_json`]).
pub fn key_from_json(value: &serde_json::Value) -> Result<Item, String> {
    let object = value.as_object().ok_or("a key is not a JSON object")?;
    let mut key = Item::new();
    for (name, typed) in object {
        let value = attribute_from_json(typed).map_err(|why| format!("key attribute {name:?}: {why}"))?;
        check_key_attribute(name, &value)?;
        key.insert(name.clone(), value);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;
    use serde_json::json;

    #[test]
    fn every_attribute_type_survives_dynamodb_json() {
        let item = Item::from([
            ("s".to_string(), AttributeValue::S("é\u{0}".into())),
            ("n".to_string(), AttributeValue::N("-1.5E+10".into())),
            ("b".to_string(), AttributeValue::B(Blob::new(vec![0, 255]))),
            ("bool".to_string(), AttributeValue::Bool(false)),
            ("null".to_string(), AttributeValue::Null(true)),
            ("ss".to_string(), AttributeValue::Ss(vec!["a".into(), "b".into()])),
            ("ns".to_string(), AttributeValue::Ns(vec!["1".into()])),
            ("bs".to_string(), AttributeValue::Bs(vec![Blob::new(vec![1])])),
            ("l".to_string(), AttributeValue::L(vec![AttributeValue::S("x".into()), AttributeValue::Null(true)])),
            ("m".to_string(), AttributeValue::M(Item::from([("k".to_string(), AttributeValue::N("2".into()))]))),
        ]);
        for (name, value) in &item {
            assert_eq!(&attribute_from_json(&attribute_to_json(value)).unwrap(), value, "{name}");
        }
        for bad in [json!({}), json!({"S": 1}), json!({"S": "a", "N": "1"}), json!({"X": "1"}), json!({"B": "!"})] {
            assert!(attribute_from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scan_keys_survive_json() {
        let key = HashMap::from([
            ("pk".to_string(), AttributeValue::S("a\u{0}é".into())),
            ("sk".to_string(), AttributeValue::N("-1.5E+10".into())),
            ("bin".to_string(), AttributeValue::B(Blob::new(vec![0, 255, 7]))),
        ]);
        let json = key_to_json(&key).unwrap();
        assert_eq!(key_from_json(&json).unwrap(), key);
        assert!(key_to_json(&HashMap::from([("x".to_string(), AttributeValue::Bool(true))])).is_err());
        assert!(key_from_json(&json!({"pk": {"S": "a", "N": "1"}})).is_err());
        assert!(key_from_json(&json!({"pk": {"BOOL": true}})).is_err());
    }
}
