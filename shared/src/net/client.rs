//! The HTTP client that performs delivery attempts: no redirects, no proxies, bounded time,
//! a resolver that refuses non-public addresses, and at most 8 KiB of the answer read. It
//! trusts Mozilla's roots compiled in unless `SSL_CERT_FILE`/`SSL_CERT_DIR` choose others.

use crate::domain::answer::Answer;
use crate::domain::delivery::{ErrorKind, MAX_CAPTURE_BYTES};
use crate::domain::hook::{CustomHeaders, HookUrl, UrlPolicy};
use crate::domain::signing::SignatureHeaders;
use crate::net::address_policy::{AddressPolicy, FilteringResolver, is_blocked};
use crate::net::lookup::{NameLookup, SystemLookup};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub const USER_AGENT: &str = concat!("webhooks/", env!("CARGO_PKG_VERSION"));

/// Time limits of one delivery attempt.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
pub struct DeliveryClient {
    http: Arc<OnceLock<reqwest::Client>>,
    lookup: Arc<dyn NameLookup>,
    policy: Arc<AddressPolicy>,
    url_policy: UrlPolicy,
    timeouts: Timeouts,
    user_agent: HeaderValue,
}

impl DeliveryClient {
    /// A client resolving names with the system's resolver.
    pub fn new(policy: AddressPolicy, url_policy: UrlPolicy, timeouts: Timeouts) -> Self {
        Self::with_lookup(policy, url_policy, timeouts, Arc::new(SystemLookup))
    }

    /// A client resolving names through `lookup`; every answer still passes the policy.
    pub fn with_lookup(
        policy: AddressPolicy,
        url_policy: UrlPolicy,
        timeouts: Timeouts,
        lookup: Arc<dyn NameLookup>,
    ) -> Self {
        let client = Self::deferred(policy, url_policy, timeouts, lookup);
        client.http();
        client
    }

    /// A client whose HTTP client (its TLS roots above all) is built by the first attempt.
    pub(crate) fn deferred(
        policy: AddressPolicy,
        url_policy: UrlPolicy,
        timeouts: Timeouts,
        lookup: Arc<dyn NameLookup>,
    ) -> Self {
        Self {
            http: Arc::new(OnceLock::new()),
            lookup,
            policy: Arc::new(policy),
            url_policy,
            timeouts,
            user_agent: HeaderValue::from_static(USER_AGENT),
        }
    }

    /// Deliveries carry `user_agent` as their `User-Agent` (e.g. Logto's, for receivers or
    /// firewalls that allow only it).
    pub fn with_user_agent(mut self, user_agent: HeaderValue) -> Self {
        self.user_agent = user_agent;
        self
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            let builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(self.timeouts.connect)
                .timeout(self.timeouts.total)
                .pool_idle_timeout(Duration::from_secs(30))
                .dns_resolver(Arc::new(FilteringResolver::new(
                    self.policy.clone(),
                    self.lookup.clone(),
                )));
            let builder = if system_roots_chosen() {
                builder
            } else {
                builder.tls_certs_only(compiled_in_roots())
            };
            builder
                .build()
                .expect("the HTTP client configuration is valid")
        })
    }

    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// POSTs `body` with the product's, the hook's and the signature headers.
    pub async fn post(
        &self,
        url: &HookUrl,
        custom: &CustomHeaders,
        signature: &SignatureHeaders,
        body: &str,
    ) -> Answer {
        self.post_within(url, custom, signature, body, self.timeouts.total)
            .await
    }

    /// Like [`DeliveryClient::post`], within `limit` (at most the client's own timeout).
    pub async fn post_within(
        &self,
        url: &HookUrl,
        custom: &CustomHeaders,
        signature: &SignatureHeaders,
        body: &str,
        limit: Duration,
    ) -> Answer {
        let headers = request_headers(custom, signature, &self.user_agent);
        self.send(url, headers, body, limit).await.0
    }

    /// The time limits of each attempt.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// POSTs `body` with the product's and the hook's headers and exactly the `signed` headers
    /// given (the receiver check's forged and partial signatures), within `limit` (at most the
    /// client's own timeout), under the same URL and address policy as deliveries. The answer,
    /// and a redirect's `Location` (never followed).
    pub async fn post_with_headers(
        &self,
        url: &HookUrl,
        custom: &CustomHeaders,
        signed: &[(&'static str, String)],
        body: &str,
        limit: Duration,
    ) -> (Answer, Option<String>) {
        let mut headers = request_headers(custom, &SignatureHeaders::default(), &self.user_agent);
        for name in SIGNATURE_HEADERS {
            headers.remove(name);
        }
        for (name, value) in signed {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        self.send(url, headers, body, limit).await
    }

    async fn send(
        &self,
        url: &HookUrl,
        headers: HeaderMap,
        body: &str,
        limit: Duration,
    ) -> (Answer, Option<String>) {
        let limit = limit.min(self.timeouts.total);
        let started = Instant::now();
        if let Err(e) = HookUrl::check(url.as_url().clone(), self.url_policy) {
            return (
                Answer::failed(started, ErrorKind::Blocked, e.to_string()),
                None,
            );
        }
        if self.policy.check_url(url.as_url()).is_err() {
            return (
                Answer::failed(
                    started,
                    ErrorKind::Blocked,
                    "destination address is not allowed",
                ),
                None,
            );
        }
        // One deadline for the whole attempt. The status decides the outcome once it arrived in
        // time; the body is only captured until the deadline, so a slow body never turns a 2xx
        // into a timeout (reqwest's own total timeout ends the capture the same way).
        let deadline = tokio::time::Instant::now() + limit;
        let sent = self
            .http()
            .post(url.as_url().clone())
            .timeout(limit)
            .headers(headers)
            .body(body.to_string())
            .send();
        let mut response = match tokio::time::timeout_at(deadline, sent).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return (classify(started, &e), None),
            Err(_) => {
                return (
                    Answer::failed(started, ErrorKind::Timeout, "no answer within the timeout"),
                    None,
                );
            }
        };
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut captured = Vec::new();
        let capture = async {
            while captured.len() < MAX_CAPTURE_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => captured.extend_from_slice(&chunk),
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            }
            true
        };
        let body_complete = tokio::time::timeout_at(deadline, capture)
            .await
            .unwrap_or(false);
        drop(response);
        captured.truncate(MAX_CAPTURE_BYTES);
        let (error_kind, error) = if (200..300).contains(&status) {
            (None, None)
        } else {
            (
                Some(ErrorKind::Http),
                Some(format!("endpoint answered {status}")),
            )
        };
        let answer = Answer {
            duration: started.elapsed(),
            status: Some(status),
            body: Some(String::from_utf8_lossy(&captured).into_owned()),
            error_kind,
            error,
            retry_after,
            body_complete,
        };
        (answer, location)
    }
}

/// Whether `SSL_CERT_FILE` or `SSL_CERT_DIR` names the trusted roots; then the system's
/// loader reads them, as it would for any TLS client on the host.
pub(crate) fn system_roots_chosen() -> bool {
    ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|p| !p.is_empty()))
}

/// Mozilla's root program (the roots the system bundles derive from), compiled in: reading
/// and parsing the system's certificate files cost a cold start milliseconds.
fn compiled_in_roots() -> Vec<reqwest::Certificate> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der.as_ref()).ok())
        .collect()
}

/// The headers a signature consists of.
const SIGNATURE_HEADERS: [&str; 4] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "logto-signature-sha-256",
];

fn request_headers(
    custom: &CustomHeaders,
    signature: &SignatureHeaders,
    user_agent: &HeaderValue,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(http::header::USER_AGENT, user_agent.clone());
    for (name, value) in custom.iter() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }
    let signed = [
        ("webhook-id", &signature.webhook_id),
        ("webhook-timestamp", &signature.webhook_timestamp),
        ("webhook-signature", &signature.webhook_signature),
        ("logto-signature-sha-256", &signature.logto_signature),
    ];
    for (name, value) in signed {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    headers
}

fn classify(started: Instant, e: &reqwest::Error) -> Answer {
    if is_blocked(e) {
        return Answer::failed(
            started,
            ErrorKind::Blocked,
            "destination address is not allowed",
        );
    }
    if e.is_timeout() {
        return Answer::failed(started, ErrorKind::Timeout, "no answer within the timeout");
    }
    let chain = error_chain(e);
    let lower = chain.to_ascii_lowercase();
    let kind =
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            ErrorKind::Tls
        } else {
            ErrorKind::Connect
        };
    Answer::failed(started, kind, chain)
}

/// The error and its sources, without the URL (it may carry query-string secrets).
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        parts.push("request failed".into());
    }
    parts.join(": ")
}
