//! Strict JSON for request bodies. serde_json keeps the last of repeated object keys, while a
//! receiver's parser may keep the first: a body with a repeated key would be validated as one
//! event and read as another downstream, so it is refused, naming the key. Any RFC 8259
//! number is accepted (bodies are relayed as posted, so a number need not fit an f64), and
//! nesting has a stated limit instead of the parser's recursion limit.

use crate::domain::validation::ValidationError;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// How deep arrays and objects may nest in a body.
pub const MAX_DEPTH: usize = 64;

/// Parses a whole body into a [`Value`], refusing repeated keys anywhere in it. A number too
/// large for an f64 reads as 0 here: only its type is ever checked, and the body's text is
/// what is delivered.
pub fn parse(bytes: &[u8]) -> Result<Value, ValidationError> {
    let tamed = tame(bytes)?;
    let bytes = tamed.as_deref().unwrap_or(bytes);
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

/// Checks the nesting depth outside strings, and returns a copy of the body with each number
/// an f64 cannot hold written as `0` (`None` when there is none). Syntax is left to the parser.
fn tame(bytes: &[u8]) -> Result<Option<Vec<u8>>, ValidationError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut copy: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ValidationError::new(
                        "",
                        format!("body nests arrays and objects deeper than {MAX_DEPTH} levels"),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let end = bytes[i..]
                    .iter()
                    .position(|c| !matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                    .map_or(bytes.len(), |n| i + n);
                let token = &bytes[i..end];
                let huge = is_number(token)
                    && std::str::from_utf8(token)
                        .ok()
                        .and_then(|t| t.parse::<f64>().ok())
                        .is_some_and(f64::is_infinite);
                if huge {
                    let out = copy.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
                    out.extend_from_slice(&bytes[copied..i]);
                    out.push(b'0');
                    copied = end;
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(copy.map(|mut out| {
        out.extend_from_slice(&bytes[copied..]);
        out
    }))
}

/// RFC 8259's `number`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_number(token: &[u8]) -> bool {
    fn digits(t: &[u8]) -> usize {
        t.iter().take_while(|c| c.is_ascii_digit()).count()
    }
    let mut t = token.strip_prefix(b"-").unwrap_or(token);
    match t.first() {
        Some(b'0') => t = &t[1..],
        Some(b'1'..=b'9') => t = &t[digits(t)..],
        _ => return false,
    }
    if let Some(rest) = t.strip_prefix(b".") {
        let n = digits(rest);
        if n == 0 {
            return false;
        }
        t = &rest[n..];
    }
    if let Some(rest) = t.strip_prefix(b"e").or_else(|| t.strip_prefix(b"E")) {
        let rest = rest
            .strip_prefix(b"+")
            .or_else(|| rest.strip_prefix(b"-"))
            .unwrap_or(rest);
        let n = digits(rest);
        if n == 0 {
            return false;
        }
        t = &rest[n..];
    }
    t.is_empty()
}

/// Where a value sits in the document; rendered only when a key is repeated.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// The field path as errors show it elsewhere: `events[0].event`, keys printable.
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => {
                let key = crate::domain::hook::printable(key);
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

/// A JSON value kept as its text: what an endpoint answered is repeated byte for byte (its
/// numbers and repeated keys as sent), which a parsed [`Value`] cannot do.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<serde_json::value::RawValue>);

impl RawJson {
    /// `text` if it is one JSON value (surrounding whitespace dropped).
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok().map(RawJson)
    }

    /// The text of a serializable value.
    pub fn of(value: &impl serde::Serialize) -> Self {
        RawJson(serde_json::value::to_raw_value(value).expect("a value serializes to JSON"))
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The value parsed: numbers beyond f64 read as 0, the last of repeated keys wins.
    pub fn to_value(&self) -> Value {
        let bytes = self.get().as_bytes();
        let tamed = tame(bytes).ok().flatten();
        serde_json::from_slice(tamed.as_deref().unwrap_or(bytes)).unwrap_or(Value::Null)
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
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
    }

    #[test]
    fn any_number_parses_and_nesting_has_a_stated_limit() {
        for body in [
            r#"{"a":1e309,"b":[-1E+400,"1e309 in a string"],"c":12345678901234567890123}"#,
            &format!(r#"{{"big":1{}}}"#, "0".repeat(400)),
        ] {
            let v = parse(body.as_bytes()).unwrap();
            assert!(v.is_object(), "{body}");
        }
        assert_eq!(parse(br#"{"a":1e309}"#).unwrap()["a"], 0);
        assert_eq!(parse(br#"{"a":"\"1e309"}"#).unwrap()["a"], "\"1e309");
        for bad in [
            "1e", "-", "01", "1.e5", "[1e309,]", "01e999", "1.e999", "-e999",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse(nested(MAX_DEPTH).as_bytes()).is_ok());
        let e = parse(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(e.message.contains("deeper than 64 levels"), "{e}");
        let e = parse("[".repeat(10_000).as_bytes()).unwrap_err();
        assert!(e.message.contains("deeper than"), "{e}");
        let strings = format!(r#"["{}"]"#, "[{".repeat(100));
        assert!(
            parse(strings.as_bytes()).is_ok(),
            "brackets in strings do not nest"
        );
    }
}
