//! `infra/least-privilege.tsv`: every (function, action, resource) the template grants, and
//! the end-to-end test whose recorded calls use it (or why none does), so a grant can be
//! neither added nor left unused without the table saying so.

use crate::iam::{strings, wildcard};
use crate::provision::Policy;
use crate::recording_proxy::Call;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/least-privilege.tsv");
/// The action column of a managed policy's row.
pub const MANAGED: &str = "managed-policy";
/// How the last column of a grant no end-to-end run uses starts.
pub const NOT_EXERCISED: &str = "not exercised: ";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub function: String,
    pub action: String,
    /// As the template writes it (`${HooksTable.Arn}`), or a managed policy's ARN.
    pub resource: String,
    /// The end-to-end test that uses it, or `not exercised: <why>`.
    pub used_by: String,
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.function, self.action, self.resource)
    }
}

/// The table's rows; panics on a malformed line.
pub fn table() -> Vec<Row> {
    let text = std::fs::read_to_string(TABLE).unwrap_or_else(|e| panic!("{TABLE}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let columns: Vec<&str> = l.split('\t').collect();
            assert_eq!(
                columns.len(),
                4,
                "{TABLE}: not 4 tab-separated columns: {l}"
            );
            Row {
                function: columns[0].into(),
                action: columns[1].into(),
                resource: columns[2].into(),
                used_by: columns[3].into(),
            }
        })
        .collect()
}

/// (action, resource as written, resource resolved) of each allowed pair of `policy`.
pub fn grants(policy: &Policy) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for (resolved, written) in policy.statements.iter().zip(&policy.symbolic) {
        if resolved["Effect"] != "Allow" {
            continue;
        }
        let pairs = strings(&written["Resource"])
            .into_iter()
            .zip(strings(&resolved["Resource"]));
        for (symbolic, arn) in pairs {
            for action in strings(&resolved["Action"]) {
                found.push((action, symbolic.clone(), arn.clone()));
            }
        }
    }
    found
}

/// The rows naming `test` for `function` that none of `calls` used.
pub fn unused<'a>(
    rows: &'a [Row],
    test: &str,
    function: &str,
    policy: &Policy,
    calls: &[Call],
) -> Vec<&'a Row> {
    let grants = grants(policy);
    rows.iter()
        .filter(|r| r.function == function && r.used_by == test && r.action != MANAGED)
        .filter(|row| {
            let used = grants
                .iter()
                .filter(|(a, s, _)| *a == row.action && *s == row.resource)
                .any(|(action, _, arn)| {
                    calls.iter().flat_map(|c| &c.needs).any(|(a, r)| {
                        wildcard(&action.to_ascii_lowercase(), &a.to_ascii_lowercase())
                            && wildcard(arn, r)
                    })
                });
            !used
        })
        .collect()
}

/// Each function's statements and managed policies as the transformed template writes them
/// (`scripts/rehearse.py --policies`) with `parameters`.
pub fn template_policies(parameters: &[(&str, &str)]) -> BTreeMap<String, Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/rehearse.py");
    let mut command = std::process::Command::new(crate::provision::python());
    command.arg(script).arg("--policies");
    for (key, value) in parameters {
        command.args(["--parameter", &format!("{key}={value}")]);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        output.status.success(),
        "{script} --policies: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON object per function")
}

/// The rows `policies` (from [`template_policies`]) amount to, without their last column;
/// panics on what a table of pairs cannot pin (NotAction, NotResource, a Deny).
pub fn granted_rows(policies: &BTreeMap<String, Value>) -> BTreeSet<(String, String, String)> {
    let mut rows = BTreeSet::new();
    for (function, policy) in policies {
        for statement in policy["statements"].as_array().into_iter().flatten() {
            for key in ["NotAction", "NotResource", "Condition"] {
                assert!(
                    statement.get(key).is_none(),
                    "{function}: a statement with {key} cannot be pinned: {statement}"
                );
            }
            assert_eq!(statement["Effect"], "Allow", "{function}: {statement}");
            for action in strings(&statement["Action"]) {
                for resource in strings(&statement["Resource"]) {
                    rows.insert((function.clone(), action.clone(), resource));
                }
            }
        }
        for managed in strings(&policy["managedPolicies"]) {
            rows.insert((function.clone(), MANAGED.to_string(), managed));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/hooks-1";

    fn row(action: &str, used_by: &str) -> Row {
        Row {
            function: "api".into(),
            action: action.into(),
            resource: "${HooksTable.Arn}".into(),
            used_by: used_by.into(),
        }
    }

    #[test]
    fn a_pair_is_used_only_by_a_call_needing_that_action_on_that_resource() {
        let policy = Policy {
            statements: vec![
                json!({"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": ARN}),
            ],
            symbolic: vec![
                json!({"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": "${HooksTable.Arn}"}),
            ],
            managed_policies: Vec::new(),
        };
        let rows = [
            row("dynamodb:GetItem", "t"),
            row("dynamodb:PutItem", "t"),
            row("dynamodb:PutItem", "other"),
        ];
        let calls = [
            Call {
                operation: "dynamodb:GetItem".into(),
                needs: vec![("dynamodb:GetItem".into(), ARN.into())],
            },
            Call {
                operation: "dynamodb:PutItem".into(),
                needs: vec![("dynamodb:PutItem".into(), format!("{ARN}-other"))],
            },
        ];
        let unused = unused(&rows, "t", "api", &policy, &calls);
        assert_eq!(unused, [&rows[1]]);
    }
}
