//! The template grants each function exactly what `infra/least-privilege.tsv` lists: no pair
//! added or dropped, no wildcard, no managed policy beyond the listed ones, and each pair
//! either used by a named end-to-end run or explained.

use std::collections::BTreeSet;
use webhooks_tests::least_privilege::{
    MANAGED, NOT_EXERCISED, TABLE, granted_rows, table, template_policies,
};

/// Every optional feature on, so every conditional policy is in.
const EVERYTHING: [(&str, &str); 4] = [
    ("LogtoSourcesParameterName", "/webhooks/logto-sources"),
    (
        "OperationalSigningKeyParameterName",
        "/webhooks/operational-key",
    ),
    (
        "OperationalTopicArn",
        "arn:aws:sns:us-east-1:123456789012:webhooks-operational",
    ),
    ("OperationalUrl", "https://ops.example.com/notices"),
];

/// Managed policies a function may hold at all: Lambda's own logging, and (sender) what the
/// SQS event source's poller needs.
const MANAGED_ALLOWED: [&str; 2] = [
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
];

#[test]
fn the_template_grants_exactly_the_least_privilege_table() {
    let granted = granted_rows(&template_policies(&EVERYTHING));
    let rows = table();
    let listed: BTreeSet<(String, String, String)> = rows
        .iter()
        .map(|r| (r.function.clone(), r.action.clone(), r.resource.clone()))
        .collect();
    assert_eq!(listed.len(), rows.len(), "{TABLE} repeats a row");
    let show = |set: BTreeSet<&(String, String, String)>| {
        set.iter()
            .map(|(f, a, r)| format!("{f}\t{a}\t{r}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let added: BTreeSet<_> = granted.difference(&listed).collect();
    let removed: BTreeSet<_> = listed.difference(&granted).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "infra/template.yaml and {TABLE} differ.\ngranted, not listed:\n{}\nlisted, not granted:\n{}",
        show(added),
        show(removed)
    );
}

#[test]
fn no_role_holds_a_wildcard_or_an_unlisted_managed_policy() {
    for (function, action, resource) in granted_rows(&template_policies(&EVERYTHING)) {
        if action == MANAGED {
            assert!(
                MANAGED_ALLOWED.contains(&resource.as_str()),
                "{function} holds the managed policy {resource}"
            );
            continue;
        }
        assert!(
            !action.contains(['*', '?']) && !resource.contains(['*', '?']),
            "{function} is granted {action} on {resource}: a wildcard"
        );
    }
}

#[test]
fn each_granted_pair_names_the_run_that_uses_it_or_why_none_does() {
    let sources: String = ["delivery", "operational", "routes"]
        .iter()
        .map(|f| {
            let path = format!(
                "{}/tests/integration/lambda_e2e/{f}.rs",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        })
        .collect::<String>()
        .split_whitespace()
        .collect();
    for row in table() {
        if let Some(why) = row.used_by.strip_prefix(NOT_EXERCISED) {
            assert!(why.len() > 20, "{row}: say why no run uses it");
            continue;
        }
        assert_ne!(
            row.action, MANAGED,
            "{row}: no binary calls with a managed policy"
        );
        let checked = format!("assert_uses_its_grants(&stack,\"{}\"", row.used_by);
        assert!(
            sources.contains(&format!("asyncfn{}()", row.used_by)) && sources.contains(&checked),
            "{row}: {} is no end-to-end test checking its recorded calls",
            row.used_by
        );
    }
}
