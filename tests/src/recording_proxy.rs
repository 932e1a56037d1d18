//! A function's own endpoint in front of moto that records every AWS call it makes as the
//! (action, resource ARN) pairs IAM authorizes, and decides the ones moto cannot (it matches
//! only SQS resources) against the function's statements; SQS passes through, role-signed.

use crate::iam::{Decision, authorizing_action, decide};
use crate::provision::Keys;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// One AWS API request, as IAM sees it.
#[derive(Debug, Clone)]
pub struct Call {
    /// `service:Operation` as requested.
    pub operation: String,
    /// (action, resource ARN) pairs IAM checks for it.
    pub needs: Vec<(String, String)>,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let needs: Vec<String> = self
            .needs
            .iter()
            .map(|(a, r)| format!("{a} on {r}"))
            .collect();
        write!(f, "{} ({})", self.operation, needs.join(", "))
    }
}

struct State {
    target: String,
    admin: Keys,
    statements: Vec<Value>,
    region: String,
    account: String,
    calls: Mutex<Vec<Call>>,
    http: reqwest::Client,
}

pub struct RecordingProxy {
    pub endpoint: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingProxy {
    /// Listens on a free loopback port and forwards to moto at `target`. Calls `statements`
    /// deny are answered with AccessDenied; allowed non-SQS calls are re-signed with `admin`.
    /// `queue_arn` gives the region and account of the ARNs it records.
    pub fn start(target: &str, admin: Keys, statements: Vec<Value>, queue_arn: &str) -> Self {
        assert!(
            target.starts_with("http://127.0.0.1:"),
            "the proxy only forwards to a local emulator, not {target}"
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let arn: Vec<&str> = queue_arn.split(':').collect();
        let state = Arc::new(State {
            target: target.trim_end_matches('/').to_string(),
            admin,
            statements,
            region: arn[3].to_string(),
            account: arn[4].to_string(),
            calls: Mutex::new(Vec::new()),
            http: reqwest::Client::new(),
        });
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { forward(&state, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            endpoint,
            state,
            task,
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    state: &State,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let call = parse(
        header("authorization"),
        header("x-amz-target"),
        &body,
        &state.region,
        &state.account,
    );
    state.calls.lock().unwrap().push(call.clone());
    let service = call
        .operation
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", state.target);
    let mut request = state.http.request(method.clone(), &url).body(body.to_vec());
    if service == "sqs" {
        // moto matches SQS resources itself: the function's own signature goes through.
        for (name, value) in &headers {
            if name != "content-length" {
                request = request.header(name, value);
            }
        }
    } else {
        let denied = call.needs.iter().find(|(action, resource)| {
            decide(&state.statements, action, resource) != Decision::Allowed
        });
        if let Some((action, resource)) = denied {
            let message = format!("not authorized to perform: {action} on resource: {resource}");
            let body = serde_json::json!({"__type": "AccessDeniedException", "message": message});
            return (StatusCode::BAD_REQUEST, body.to_string()).into_response();
        }
        let host = state.target.trim_start_matches("http://");
        let kept: Vec<(&str, &str)> = ["content-type", "x-amz-target"]
            .into_iter()
            .filter_map(|n| headers.get(n).and_then(|v| v.to_str().ok()).map(|v| (n, v)))
            .chain([("host", host)])
            .collect();
        for (name, value) in sign(state, &service, method.as_str(), &url, &kept, &body) {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let mut out = Response::builder().status(status.as_u16());
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    out = out.header(name, value);
                }
            }
            out.body(axum::body::Body::from(
                answer.bytes().await.unwrap_or_default(),
            ))
            .unwrap()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// The headers of `headers` signed for moto with the administrator's keys.
fn sign(
    state: &State,
    service: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let credentials = aws_credential_types::Credentials::new(
        &state.admin.access_key_id,
        &state.admin.secret_access_key,
        state.admin.session_token.clone(),
        None,
        "administrator",
    );
    let identity = aws_smithy_runtime_api::client::identity::Identity::from(credentials);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&state.region)
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .chain(
            instructions
                .headers()
                .map(|(n, v)| (n.to_string(), v.to_string())),
        )
        .collect()
}

/// What IAM checks for a request: its service from the signature's scope, its operation from
/// `X-Amz-Target` (JSON protocol) or the form's `Action` (query protocol), and the resources
/// the body names.
pub fn parse(authorization: &str, target: &str, body: &[u8], region: &str, account: &str) -> Call {
    let service = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string();
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let form: Vec<(String, String)> = if target.is_empty() {
        url::form_urlencoded::parse(body).into_owned().collect()
    } else {
        Vec::new()
    };
    let field = |name: &str| -> Option<String> {
        json[name]
            .as_str()
            .map(String::from)
            .or_else(|| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    };
    let operation = match target.rsplit_once('.') {
        Some((_, op)) => op.to_string(),
        None => field("Action").unwrap_or_else(|| "Unknown".into()),
    };
    let action = format!("{service}:{operation}");
    let table = |name: &str| format!("arn:aws:dynamodb:{region}:{account}:table/{name}");
    let parameter = |name: &str| {
        if name.starts_with("arn:") {
            name.to_string()
        } else {
            let slash = if name.starts_with('/') { "" } else { "/" };
            format!("arn:aws:ssm:{region}:{account}:parameter{slash}{name}")
        }
    };
    let mut needs = Vec::new();
    match service.as_str() {
        "dynamodb" => {
            if let Some(name) = field("TableName") {
                let resource = match field("IndexName") {
                    Some(index) => format!("{}/index/{index}", table(&name)),
                    None => table(&name),
                };
                needs.push((action.clone(), resource));
            }
            if let Some(items) = json["RequestItems"].as_object() {
                needs.extend(items.keys().map(|t| (action.clone(), table(t))));
            }
            for item in json["TransactItems"].as_array().into_iter().flatten() {
                for (kind, single) in [
                    ("Put", "PutItem"),
                    ("Update", "UpdateItem"),
                    ("Delete", "DeleteItem"),
                    ("ConditionCheck", "ConditionCheckItem"),
                    ("Get", "GetItem"),
                ] {
                    if let Some(name) = item[kind]["TableName"].as_str() {
                        needs.push((format!("dynamodb:{single}"), table(name)));
                    }
                }
            }
        }
        "sqs" => {
            let name = field("QueueUrl")
                .and_then(|u| u.rsplit('/').next().map(String::from))
                .or_else(|| field("QueueName"));
            if let Some(name) = name {
                let arn = format!("arn:aws:sqs:{region}:{account}:{name}");
                needs.push((authorizing_action(&action).to_string(), arn));
            }
        }
        "ssm" => {
            let names = field("Name").into_iter().chain(
                crate::iam::strings(&json["Names"]).into_iter().chain(
                    form.iter()
                        .filter(|(k, _)| k.starts_with("Names.member."))
                        .map(|(_, v)| v.clone()),
                ),
            );
            needs.extend(names.map(|n| (action.clone(), parameter(&n))));
        }
        "sns" => {
            if let Some(topic) = field("TopicArn").or_else(|| field("TargetArn")) {
                needs.push((action.clone(), topic));
            }
        }
        _ => {}
    }
    if needs.is_empty() {
        needs.push((action.clone(), "*".to_string()));
    }
    Call {
        operation: action,
        needs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=x";

    fn call(service: &str, target: &str, body: &str) -> Call {
        parse(
            &AUTH.replace("{}", service),
            target,
            body.as_bytes(),
            "us-east-1",
            "123456789012",
        )
    }

    #[test]
    fn dynamodb_calls_name_their_table_index_and_transaction_items() {
        let query = call(
            "dynamodb",
            "DynamoDB_20120810.Query",
            r#"{"TableName":"hooks","IndexName":"by-event"}"#,
        );
        assert_eq!(
            query.needs,
            [(
                "dynamodb:Query".to_string(),
                "arn:aws:dynamodb:us-east-1:123456789012:table/hooks/index/by-event".to_string()
            )]
        );
        let transaction = call(
            "dynamodb",
            "DynamoDB_20120810.TransactWriteItems",
            r#"{"TransactItems":[{"Put":{"TableName":"a"}},{"Delete":{"TableName":"b"}}]}"#,
        );
        let actions: Vec<&str> = transaction.needs.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(actions, ["dynamodb:PutItem", "dynamodb:DeleteItem"]);
        assert!(transaction.needs[1].1.ends_with("table/b"));
    }

    #[test]
    fn sqs_ssm_and_sns_calls_name_their_queue_parameter_and_topic() {
        let batch = call(
            "sqs",
            "AmazonSQS.SendMessageBatch",
            r#"{"QueueUrl":"http://127.0.0.1:1/123456789012/q1"}"#,
        );
        assert_eq!(
            batch.needs,
            [(
                "sqs:SendMessage".to_string(),
                "arn:aws:sqs:us-east-1:123456789012:q1".to_string()
            )]
        );
        let get = call("ssm", "AmazonSSM.GetParameter", r#"{"Name":"/p/admin"}"#);
        assert_eq!(
            get.needs[0].1,
            "arn:aws:ssm:us-east-1:123456789012:parameter/p/admin"
        );
        let publish = call(
            "sns",
            "",
            "Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Message=x",
        );
        assert_eq!(
            publish.needs,
            [(
                "sns:Publish".to_string(),
                "arn:aws:sns:us-east-1:123456789012:t".to_string()
            )]
        );
    }

    #[test]
    fn a_call_naming_no_resource_needs_every_resource() {
        let list = call("sqs", "AmazonSQS.ListQueues", "{}");
        assert_eq!(
            list.needs,
            [("sqs:ListQueues".to_string(), "*".to_string())]
        );
    }
}
