//! The template's alarms and dashboard read the custom metrics the code emits: a renamed
//! metric cannot leave an alarm watching nothing.

use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::Path;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The names in `("Name", value, Unit::…)` tuples of `text`: what `metrics::emit` is given.
fn metric_names(text: &str) -> Vec<String> {
    text.match_indices("Unit::")
        .filter_map(|(at, _)| {
            let open = text[..at].rfind("(\"")?;
            let name = text[open + 2..].split('"').next()?;
            let is_name = !name.is_empty()
                && name.starts_with(|c: char| c.is_ascii_uppercase())
                && name.chars().all(|c| c.is_ascii_alphanumeric());
            is_name.then(|| name.to_string())
        })
        .collect()
}

/// Names passed to `metrics::emit` anywhere in the library.
fn emitted() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut dirs = vec![Path::new(ROOT).join("shared/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                names.extend(metric_names(&text));
            }
        }
    }
    names
}

fn template() -> Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join("infra/template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// A `!Ref Name` value's target.
fn reference(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "!Ref" => t.value.as_str().map(String::from),
        _ => v.get("Ref").and_then(Value::as_str).map(String::from),
    }
}

/// `body` with every `${…}` of `!Sub` replaced by `X`.
fn substitute(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed ${…}") + start;
        out.push('X');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn metric_names_are_read_from_emit_tuples() {
    let text = r#"emit(&[("HooksDisabled", 1.0, Unit::Count)]); ("Lat", (a - b) as f64, Unit::Milliseconds) ("lower", 1.0, Unit::Count)"#;
    assert_eq!(metric_names(text), ["HooksDisabled", "Lat"]);
    assert_eq!(substitute("a ${B} c ${D.E}"), "a X c X");
}

#[test]
fn alarms_and_the_dashboard_read_metrics_the_code_emits() {
    let emitted = emitted();
    for name in ["DeliveryAttempts", "EventsIngested", "HooksAutoDisabled"] {
        assert!(emitted.contains(name), "{name} not found in {emitted:?}");
    }
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let mut custom = 0;
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let props = &resource["Properties"];
        if reference(&props["Namespace"]).as_deref() != Some("MetricsNamespace") {
            continue;
        }
        custom += 1;
        let metric = props["MetricName"].as_str().unwrap();
        assert!(
            emitted.contains(metric),
            "{id:?} watches {metric}, which nothing emits ({emitted:?})"
        );
        let dimensions = props["Dimensions"].as_sequence().unwrap();
        assert_eq!(dimensions.len(), 1, "{id:?}");
        assert_eq!(dimensions[0]["Name"], "Service", "{id:?}");
        assert_eq!(dimensions[0]["Value"], "webhooks", "{id:?}");
    }
    assert!(custom >= 2, "alarms on custom metrics: {custom}");

    let body = match &resources[&Value::from("Dashboard")]["Properties"]["DashboardBody"] {
        Value::Tagged(t) if t.tag == "!Sub" => t.value.as_str().unwrap().to_string(),
        other => panic!("DashboardBody is not a !Sub string: {other:?}"),
    };
    let body = substitute(&body);
    let dashboard: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("dashboard JSON: {e}\n{body}"));
    let mut shown = BTreeSet::new();
    for widget in dashboard["widgets"].as_array().unwrap() {
        for metric in widget["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if metric[0] == "X" {
                shown.insert(metric[1].as_str().unwrap().to_string());
            }
        }
    }
    for metric in &shown {
        assert!(
            emitted.contains(metric),
            "the dashboard shows {metric}, which nothing emits"
        );
    }
    assert!(shown.contains("HooksAutoDisabled"), "{shown:?}");
    assert!(
        dashboard["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["type"] == "log"
                && w["properties"]["query"]
                    .as_str()
                    .unwrap()
                    .contains("by hook_id")),
        "no Logs Insights widget of failing hooks"
    );
}
