//! The operator console's files as the dev server serves them: the address, the security
//! headers, and the rules that make it safe by construction (no inline script, nothing from
//! the API parsed as HTML, the token in sessionStorage only).

use crate::support::memory_router;
use axum::body::Body;
use http::{Method, Request};
use webhooks::api::console::{CONTENT_SECURITY_POLICY, FILES};

async fn get(router: &axum::Router, path: &str) -> crate::support::Answer {
    let req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    crate::support::send(router, req).await
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy_and_no_token() {
    let (router, _, _) = memory_router();
    let bare = get(&router, "/console").await;
    let r = get(&router, "/console/").await;
    assert_eq!(bare.text(), r.text(), "either address serves the page");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        r.headers["content-security-policy"],
        CONTENT_SECURITY_POLICY
    );
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["x-frame-options"], "DENY");
    let csp = CONTENT_SECURITY_POLICY;
    for directive in [
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(directive), "{directive}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert!(
        r.text()
            .contains(r#"<script type="module" src="app.js"></script>"#)
    );

    for (name, content_type, contents) in FILES {
        let r = get(&router, &format!("/console/{name}")).await;
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.headers["content-type"], *content_type, "{name}");
        assert_eq!(r.text(), *contents, "{name}");
    }
    let r = get(&router, "/console/secrets.json").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body_json()["code"], "route.not_found");
    let r = Request::builder()
        .method(Method::POST)
        .uri("/console/")
        .body(Body::empty())
        .unwrap();
    assert_eq!(crate::support::send(&router, r).await.status, 405);
    // The API behind it still wants its token.
    assert_eq!(get(&router, "/api/hooks").await.status, 401);
}

#[test]
fn the_console_renders_text_only_and_keeps_the_token_in_the_tab() {
    for (name, _, contents) in FILES {
        // Every script is a file of the console; no handler or style is inline.
        let lower = contents.to_ascii_lowercase();
        if name.ends_with(".html") {
            for tag in lower.match_indices("<script").map(|(i, _)| &lower[i..]) {
                let tag = &tag[..tag.find('>').unwrap()];
                assert!(tag.contains(" src="), "an inline script in {name}");
            }
            for attribute in [
                " onclick=",
                " onload=",
                " onerror=",
                " style=",
                "javascript:",
            ] {
                assert!(!lower.contains(attribute), "{attribute} in {name}");
            }
        }
        if name.ends_with(".js") {
            // Nothing is parsed as HTML or evaluated; no other storage holds the token.
            for sink in [
                "innerhtml",
                "outerhtml",
                "insertadjacenthtml",
                "document.write",
                "eval(",
                "new function",
                "localstorage",
                "document.cookie",
                "srcdoc",
            ] {
                assert!(!lower.contains(sink), "{sink} in {name}");
            }
        }
    }
    let api = FILES.iter().find(|(n, _, _)| *n == "api.js").unwrap().2;
    assert!(api.contains("sessionStorage"));
    assert!(api.contains("credentials: 'omit'"));
}

/// An executable on PATH (the test command installs Debian's chromium and chromedriver).
fn on_path(name: &str) -> String {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{name} is not installed; scripts/test installs it"))
        .display()
        .to_string()
}

#[tokio::test]
async fn an_operator_uses_the_console_in_headless_chromium() {
    use webhooks_tests::dev_server::{DevServer, dev_server_binary};
    use webhooks_tests::free_port;
    use webhooks_tests::receiver::Receiver;
    const ADMIN: &str = "console-admin-token-3f9a";
    const INGEST: &str = "console-ingest-token-7c1e";
    let binary = tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap();
    let receiver = Receiver::start(&[]).await;
    // An endpoint whose answer is a payload: the test button shows it as text.
    let xss = {
        let app = axum::Router::new().fallback(|| async {
            (
                http::StatusCode::INTERNAL_SERVER_ERROR,
                r#"<script>window.__pwned = 1</script>"><img src=x onerror="window.__pwned = 1">"#,
            )
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        format!("http://{addr}/answer")
    };
    const HEADER_SECRET: &str = "HeaderSecret-Console-1";
    let mut server = DevServer::start_on(
        &binary,
        free_port(),
        &[
            ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
            ("WEBHOOKS_INGEST_TOKEN", INGEST),
            ("WEBHOOKS_DATA_DIR", ":memory:"),
        ],
    );
    server.ready().await;
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/console");
    std::fs::create_dir_all(shots).unwrap();
    let args = serde_json::json!({
        "base": server.base,
        "admin": ADMIN,
        "ingest": INGEST,
        "receiver": receiver.url("/console"),
        "xss": xss,
        "headerSecret": HEADER_SECRET,
        "shots": shots,
        "chromium": on_path("chromium"),
        "chromedriver": on_path("chromedriver"),
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/console/drive.py");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(webhooks_tests::verifiers::python())
            .arg(script)
            .arg(args.to_string())
            .env("SE_OFFLINE", "true")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();

    assert!(
        seen["refused"]
            .as_str()
            .unwrap()
            .contains("not an admin token"),
        "{seen}"
    );
    assert_eq!(seen["stored"], 1, "the token is in sessionStorage");
    assert_eq!(seen["cookies"], serde_json::json!([]), "and in no cookie");
    assert!(seen["hookId"].as_str().unwrap().starts_with("hook_"));
    // The hook's name (a payload) and the delivered body (script) show as text, run nothing.
    let list = seen["listText"].as_str().unwrap();
    assert!(
        list.contains(r#""><img src=x onerror="window.__pwned = 1">"#),
        "{list}"
    );
    assert!(list.contains("enabled"), "{list}");
    assert_eq!(seen["firstPage"].as_array().unwrap().len(), 20, "{seen}");
    assert_eq!(seen["secondPage"].as_array().unwrap().len(), 5, "{seen}");
    assert_eq!(seen["strayText"], serde_json::json!([]), "{seen}");
    assert_eq!(
        seen["errorsOnly"].as_array().unwrap().len(),
        1,
        "the Error filter leaves only the empty row: {seen}"
    );
    assert_eq!(
        seen["oldWindow"].as_array().unwrap().len(),
        1,
        "a window of 2020 holds nothing: {seen}"
    );
    let detail = seen["detail"].as_str().unwrap();
    assert!(
        detail.contains("<script>window.__pwned = 1</script>"),
        "{detail}"
    );
    assert!(
        seen["resent"].as_str().unwrap().starts_with("Re-sent"),
        "{seen}"
    );
    assert!(
        seen["recovery"]
            .as_str()
            .unwrap()
            .starts_with("done: 0 re-sent"),
        "{seen}"
    );
    assert_eq!(
        seen["keyHidden"], "••••••••",
        "the key is hidden until revealed"
    );
    let (key, rotated) = (
        seen["key"].as_str().unwrap(),
        seen["rotatedKey"].as_str().unwrap(),
    );
    assert!(key.starts_with("whsec_") && rotated.starts_with("whsec_") && key != rotated);
    let answer = seen["testAnswer"].as_str().unwrap();
    assert!(answer.contains("Status 500"), "{answer}");
    assert!(
        answer.contains("<script>window.__pwned = 1</script>"),
        "{answer}"
    );
    assert_eq!(seen["checkOutcome"], "FAIL", "{seen}");
    let rows = &seen["checkRows"];
    assert_eq!(rows.as_object().unwrap().len(), 13, "{seen}");
    assert_eq!(rows["signed"], "pass", "{seen}");
    assert_eq!(rows["wrong-key"], "fail", "{seen}");
    assert!(seen["charts"].as_u64().unwrap() >= 3, "{seen}");
    assert!(seen["bars"].as_u64().unwrap() > 0, "{seen}");
    let table = seen["hookTable"].as_str().unwrap();
    assert!(table.contains("5/s") && table.contains("X-Env"), "{table}");
    assert_eq!(seen["editSource"], false, "a header value in the edit form");
    assert_eq!(seen["pageSource"], false, "a header value in the page");
    let hook: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/api/hooks/{}",
            server.base,
            seen["hookId"].as_str().unwrap()
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        hook["config"]["headers"]["X-Env"], HEADER_SECRET,
        "kept by the second save"
    );
    assert_eq!(hook["config"]["rateLimit"], 5);
    assert_eq!(hook["signingKey"], rotated);
    // Read right after each payload was rendered, before any reload or rename.
    let probes = seen["probes"].as_object().expect("probes were taken");
    for label in ["hook page", "hook list", "delivery detail", "test answer"] {
        let probe = &probes[label];
        assert_eq!(
            probe["pwned"],
            serde_json::Value::Null,
            "a payload ran on the {label}"
        );
        assert_eq!(
            probe["injected"], 0,
            "a payload became an element on the {label}"
        );
    }
    assert_eq!(seen["pwned"], serde_json::Value::Null, "a payload ran");
    assert_eq!(seen["images"], 0, "a payload became an element");
    let scripts: Vec<&str> = seen["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(scripts, [format!("{}/console/app.js", server.base)]);
    let console = seen["console"].as_array().unwrap();
    assert!(
        console
            .iter()
            .all(|m| !m.as_str().unwrap().contains("Content Security Policy")),
        "{console:?}"
    );
    for page in [
        "sign-in",
        "new-hook",
        "hooks",
        "delivery-log",
        "delivery",
        "hook",
        "health",
        "check",
        "edit",
    ] {
        let shot = std::path::Path::new(shots).join(format!("{page}.png"));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1_000),
            "{}",
            shot.display()
        );
    }
    let output = server.stop();
    assert!(!output.contains(ADMIN), "the admin token is in the output");
}
