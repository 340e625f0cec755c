//! Component values as JSON, the way engines pass them: records as objects with kebab-case
//! keys, `option` as `null` or the value, enums as `"case"`, variants and results as
//! `{"case": payload}` (or `"case"` without one).

use serde_json::{Map, Value};
use wasmtime::component::Val;
use wasmtime::component::types::Type;

/// `value`, read as a value of type `ty`.
pub fn to_val(value: &Value, ty: &Type) -> Result<Val, String> {
    let number = |what: &str| format!("{value} is not {what}");
    let unsigned = || value.as_u64().ok_or_else(|| number("a whole number of at least 0"));
    let signed = || value.as_i64().ok_or_else(|| number("a whole number"));
    Ok(match ty {
        Type::Bool => Val::Bool(value.as_bool().ok_or_else(|| number("true or false"))?),
        Type::U8 => Val::U8(u8::try_from(unsigned()?).map_err(|_| number("a u8"))?),
        Type::U16 => Val::U16(u16::try_from(unsigned()?).map_err(|_| number("a u16"))?),
        Type::U32 => Val::U32(u32::try_from(unsigned()?).map_err(|_| number("a u32"))?),
        Type::U64 => Val::U64(unsigned()?),
        Type::S8 => Val::S8(i8::try_from(signed()?).map_err(|_| number("an s8"))?),
        Type::S16 => Val::S16(i16::try_from(signed()?).map_err(|_| number("an s16"))?),
        Type::S32 => Val::S32(i32::try_from(signed()?).map_err(|_| number("an s32"))?),
        Type::S64 => Val::S64(signed()?),
        Type::Float32 => Val::Float32(value.as_f64().ok_or_else(|| number("a number"))? as f32),
        Type::Float64 => Val::Float64(value.as_f64().ok_or_else(|| number("a number"))?),
        Type::String => Val::String(value.as_str().ok_or_else(|| number("a string"))?.to_string()),
        Type::List(list) => {
            let items = value.as_array().ok_or_else(|| number("an array"))?;
            Val::List(items.iter().map(|item| to_val(item, &list.ty())).collect::<Result<_, _>>()?)
        }
        Type::Tuple(tuple) => {
            let items = value.as_array().ok_or_else(|| number("an array"))?;
            if items.len() != tuple.types().len() {
                return Err(format!("{value} is not a tuple of {}", tuple.types().len()));
            }
            Val::Tuple(items.iter().zip(tuple.types()).map(|(item, ty)| to_val(item, &ty)).collect::<Result<_, _>>()?)
        }
        Type::Record(record) => {
            let object = value.as_object().ok_or_else(|| number("an object"))?;
            if let Some(unknown) = object.keys().find(|key| !record.fields().any(|field| field.name == key.as_str())) {
                return Err(format!("{unknown:?} is not a field of the record"));
            }
            let fields = record.fields().map(|field| {
                let given = object.get(field.name).unwrap_or(&Value::Null);
                Ok((field.name.to_string(), to_val(given, &field.ty).map_err(|why| format!("{}: {why}", field.name))?))
            });
            Val::Record(fields.collect::<Result<_, String>>()?)
        }
        Type::Option(option) => match value {
            Value::Null => Val::Option(None),
            some => Val::Option(Some(Box::new(to_val(some, &option.ty())?))),
        },
        Type::Enum(names) => {
            let name = value.as_str().ok_or_else(|| number("a case name"))?;
            if !names.names().any(|n| n == name) {
                return Err(format!("{name:?} is not one of the enum's cases"));
            }
            Val::Enum(name.to_string())
        }
        Type::Variant(variant) => {
            let (name, payload) = case(value)?;
            let case = variant.cases().find(|c| c.name == name).ok_or_else(|| format!("{name:?} is not a case"))?;
            Val::Variant(
                name.to_string(),
                match (case.ty, payload) {
                    (Some(ty), Some(payload)) => Some(Box::new(to_val(payload, &ty)?)),
                    (None, None) => None,
                    _ => return Err(format!("case {name:?} has the wrong payload")),
                },
            )
        }
        Type::Result(result) => {
            let (name, payload) = case(value)?;
            let inner = |ty: Option<Type>| match (ty, payload) {
                (Some(ty), Some(payload)) => Ok(Some(Box::new(to_val(payload, &ty)?))),
                (None, None) => Ok(None),
                _ => Err(format!("{name} has the wrong payload")),
            };
            Val::Result(match name {
                "ok" => Ok(inner(result.ok())?),
                "err" => Err(inner(result.err())?),
                _ => return Err(format!("{value} is not {{\"ok\": …}} or {{\"err\": …}}")),
            })
        }
        other => return Err(format!("a parameter of type {other:?} cannot be given as JSON")),
    })
}

/// `"case"` or `{"case": payload}`.
fn case(value: &Value) -> Result<(&str, Option<&Value>), String> {
    match value {
        Value::String(name) => Ok((name, None)),
        Value::Object(object) if object.len() == 1 => {
            let (name, payload) = object.iter().next().ok_or("an empty object")?;
            Ok((name, Some(payload)))
        }
        other => Err(format!("{other} is not \"case\" or {{\"case\": payload}}")),
    }
}

/// `val` as JSON.
pub fn of_val(val: &Val) -> Value {
    let boxed = |inner: &Option<Box<Val>>| inner.as_deref().map_or(Value::Null, of_val);
    match val {
        Val::Bool(b) => Value::Bool(*b),
        Val::U8(n) => (*n).into(),
        Val::U16(n) => (*n).into(),
        Val::U32(n) => (*n).into(),
        Val::U64(n) => (*n).into(),
        Val::S8(n) => (*n).into(),
        Val::S16(n) => (*n).into(),
        Val::S32(n) => (*n).into(),
        Val::S64(n) => (*n).into(),
        Val::Float32(n) => f64::from(*n).into(),
        Val::Float64(n) => (*n).into(),
        Val::Char(c) => Value::String(c.to_string()),
        Val::String(s) => Value::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Value::Array(items.iter().map(of_val).collect())
        }
        Val::Record(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), of_val(v))).collect()),
        Val::Option(inner) => boxed(inner),
        Val::Enum(name) => Value::String(name.clone()),
        Val::Variant(name, None) => Value::String(name.clone()),
        Val::Variant(name, payload) => Value::Object(Map::from_iter([(name.clone(), boxed(payload))])),
        Val::Result(Ok(payload)) => Value::Object(Map::from_iter([("ok".to_string(), boxed(payload))])),
        Val::Result(Err(payload)) => Value::Object(Map::from_iter([("err".to_string(), boxed(payload))])),
        Val::Flags(names) => Value::Array(names.iter().map(|n| Value::String(n.clone())).collect()),
        other => Value::String(format!("<{other:?}>")),
    }
}
