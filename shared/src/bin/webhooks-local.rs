//! `cargo run`: the local dev server (API, sender loop, embedded store and queue).
//! `webhooks-local import-logto --url URL --token TOKEN`: copies a Logto tenant's hooks.

use webhooks::local::{LocalConfig, LocalServer};
use webhooks::logto_import::{Import, summary};

const IMPORT_USAGE: &str = "usage: webhooks-local import-logto --url LOGTO_URL --token LOGTO_TOKEN \
[--to URL (default http://$WEBHOOKS_BIND or http://127.0.0.1:3000)] \
[--admin-token TOKEN (default $WEBHOOKS_ADMIN_TOKEN)]";

/// Runs the import; the process's exit code.
async fn import_logto(args: &[String]) -> i32 {
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

#[tokio::main]
async fn main() {
    webhooks::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("import-logto") {
        std::process::exit(import_logto(&args[1..]).await);
    }
    let (config, generated) = match LocalConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            std::process::exit(2);
        }
    };
    let allowed: Vec<String> = config
        .settings
        .address_policy
        .allowed()
        .iter()
        .map(ToString::to_string)
        .collect();
    let server = match LocalServer::start(config.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("could not start: {e}");
            std::process::exit(1);
        }
    };
    // Generated tokens are printed once so a newcomer can use them; set the variables to choose your own.
    for name in &generated {
        let value = if *name == "WEBHOOKS_ADMIN_TOKEN" {
            &config.admin_tokens
        } else {
            &config.ingest_tokens
        };
        println!("{name}={value}  (generated; set {name} to choose it)");
    }
    if allowed.is_empty() {
        println!("hooks may reach public addresses only");
    } else {
        println!(
            "hooks may also reach {} (WEBHOOKS_ALLOWED_CIDRS; set it empty to allow nothing extra)",
            allowed.join(", ")
        );
    }
    match &config.data_dir {
        Some(dir) => println!(
            "data persists in {} (WEBHOOKS_DATA_DIR; :memory: keeps nothing)",
            dir.join(webhooks::adapters::sqlite::FILE_NAME).display()
        ),
        None => println!("data is kept in memory only (WEBHOOKS_DATA_DIR=:memory:)"),
    }
    if let Some(endpoint) = &config.operational {
        // Without its query, which may carry a credential.
        let mut shown = endpoint.url.as_url().clone();
        shown.set_query(None);
        println!("operational notices go to {shown} (WEBHOOKS_OPERATIONAL_URL)");
    }
    println!("listening on http://{}", server.addr);
    println!(
        "console at http://{}/console/ (paste an admin token)",
        server.addr
    );
    let _ = tokio::signal::ctrl_c().await;
    println!("stopping");
    server.stop().await;
}
