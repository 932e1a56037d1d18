//! A structural check of CloudWatch Embedded Metric Format documents, after the published
//! specification: CloudWatch silently drops a malformed document, so a bad line would only
//! show up as a metric that never appears.

use serde_json::{Map, Value};

/// Units CloudWatch accepts in a metric definition.
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];
const MAX_METRICS: usize = 100;
const MAX_DIMENSIONS: usize = 30;
const MAX_VALUES: usize = 100;
const MAX_NAME: usize = 1024;
/// CloudWatch Logs' limit for one log event.
const MAX_LINE: usize = 256 * 1024;

/// A valid EMF document and the `(name, unit)` of every metric it defines.
#[derive(Debug)]
pub struct Emf {
    pub doc: Value,
    pub timestamp_ms: i64,
    pub metrics: Vec<(String, Option<String>)>,
}

/// Validates `line` as one EMF document whose timestamp lies within `window_ms` of `now_ms`
/// (a timestamp in seconds instead of milliseconds lands in 1970).
pub fn validate(line: &str, now_ms: i64, window_ms: i64) -> Result<Emf, String> {
    if line.len() > MAX_LINE {
        return Err(format!(
            "{} bytes, over the 256 KiB event limit",
            line.len()
        ));
    }
    let doc: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let root = doc.as_object().ok_or("not a JSON object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no `_aws` object")?;
    let timestamp_ms = aws
        .get("Timestamp")
        .and_then(Value::as_i64)
        .ok_or("`_aws.Timestamp` is not an integer")?;
    if (timestamp_ms - now_ms).abs() > window_ms {
        return Err(format!(
            "`_aws.Timestamp` {timestamp_ms} is not milliseconds near {now_ms}"
        ));
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("`_aws.CloudWatchMetrics` is not an array")?;
    if directives.is_empty() {
        return Err("`_aws.CloudWatchMetrics` is empty".into());
    }
    let mut metrics = Vec::new();
    for directive in directives {
        metrics.extend(directive_metrics(root, directive)?);
    }
    Ok(Emf {
        doc,
        timestamp_ms,
        metrics,
    })
}

fn directive_metrics(
    root: &Map<String, Value>,
    directive: &Value,
) -> Result<Vec<(String, Option<String>)>, String> {
    let directive = directive
        .as_object()
        .ok_or("a metric directive is not an object")?;
    let namespace = directive
        .get("Namespace")
        .and_then(Value::as_str)
        .ok_or("a directive has no string `Namespace`")?;
    let namespace_chars = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
    if namespace.trim().is_empty()
        || namespace.len() > 255
        || !namespace.chars().all(namespace_chars)
        || namespace.starts_with("AWS/")
    {
        return Err(format!("invalid namespace {namespace:?}"));
    }
    let sets = directive
        .get("Dimensions")
        .and_then(Value::as_array)
        .ok_or("`Dimensions` is not an array")?;
    for set in sets {
        let keys = set
            .as_array()
            .ok_or("a dimension set is not an array of strings")?;
        if keys.len() > MAX_DIMENSIONS {
            return Err(format!("a dimension set has {} keys", keys.len()));
        }
        for key in keys {
            let key = key.as_str().ok_or("a dimension key is not a string")?;
            match root.get(key).and_then(Value::as_str) {
                Some(v) if !v.is_empty() && v.len() <= MAX_NAME => {}
                _ => return Err(format!("dimension {key} has no string member")),
            }
        }
    }
    let definitions = directive
        .get("Metrics")
        .and_then(Value::as_array)
        .ok_or("`Metrics` is not an array")?;
    if definitions.is_empty() || definitions.len() > MAX_METRICS {
        return Err(format!("{} metric definitions", definitions.len()));
    }
    let mut metrics = Vec::new();
    for definition in definitions {
        let definition = definition
            .as_object()
            .ok_or("a metric definition is not an object")?;
        let name = definition
            .get("Name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty() && n.len() <= MAX_NAME)
            .ok_or("a metric definition has no valid `Name`")?;
        let unit = match definition.get("Unit") {
            None => None,
            Some(Value::String(u)) if UNITS.contains(&u.as_str()) => Some(u.clone()),
            Some(other) => return Err(format!("metric {name}: invalid unit {other}")),
        };
        match definition.get("StorageResolution") {
            None => {}
            Some(r) if r == 1 || r == 60 => {}
            Some(other) => return Err(format!("metric {name}: storage resolution {other}")),
        }
        let numbers = match root.get(name) {
            Some(Value::Number(_)) => 1,
            Some(Value::Array(values)) if values.iter().all(Value::is_number) => values.len(),
            _ => return Err(format!("metric {name} has no numeric member")),
        };
        if numbers == 0 || numbers > MAX_VALUES {
            return Err(format!("metric {name} has {numbers} values"));
        }
        if metrics.iter().any(|(n, _)| n == name) {
            return Err(format!("metric {name} is defined twice"));
        }
        metrics.push((name.to_string(), unit));
    }
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_795_683_600_000;

    fn valid() -> Value {
        json!({
            "_aws": {
                "Timestamp": NOW,
                "CloudWatchMetrics": [{
                    "Namespace": "Webhooks",
                    "Dimensions": [["Service"]],
                    "Metrics": [{"Name": "DeliveryAttempts", "Unit": "Count"}, {"Name": "AttemptDurationMs"}],
                }],
            },
            "Service": "webhooks",
            "DeliveryAttempts": 1.0,
            "AttemptDurationMs": [3, 4.5],
        })
    }

    #[test]
    fn accepts_a_valid_document() {
        let emf = validate(&valid().to_string(), NOW, 1000).unwrap();
        assert_eq!(emf.timestamp_ms, NOW);
        assert_eq!(emf.metrics.len(), 2);
        assert_eq!(emf.metrics[0].1.as_deref(), Some("Count"));
    }

    #[test]
    fn refuses_each_structural_fault() {
        fn directive(d: &mut Value) -> &mut Value {
            &mut d["_aws"]["CloudWatchMetrics"][0]
        }
        fn drop_member(d: &mut Value, name: &str) {
            d.as_object_mut().unwrap().remove(name);
        }
        type Fault = fn(&mut Value);
        let faults: Vec<(&str, Fault)> = vec![
            ("no _aws", |d| d["_aws"] = Value::Null),
            ("seconds", |d| d["_aws"]["Timestamp"] = json!(NOW / 1000)),
            ("float time", |d| {
                d["_aws"]["Timestamp"] = json!(NOW as f64 + 0.5)
            }),
            ("string time", |d| {
                d["_aws"]["Timestamp"] = json!(NOW.to_string())
            }),
            ("no directive", |d| {
                d["_aws"]["CloudWatchMetrics"] = json!([])
            }),
            ("no namespace", |d| directive(d)["Namespace"] = json!("")),
            ("AWS/ namespace", |d| {
                directive(d)["Namespace"] = json!("AWS/Lambda")
            }),
            ("flat dimensions", |d| {
                directive(d)["Dimensions"] = json!(["Service"])
            }),
            ("numeric dimension", |d| d["Service"] = json!(1)),
            ("missing dimension", |d| drop_member(d, "Service")),
            ("unknown unit", |d| {
                directive(d)["Metrics"][0]["Unit"] = json!("ms")
            }),
            ("string value", |d| d["DeliveryAttempts"] = json!("1")),
            ("NaN written as null", |d| {
                d["DeliveryAttempts"] = Value::Null
            }),
            ("missing value", |d| drop_member(d, "AttemptDurationMs")),
            ("defined twice", |d| {
                directive(d)["Metrics"][1]["Name"] = json!("DeliveryAttempts")
            }),
            ("101 metrics", |d| {
                let names: Vec<String> = (0..101).map(|i| format!("M{i}")).collect();
                for name in &names {
                    d[name.as_str()] = json!(1);
                }
                directive(d)["Metrics"] = names.iter().map(|n| json!({"Name": n})).collect();
            }),
        ];
        for (what, fault) in faults {
            let mut doc = valid();
            fault(&mut doc);
            assert!(
                validate(&doc.to_string(), NOW, 1000).is_err(),
                "{what}: {doc}"
            );
        }
        assert!(validate("{\"_aws\": ", NOW, 1000).is_err());
    }
}
