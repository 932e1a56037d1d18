//! `cargo run`: the local dev server (API, sender loop, embedded store and queue).
//! `webhooks-local import-logto --url URL --token TOKEN`: copies a Logto tenant's hooks.
//! `webhooks-local check-receiver URL --secret KEY [--logto-key K] [--json]`: checks a receiver.

mod check_receiver;
mod import_logto;

use webhooks::startup::local::{LocalConfig, LocalServer};

/// mimalloc rather than glibc's allocator, whose malloc and free took a fifth of the server's
/// CPU under a flood (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    webhooks::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("import-logto") {
        std::process::exit(import_logto::run(&args[1..]).await);
    }
    if args.first().map(String::as_str) == Some("check-receiver") {
        std::process::exit(check_receiver::run_command(&args[1..]).await);
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
