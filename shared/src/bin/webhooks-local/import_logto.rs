//! `webhooks-local import-logto --url URL --token TOKEN`: copies the hooks of a Logto tenant
//! (its management API, `GET /api/hooks`) into this product through its own API, keeping
//! name, events, URL, headers and signing key, so `logto-signature-sha-256` stays valid for
//! existing receivers.

use serde_json::{Map, Value};
use std::collections::HashSet;
use webhooks::domain::hook::{HookId, is_reserved_header};

/// Logto's largest page (`koa-pagination`'s `maxPageSize`).
const LOGTO_PAGE_SIZE: usize = 100;
/// Most Logto hooks read in one import: a tenant has far fewer, and the cap is reported.
const MAX_HOOKS: usize = 10_000;

const IMPORT_USAGE: &str = "usage: webhooks-local import-logto --url LOGTO_URL --token LOGTO_TOKEN \
[--to URL (default http://$WEBHOOKS_BIND or http://127.0.0.1:3000)] \
[--admin-token TOKEN (default $WEBHOOKS_ADMIN_TOKEN)]";

/// Runs the import with the command line after `import-logto`; the process's exit code.
pub async fn run(args: &[String]) -> i32 {
    let mut flags = std::collections::HashMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match (flag.as_str(), it.next()) {
            (f @ ("--url" | "--token" | "--to" | "--admin-token"), Some(value)) => {
                flags.insert(f, value.clone());
            }
            _ => {
                eprintln!("{IMPORT_USAGE}");
                return 2;
            }
        }
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let bind = var("WEBHOOKS_BIND").unwrap_or_else(|| "127.0.0.1:3000".into());
    let parse = |name: &str, text: Option<String>| {
        text.ok_or_else(|| format!("{name} is required"))
            .and_then(|t| url::Url::parse(&t).map_err(|e| format!("{name}: {e}")))
            .map(|mut u| {
                if !u.path().ends_with('/') {
                    u.set_path(&format!("{}/", u.path()));
                }
                u
            })
    };
    let import = (|| -> Result<Import, String> {
        Ok(Import {
            logto_url: parse("--url", flags.get("--url").cloned())?,
            logto_token: flags.get("--token").cloned().ok_or("--token is required")?,
            target_url: parse(
                "--to",
                Some(
                    flags
                        .get("--to")
                        .cloned()
                        .unwrap_or(format!("http://{bind}")),
                ),
            )?,
            admin_token: flags
                .get("--admin-token")
                .cloned()
                .or_else(|| var("WEBHOOKS_ADMIN_TOKEN"))
                .ok_or("--admin-token (or WEBHOOKS_ADMIN_TOKEN) is required")?,
        })
    })();
    let import = match import {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}\n{IMPORT_USAGE}");
            return 2;
        }
    };
    match import.run(&reqwest::Client::new()).await {
        Ok(report) => {
            print!("{}", summary(&report));
            0
        }
        Err(e) => {
            eprintln!("import failed: {e}");
            1
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{what}: {reason}")]
    Request { what: String, reason: String },
    #[error("{what} answered {status}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
}

/// Where hooks come from and go to; the tokens are never printed.
pub struct Import {
    /// The Logto tenant's base URL, e.g. `https://tenant.logto.app`.
    pub logto_url: url::Url,
    /// A Logto management API access token.
    pub logto_token: String,
    /// This product's base URL.
    pub target_url: url::Url,
    pub admin_token: String,
}

/// One Logto hook created here.
#[derive(Debug)]
pub struct Imported {
    pub logto_id: String,
    /// Its id here: Logto's, unless Logto's does not parse as a hook id.
    pub id: String,
    pub kept_key: bool,
    /// Custom headers left out because sending them would break the request.
    pub dropped_headers: Vec<String>,
}

/// What became of each Logto hook.
#[derive(Debug, Default)]
pub struct Report {
    pub imported: Vec<Imported>,
    /// `(Logto id, why)`: already imported, or refused by this product (its answer).
    pub skipped: Vec<(String, String)>,
    /// True when the Logto tenant had more than [`MAX_HOOKS`] hooks.
    pub capped: bool,
}

impl Import {
    pub async fn run(&self, http: &reqwest::Client) -> Result<Report, ImportError> {
        let (hooks, capped) = self.logto_hooks(http).await?;
        let existing = self.existing(http).await?;
        let mut report = Report {
            capped,
            ..Report::default()
        };
        for hook in hooks {
            let id = hook["id"].as_str().unwrap_or_default().to_string();
            let (body, dropped_headers) = translate(&hook);
            if existing.contains(&identity(&body)) {
                report.skipped.push((id, "already imported".into()));
                continue;
            }
            let kept_key = body.get("signingKey").is_some();
            // Under Logto's id, so receivers checking `hookId` see no change.
            let r = match HookId::parse(&id) {
                Ok(_) => {
                    let path = format!("api/hooks/{id}");
                    self.send(http, reqwest::Method::PUT, &path, Some(&body))
                        .await?
                }
                Err(_) => {
                    self.send(http, reqwest::Method::POST, "api/hooks", Some(&body))
                        .await?
                }
            };
            let status = r.status().as_u16();
            let answer: Value =
                serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or(Value::Null);
            match status {
                201 => report.imported.push(Imported {
                    logto_id: id,
                    id: answer["id"].as_str().unwrap_or_default().to_string(),
                    kept_key,
                    dropped_headers,
                }),
                409 if answer["code"] == "hook.id_taken" => report
                    .skipped
                    .push((id, "already imported (a hook here has its id)".into())),
                _ => {
                    let why = answer["message"].as_str().unwrap_or("refused").to_string();
                    report.skipped.push((id, format!("{status}: {why}")));
                }
            }
        }
        Ok(report)
    }

    /// Every hook of the Logto tenant, a page of 100 at a time.
    async fn logto_hooks(&self, http: &reqwest::Client) -> Result<(Vec<Value>, bool), ImportError> {
        let mut hooks = Vec::new();
        for page in 1.. {
            let mut url = self
                .logto_url
                .join("api/hooks")
                .map_err(|e| ImportError::Request {
                    what: "the Logto URL".into(),
                    reason: e.to_string(),
                })?;
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("page_size", &LOGTO_PAGE_SIZE.to_string());
            let what = format!("GET {url}");
            let r = http
                .get(url)
                .bearer_auth(&self.logto_token)
                .send()
                .await
                .map_err(|e| request_error(&what, e))?;
            let items = checked(&what, r).await?;
            let Value::Array(items) = items else {
                return Err(ImportError::Request {
                    what,
                    reason: "the answer is not a list of hooks".into(),
                });
            };
            let last = items.len() < LOGTO_PAGE_SIZE;
            hooks.extend(items);
            if hooks.len() >= MAX_HOOKS {
                hooks.truncate(MAX_HOOKS);
                return Ok((hooks, true));
            }
            if last {
                break;
            }
        }
        Ok((hooks, false))
    }

    /// The [`identity`] of every hook this product holds, to import each Logto hook once.
    async fn existing(&self, http: &reqwest::Client) -> Result<HashSet<String>, ImportError> {
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("api/hooks?page_size=100&cursor={c}"),
                None => "api/hooks?page_size=100".to_string(),
            };
            let r = self.send(http, reqwest::Method::GET, &path, None).await?;
            let next = r
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|l| l.to_str().ok())
                .and_then(next_cursor);
            let hooks = checked("GET /api/hooks", r).await?;
            for h in hooks.as_array().into_iter().flatten() {
                seen.insert(identity(h));
                let mut keyless = h.clone();
                if let Some(o) = keyless.as_object_mut() {
                    o.remove("signingKey");
                }
                seen.insert(identity(&keyless));
            }
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(seen),
            }
        }
    }

    async fn send(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, ImportError> {
        let url = self
            .target_url
            .join(path)
            .map_err(|e| ImportError::Request {
                what: "the target URL".into(),
                reason: e.to_string(),
            })?;
        let what = format!("{method} {url}");
        let mut req = http.request(method, url).bearer_auth(&self.admin_token);
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        req.send().await.map_err(|e| request_error(&what, e))
    }
}

/// A Logto hook as this product's create body: name, events and the legacy event, URL,
/// headers, retries, enabled and the signing key (when it has one: old Logto hooks may not);
/// and the custom headers left out because sending them would break the request.
pub fn translate(hook: &Value) -> (Value, Vec<String>) {
    let mut body = Map::new();
    if let Some(name) = hook["name"].as_str() {
        body.insert("name".into(), name.into());
    }
    if let Some(events) = hook["events"].as_array().filter(|e| !e.is_empty()) {
        body.insert("events".into(), Value::Array(events.clone()));
    }
    if !hook["event"].is_null() {
        body.insert("event".into(), hook["event"].clone());
    }
    let mut config = Map::new();
    config.insert("url".into(), hook["config"]["url"].clone());
    let mut dropped = Vec::new();
    if let Some(Value::Object(headers)) = hook["config"].get("headers") {
        let mut kept = Map::new();
        for (name, value) in headers {
            if is_reserved_header(&name.to_ascii_lowercase()) {
                dropped.push(name.clone());
            } else {
                kept.insert(name.clone(), value.clone());
            }
        }
        config.insert("headers".into(), Value::Object(kept));
    } else if let Some(v) = hook["config"].get("headers").filter(|v| !v.is_null()) {
        config.insert("headers".into(), v.clone());
    }
    if let Some(v) = hook["config"].get("retries").filter(|v| !v.is_null()) {
        config.insert("retries".into(), v.clone());
    }
    body.insert("config".into(), Value::Object(config));
    if let Some(enabled) = hook["enabled"].as_bool() {
        body.insert("enabled".into(), enabled.into());
    }
    if let Some(key) = hook["signingKey"].as_str().filter(|k| !k.is_empty()) {
        body.insert("signingKey".into(), key.into());
    }
    (Value::Object(body), dropped)
}

/// What makes an imported hook the same as one held: its URL (normalised) and signing key,
/// or, for a Logto hook without a key (one was generated here), its URL and events.
fn identity(hook: &Value) -> String {
    // Compared normalised: `https://X.com:443` is `https://x.com/`.
    let written = hook["config"]["url"].as_str().unwrap_or_default();
    let url = url::Url::parse(written).map_or_else(|_| written.to_string(), String::from);
    match hook["signingKey"].as_str().filter(|k| !k.is_empty()) {
        Some(key) => format!("key\n{url}\n{key}"),
        None => {
            let listed = match hook.get("events").filter(|e| !e.is_null()) {
                Some(Value::Array(events)) => events.clone(),
                _ => vec![hook["event"].clone()],
            };
            // Once each, as stored here.
            let mut events = Vec::new();
            for e in listed {
                if !events.contains(&e) {
                    events.push(e);
                }
            }
            let events = Value::Array(events);
            format!("events\n{url}\n{events}")
        }
    }
}

/// The `cursor` of a `Link: <…?cursor=…>; rel="next"` header.
fn next_cursor(link: &str) -> Option<String> {
    let target = link
        .split(';')
        .next()?
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let url = url::Url::parse(target).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.into_owned())
}

fn request_error(what: &str, e: reqwest::Error) -> ImportError {
    ImportError::Request {
        what: what.to_string(),
        reason: e.without_url().to_string(),
    }
}

async fn checked(what: &str, r: reqwest::Response) -> Result<Value, ImportError> {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(ImportError::Status {
            what: what.to_string(),
            status,
            body: text.chars().take(300).collect(),
        });
    }
    serde_json::from_str(&text).map_err(|e| ImportError::Request {
        what: what.to_string(),
        reason: format!("not JSON: {e}"),
    })
}

/// The import's outcome, one line per hook (no key, no token).
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    for hook in &report.imported {
        let key = if hook.kept_key {
            "signing key kept"
        } else {
            "new signing key: update its receivers"
        };
        out.push_str(&format!(
            "imported {} as {} ({key})\n",
            hook.logto_id, hook.id
        ));
        if !hook.dropped_headers.is_empty() {
            out.push_str(&format!(
                "  left out header {} of {}: sending it would break the request\n",
                hook.dropped_headers.join(", "),
                hook.logto_id
            ));
        }
    }
    for (from, why) in &report.skipped {
        out.push_str(&format!("skipped {from}: {why}\n"));
    }
    if report.capped {
        out.push_str(&format!(
            "stopped after {MAX_HOOKS} hooks; run again to continue\n"
        ));
    }
    out.push_str(&format!(
        "{} imported, {} skipped\n",
        report.imported.len(),
        report.skipped.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn logto_hooks_become_create_bodies() {
        let modern = json!({"tenantId": "t", "id": "h1", "name": "crm", "event": null,
            "events": ["PostRegister", "User.Created"],
            "config": {"url": "https://crm.example.com/in", "headers": {"x-k": "v"}, "retries": 3},
            "signingKey": "k9Qz2Lw7Xv4Rt8Yp1Mn6Bc3Hd5Fg0Ja", "enabled": false, "createdAt": 1});
        assert_eq!(
            translate(&modern),
            (
                json!({"name": "crm", "events": ["PostRegister", "User.Created"],
                "config": {"url": "https://crm.example.com/in", "headers": {"x-k": "v"}, "retries": 3},
                "enabled": false, "signingKey": "k9Qz2Lw7Xv4Rt8Yp1Mn6Bc3Hd5Fg0Ja"}),
                vec![]
            )
        );
        let legacy = json!({"id": "h2", "name": "", "event": "PostSignIn", "events": [],
            "config": {"url": "https://a.example.com", "headers": {"Content-Type": "application/json; charset=utf-8", "Connection": "close"}},
            "signingKey": "", "enabled": true});
        assert_eq!(
            translate(&legacy),
            (
                json!({"name": "", "event": "PostSignIn", "config": {"url": "https://a.example.com",
                "headers": {"Content-Type": "application/json; charset=utf-8"}}, "enabled": true}),
                vec!["Connection".to_string()]
            )
        );
        assert_eq!(
            next_cursor(
                r#"<http://127.0.0.1:3000/api/hooks?page_size=100&cursor=abc>; rel="next""#
            ),
            Some("abc".into())
        );
    }
}
