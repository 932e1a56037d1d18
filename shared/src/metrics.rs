//! CloudWatch Embedded Metric Format: one JSON line per measurement on stdout, which Lambda
//! ships to CloudWatch Logs and CloudWatch turns into metrics. One low-cardinality dimension.

use std::sync::OnceLock;

/// The dimension every metric carries; the template's alarms and dashboard use it.
pub const SERVICE: &str = "webhooks";
const DEFAULT_NAMESPACE: &str = "Webhooks";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

static NAMESPACE: OnceLock<Option<String>> = OnceLock::new();

/// Turns emission on (on Lambda) with the namespace from `WEBHOOKS_METRICS_NAMESPACE`.
pub fn init_from_env() {
    let on_lambda = std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok();
    let namespace = std::env::var("WEBHOOKS_METRICS_NAMESPACE")
        .ok()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    let _ = NAMESPACE.set(on_lambda.then_some(namespace));
}

/// Emits the measurements as one EMF line when emission is on.
pub fn emit(measurements: &[(&str, f64, Unit)]) {
    if measurements.is_empty() {
        return;
    }
    if let Some(Some(namespace)) = NAMESPACE.get() {
        println!(
            "{}",
            emf_line(namespace, crate::domain::clock::now_ms(), measurements)
        );
    }
}

/// The EMF document for `measurements`.
pub fn emf_line(namespace: &str, timestamp_ms: i64, measurements: &[(&str, f64, Unit)]) -> String {
    let definitions: Vec<_> = measurements
        .iter()
        .map(|(name, _, unit)| serde_json::json!({ "Name": name, "Unit": unit.as_str() }))
        .collect();
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Service"]],
                "Metrics": definitions,
            }],
        },
        "Service": SERVICE,
    });
    for (name, value, _) in measurements {
        doc[*name] = serde_json::json!(value);
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_documents_declare_every_value() {
        let line = emf_line(
            "Webhooks",
            7,
            &[
                ("DeliveryAttempts", 1.0, Unit::Count),
                ("AttemptDurationMs", 12.5, Unit::Milliseconds),
            ],
        );
        let doc: serde_json::Value = serde_json::from_str(&line).unwrap();
        let definition = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 7);
        assert_eq!(definition["Namespace"], "Webhooks");
        assert_eq!(definition["Dimensions"], serde_json::json!([["Service"]]));
        assert_eq!(definition["Metrics"][1]["Name"], "AttemptDurationMs");
        assert_eq!(definition["Metrics"][1]["Unit"], "Milliseconds");
        assert_eq!(doc["Service"], "webhooks");
        assert_eq!(doc["DeliveryAttempts"], 1.0);
        assert_eq!(doc["AttemptDurationMs"], 12.5);
    }
}
