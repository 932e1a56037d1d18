//! Strict JSON for request bodies. serde_json keeps the last of repeated object keys, while a
//! receiver's parser may keep the first: a body with a repeated key would be validated as one
//! event and read as another downstream, so it is refused, naming the key.

use crate::domain::validation::ValidationError;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// Parses a whole body into a [`Value`], refusing repeated keys anywhere in it.
pub fn parse(bytes: &[u8]) -> Result<Value, ValidationError> {
    let repeated = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict {
        at: Path::Root,
        repeated: &repeated,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    parsed.map_err(|e| match repeated.into_inner() {
        Some(field) => ValidationError::new(field, "is a repeated key"),
        None => ValidationError::new("", format!("body is not valid JSON: {e}")),
    })
}

/// Where a value sits in the document; rendered only when a key is repeated.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// The field path as errors show it elsewhere: `events[0].event`, keys in printable ASCII.
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => {
                let key: String = key
                    .chars()
                    .filter(char::is_ascii_graphic)
                    .take(64)
                    .collect();
                match parent.render() {
                    p if p.is_empty() => key,
                    p => format!("{p}.{key}"),
                }
            }
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

struct Strict<'p, 'r> {
    at: Path<'p>,
    repeated: &'r RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_, '_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict {
            at: Path::Index(&self.at, items.len()),
            repeated: self.repeated,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let at = Path::Key(&self.at, &key);
            if map.contains_key(&key) {
                *self.repeated.borrow_mut() = Some(at.render());
                return Err(de::Error::custom("repeated key"));
            }
            let value = access.next_value_seed(Strict {
                at,
                repeated: self.repeated,
            })?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(body: &str) -> String {
        parse(body.as_bytes()).unwrap_err().field
    }

    #[test]
    fn repeated_keys_are_refused_wherever_they_are() {
        assert_eq!(
            field(r#"{"event":"PostSignIn","event":"User.Deleted"}"#),
            "event"
        );
        assert_eq!(
            field(r#"{"events":[{"event":"A"},{"event":"B","data":{"x":1,"x":2}}]}"#),
            "events[1].data.x"
        );
        assert_eq!(field(r#"[[{"a":1}],[{"b":1,"b":1}]]"#), "[1][0].b");
        assert_eq!(field(r#"{"k\u0000ey":1,"k\u0000ey":2}"#), "key");
        let e = parse(br#"{"a":{"b":1},"a":{"b":1}}"#).unwrap_err();
        assert_eq!(e.to_string(), "a: is a repeated key");
    }

    #[test]
    fn anything_else_parses_as_serde_json_does() {
        for body in [
            r#"{"b":1,"a":[1,-2,3.5,1e300,18446744073709551615,-9223372036854775808],"c":null}"#,
            r#"{"a":{"a":{"a":"same key at other levels"}}}"#,
            r#"[{"x":1},{"x":2}]"#,
            r#"  "text\n\u00e9"  "#,
            "true",
            "{}",
        ] {
            let strict = parse(body.as_bytes()).unwrap();
            let loose: Value = serde_json::from_str(body).unwrap();
            assert_eq!(strict, loose, "{body}");
            assert_eq!(strict.to_string(), loose.to_string(), "key order of {body}");
        }
        for bad in ["", "{", r#"{"a":1} x"#, r#"{"a":1,}"#, "[1,]", "nul"] {
            let e = parse(bad.as_bytes()).unwrap_err();
            assert_eq!(e.field, "", "{bad}");
            assert!(e.message.starts_with("body is not valid JSON"), "{bad}");
        }
        let deep = "[".repeat(10_000);
        assert!(parse(deep.as_bytes()).is_err(), "the recursion limit holds");
    }
}
