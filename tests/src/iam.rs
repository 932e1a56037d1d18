//! IAM's identity-policy evaluation for the statements a template grants a function, so the
//! tests can decide every AWS call a binary makes the way AWS would (moto matches resources
//! for SQS only): wildcards, case-insensitive actions, NotAction/NotResource, explicit Deny.

use serde_json::Value;

/// Operations AWS authorizes by other actions (see `BY_OTHER_ACTIONS` in `scripts/rehearse.py`):
/// a batch by the single-message action. Transactions are split per item by the caller.
pub const BY_OTHER_ACTIONS: [(&str, &str); 3] = [
    ("sqs:SendMessageBatch", "sqs:SendMessage"),
    ("sqs:DeleteMessageBatch", "sqs:DeleteMessage"),
    (
        "sqs:ChangeMessageVisibilityBatch",
        "sqs:ChangeMessageVisibility",
    ),
];

/// The action IAM checks for `action`.
pub fn authorizing_action(action: &str) -> &str {
    BY_OTHER_ACTIONS
        .iter()
        .find(|(by, _)| by.eq_ignore_ascii_case(action))
        .map_or(action, |(_, single)| single)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No statement allows it.
    ImplicitDeny,
    ExplicitDeny,
}

/// Whether `statements` (an identity policy's, resolved to real ARNs) allow `action` on
/// `resource`.
pub fn decide(statements: &[Value], action: &str, resource: &str) -> Decision {
    let mut allowed = false;
    for statement in statements {
        if !applies(statement, action, resource) {
            continue;
        }
        match statement["Effect"].as_str() {
            Some("Deny") => return Decision::ExplicitDeny,
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    if allowed {
        Decision::Allowed
    } else {
        Decision::ImplicitDeny
    }
}

fn applies(statement: &Value, action: &str, resource: &str) -> bool {
    let action_matches = |key: &str| {
        strings(&statement[key])
            .iter()
            .any(|p| wildcard(&p.to_ascii_lowercase(), &action.to_ascii_lowercase()))
    };
    let resource_matches = |key: &str| {
        strings(&statement[key])
            .iter()
            .any(|p| wildcard(p, resource))
    };
    let action_ok = if statement.get("NotAction").is_some() {
        !action_matches("NotAction")
    } else {
        action_matches("Action")
    };
    let resource_ok = if statement.get("NotResource").is_some() {
        !resource_matches("NotResource")
    } else {
        resource_matches("Resource")
    };
    // Conditions are not evaluated: one may hold for a Deny and fail for an Allow.
    let conditional = statement.get("Condition").is_some();
    action_ok && resource_ok && (!conditional || statement["Effect"] == "Deny")
}

/// A string or a list of strings.
pub fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM's glob: `*` any run of characters (also none), `?` exactly one.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/hooks";

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard("a*c", "abbbc"));
        assert!(wildcard("a*c", "ac"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(!wildcard("a*c", "abcd"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("table/hooks", "table/hooks/index/by-event"));
        assert!(wildcard("table/hooks*", "table/hooks/index/by-event"));
    }

    #[test]
    fn only_a_statement_naming_the_action_and_resource_allows() {
        let policy =
            [json!({"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": TABLE})];
        assert_eq!(
            decide(&policy, "dynamodb:getitem", TABLE),
            Decision::Allowed
        );
        assert_eq!(
            decide(&policy, "dynamodb:PutItem", TABLE),
            Decision::ImplicitDeny
        );
        let index = format!("{TABLE}/index/by-event");
        assert_eq!(
            decide(&policy, "dynamodb:GetItem", &index),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(&policy, "dynamodb:GetItem", &format!("{TABLE}-other")),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn an_explicit_deny_wins_and_not_elements_invert() {
        let policy = [
            json!({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}),
            json!({"Effect": "Deny", "Action": "dynamodb:Delete?tem", "Resource": TABLE}),
        ];
        assert_eq!(decide(&policy, "dynamodb:Query", TABLE), Decision::Allowed);
        assert_eq!(
            decide(&policy, "dynamodb:DeleteItem", TABLE),
            Decision::ExplicitDeny
        );
        let not = [json!({"Effect": "Allow", "NotAction": "ssm:*", "NotResource": TABLE})];
        assert_eq!(decide(&not, "sqs:SendMessage", "q"), Decision::Allowed);
        assert_eq!(
            decide(&not, "ssm:GetParameter", "p"),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(&not, "sqs:SendMessage", TABLE),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn a_condition_never_allows_and_always_denies() {
        let condition = json!({"Bool": {"aws:SecureTransport": "true"}});
        let allow =
            [json!({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition})];
        assert_eq!(
            decide(&allow, "sqs:SendMessage", "q"),
            Decision::ImplicitDeny
        );
        let deny = [
            json!({"Effect": "Allow", "Action": "*", "Resource": "*"}),
            json!({"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": condition}),
        ];
        assert_eq!(
            decide(&deny, "sqs:SendMessage", "q"),
            Decision::ExplicitDeny
        );
    }

    #[test]
    fn batches_are_authorized_by_their_single_action() {
        assert_eq!(
            authorizing_action("sqs:SendMessageBatch"),
            "sqs:SendMessage"
        );
        assert_eq!(authorizing_action("dynamodb:Query"), "dynamodb:Query");
    }
}
