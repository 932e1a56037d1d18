//! An in-memory DynamoDB table set with DynamoDB's per-item atomicity: each GetItem, PutItem and
//! UpdateItem evaluates the request's own condition and update expressions against one item and
//! applies them at once. It serves the store's real requests in interleaving tests, where
//! moto's concurrent conditional updates are not atomic.

use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// An item: attribute name to DynamoDB JSON attribute value (`{"S": "x"}`, `{"N": "1"}`, …).
pub type Item = Map<String, Value>;

/// Tables by name, items by (`pk`, `sk`).
#[derive(Debug, Default)]
pub struct ItemStore {
    items: HashMap<(String, String, String), Item>,
}

/// A request's answer: HTTP status and JSON body.
pub type Answer = (u16, Value);

impl ItemStore {
    /// Carries out one request of the DynamoDB JSON protocol (`target` is the operation).
    pub fn execute(&mut self, target: &str, request: &Value) -> Answer {
        match target {
            "GetItem" => self.get(request),
            "PutItem" => self.put(request),
            "UpdateItem" => self.update(request),
            "DeleteItem" => self.delete(request),
            "Query" => self.query(request),
            other => panic!("the in-memory store does not serve {other}"),
        }
    }

    /// The item keyed (`pk`, `sk`) in `table`.
    pub fn item(&self, table: &str, pk: &str, sk: &str) -> Option<&Item> {
        self.items
            .get(&(table.to_string(), pk.to_string(), sk.to_string()))
    }

    fn key(request: &Value, item_field: &str) -> (String, String, String) {
        let table = request["TableName"]
            .as_str()
            .expect("TableName")
            .to_string();
        let key = &request[item_field];
        let part = |name: &str| key[name]["S"].as_str().expect("string key").to_string();
        (table, part("pk"), part("sk"))
    }

    fn get(&self, request: &Value) -> Answer {
        match self.items.get(&Self::key(request, "Key")) {
            Some(item) => (200, json!({ "Item": item })),
            None => (200, json!({})),
        }
    }

    /// Every item of the table the key condition selects, by sort key (one page, no filter).
    fn query(&self, request: &Value) -> Answer {
        let table = request["TableName"].as_str().expect("TableName");
        let condition = request["KeyConditionExpression"]
            .as_str()
            .expect("a key condition");
        let mut found: Vec<&Item> = self
            .items
            .iter()
            .filter(|((t, _, _), _)| t == table)
            .map(|(_, item)| item)
            .filter(|item| Parser::new(condition, request, item).condition())
            .collect();
        found.sort_by_key(|item| item["sk"]["S"].as_str().unwrap_or_default().to_string());
        if request["ScanIndexForward"] == false {
            found.reverse();
        }
        (200, json!({ "Items": found, "Count": found.len() }))
    }

    fn put(&mut self, request: &Value) -> Answer {
        let key = Self::key(request, "Item");
        let old = self.items.get(&key).cloned();
        if let Some(refused) = check(request, old.as_ref()) {
            return refused;
        }
        let new = request["Item"].as_object().expect("Item").clone();
        self.items.insert(key, new);
        (200, returned(request, old.as_ref(), None, &[]))
    }

    fn delete(&mut self, request: &Value) -> Answer {
        let key = Self::key(request, "Key");
        let old = self.items.get(&key).cloned();
        if let Some(refused) = check(request, old.as_ref()) {
            return refused;
        }
        self.items.remove(&key);
        (200, returned(request, old.as_ref(), None, &[]))
    }

    fn update(&mut self, request: &Value) -> Answer {
        let key = Self::key(request, "Key");
        let old = self.items.get(&key).cloned();
        if let Some(refused) = check(request, old.as_ref()) {
            return refused;
        }
        let mut new = old.clone().unwrap_or_else(|| {
            let mut item = Item::new();
            item.insert("pk".into(), json!({ "S": key.1 }));
            item.insert("sk".into(), json!({ "S": key.2 }));
            item
        });
        let expression = request["UpdateExpression"].as_str().unwrap_or_default();
        let touched = apply_update(expression, request, old.as_ref(), &mut new);
        self.items.insert(key, new.clone());
        (200, returned(request, old.as_ref(), Some(&new), &touched))
    }
}

/// The refusal when the request's condition does not hold on `old`.
fn check(request: &Value, old: Option<&Item>) -> Option<Answer> {
    let condition = request["ConditionExpression"].as_str()?;
    let empty = Item::new();
    let mut parser = Parser::new(condition, request, old.unwrap_or(&empty));
    let holds = parser.condition();
    parser.end();
    if holds {
        return None;
    }
    let mut body = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
        "message": "The conditional request failed",
    });
    if request["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
        && let Some(old) = old
    {
        body["Item"] = Value::Object(old.clone());
    }
    Some((400, body))
}

fn returned(request: &Value, old: Option<&Item>, new: Option<&Item>, touched: &[String]) -> Value {
    let attributes = match request["ReturnValues"].as_str().unwrap_or("NONE") {
        "ALL_OLD" => old.cloned(),
        "ALL_NEW" => new.cloned(),
        "UPDATED_NEW" => new.map(|new| {
            touched
                .iter()
                .filter_map(|name| new.get(name).map(|v| (name.clone(), v.clone())))
                .collect()
        }),
        "NONE" => None,
        other => panic!("the in-memory store does not return {other}"),
    };
    match attributes {
        Some(attributes) if !attributes.is_empty() => json!({ "Attributes": attributes }),
        _ => json!({}),
    }
}

/// Applies an update expression (SET, ADD, REMOVE) to `new`; every value is computed from the
/// item as it was. Returns the attributes it set or added.
fn apply_update(
    expression: &str,
    request: &Value,
    old: Option<&Item>,
    new: &mut Item,
) -> Vec<String> {
    let empty = Item::new();
    let mut parser = Parser::new(expression, request, old.unwrap_or(&empty));
    let mut sets = Vec::new();
    let mut removes = Vec::new();
    while let Some(clause) = parser.next_word() {
        loop {
            match clause.to_ascii_uppercase().as_str() {
                "SET" => {
                    let name = parser.path();
                    parser.expect("=");
                    let value = parser.set_value();
                    sets.push((name, value));
                }
                "ADD" => {
                    let name = parser.path();
                    let added = parser.operand().expect("ADD needs a value");
                    let value = match parser.item.get(&name) {
                        Some(current) => arithmetic(current, &added, 1),
                        None => added,
                    };
                    sets.push((name, value));
                }
                "REMOVE" => removes.push(parser.path()),
                other => panic!("the in-memory store does not apply {other}"),
            }
            if !parser.eat(",") {
                break;
            }
        }
    }
    parser.end();
    let touched = sets.iter().map(|(name, _)| name.clone()).collect();
    for (name, value) in sets {
        new.insert(name, value);
    }
    for name in removes {
        new.remove(&name);
    }
    touched
}

fn number(value: &Value) -> i128 {
    value["N"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a whole number: {value}"))
}

fn arithmetic(a: &Value, b: &Value, sign: i128) -> Value {
    json!({ "N": (number(a) + sign * number(b)).to_string() })
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a.get("N"), b.get("N"), a.get("S"), b.get("S")) {
        (Some(_), Some(_), _, _) => Some(number(a).cmp(&number(b))),
        (_, _, Some(x), Some(y)) => Some(x.as_str()?.cmp(y.as_str()?)),
        _ => (a == b).then_some(std::cmp::Ordering::Equal),
    }
}

/// A recursive-descent reader of one expression that evaluates as it reads.
struct Parser<'a> {
    tokens: Vec<String>,
    at: usize,
    request: &'a Value,
    item: &'a Item,
}

impl<'a> Parser<'a> {
    fn new(text: &str, request: &'a Value, item: &'a Item) -> Self {
        let mut tokens = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                i += 1;
            } else if "(),=+-".contains(c) {
                tokens.push(c.to_string());
                i += 1;
            } else if c == '<' || c == '>' {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                if ["<=", ">=", "<>"].contains(&two.as_str()) {
                    tokens.push(two);
                    i += 2;
                } else {
                    tokens.push(c.to_string());
                    i += 1;
                }
            } else {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || "#:_".contains(chars[i])) {
                    i += 1;
                }
                assert!(i > start, "unexpected {c:?} in {text:?}");
                tokens.push(chars[start..i].iter().collect());
            }
        }
        Self {
            tokens,
            at: 0,
            request,
            item,
        }
    }

    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn next_word(&mut self) -> Option<String> {
        let word = self.tokens.get(self.at).cloned();
        self.at += 1;
        word
    }

    fn eat(&mut self, token: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.eq_ignore_ascii_case(token));
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, token: &str) {
        assert!(self.eat(token), "expected {token:?} at {:?}", self.peek());
    }

    fn end(&self) {
        assert!(
            self.at >= self.tokens.len(),
            "unread {:?}",
            &self.tokens[self.at..]
        );
    }

    /// An attribute name, written plainly or as a `#name` placeholder.
    fn path(&mut self) -> String {
        let token = self.next_word().expect("an attribute name");
        if token.starts_with('#') {
            self.request["ExpressionAttributeNames"][&token]
                .as_str()
                .unwrap_or_else(|| panic!("undefined name {token}"))
                .to_string()
        } else {
            token
        }
    }

    /// A value placeholder's value or an attribute's (`None` when the item lacks it).
    fn operand(&mut self) -> Option<Value> {
        match self.peek() {
            Some(t) if t.starts_with(':') => {
                let token = self.next_word().unwrap();
                let value = &self.request["ExpressionAttributeValues"][&token];
                assert!(!value.is_null(), "undefined value {token}");
                Some(value.clone())
            }
            _ => {
                let name = self.path();
                self.item.get(&name).cloned()
            }
        }
    }

    fn condition(&mut self) -> bool {
        let mut holds = self.conjunction();
        while self.eat("OR") {
            holds |= self.conjunction();
        }
        holds
    }

    fn conjunction(&mut self) -> bool {
        let mut holds = self.term();
        while self.eat("AND") {
            holds &= self.term();
        }
        holds
    }

    fn term(&mut self) -> bool {
        if self.eat("NOT") {
            return !self.term();
        }
        if self.eat("(") {
            let holds = self.condition();
            self.expect(")");
            return holds;
        }
        let function = self.peek().map(str::to_ascii_lowercase);
        match function.as_deref() {
            Some("attribute_exists") | Some("attribute_not_exists") => {
                self.at += 1;
                self.expect("(");
                let name = self.path();
                self.expect(")");
                let exists = self.item.contains_key(&name);
                if function.as_deref() == Some("attribute_exists") {
                    exists
                } else {
                    !exists
                }
            }
            _ => {
                let left = self.operand();
                let op = self.next_word().expect("a comparison");
                if op.eq_ignore_ascii_case("BETWEEN") {
                    let low = self.operand();
                    self.expect("AND");
                    let high = self.operand();
                    let (Some(value), Some(low), Some(high)) = (left, low, high) else {
                        return false;
                    };
                    return compare(&value, &low).is_some_and(|o| o.is_ge())
                        && compare(&value, &high).is_some_and(|o| o.is_le());
                }
                let right = self.operand();
                let (Some(left), Some(right)) = (left, right) else {
                    return false;
                };
                let ordering = compare(&left, &right);
                use std::cmp::Ordering::*;
                match op.as_str() {
                    "=" => ordering == Some(Equal),
                    "<>" => ordering != Some(Equal),
                    "<" => ordering == Some(Less),
                    "<=" => matches!(ordering, Some(Less | Equal)),
                    ">" => ordering == Some(Greater),
                    ">=" => matches!(ordering, Some(Greater | Equal)),
                    other => panic!("the in-memory store does not compare with {other}"),
                }
            }
        }
    }

    /// The right-hand side of a SET action.
    fn set_value(&mut self) -> Value {
        let first = self.set_operand();
        let sign = if self.eat("+") {
            1
        } else if self.eat("-") {
            -1
        } else {
            return first.expect("SET of a missing attribute");
        };
        let second = self.set_operand();
        arithmetic(
            &first.expect("arithmetic on a missing attribute"),
            &second.expect("arithmetic on a missing attribute"),
            sign,
        )
    }

    fn set_operand(&mut self) -> Option<Value> {
        let function = self.peek().map(str::to_ascii_lowercase);
        match function.as_deref() {
            Some("if_not_exists") => {
                self.at += 1;
                self.expect("(");
                let current = self.operand();
                self.expect(",");
                let fallback = self.set_operand();
                self.expect(")");
                current.or(fallback)
            }
            Some("list_append") => {
                self.at += 1;
                self.expect("(");
                let a = self.set_operand().expect("list_append of a missing list");
                self.expect(",");
                let b = self.set_operand().expect("list_append of a missing list");
                self.expect(")");
                let mut list = a["L"].as_array().expect("a list").clone();
                list.extend(b["L"].as_array().expect("a list").iter().cloned());
                Some(json!({ "L": list }))
            }
            _ => self.operand(),
        }
    }
}
