//! `webhooks-local check-receiver URL --secret whsec_… [--logto-key K] [--json]`: runs the
//! receiver check against any URL, without a server: the same requests and rules as
//! `POST /api/hooks/{id}/check`, the same client and address policy as the dev server's
//! deliveries (`WEBHOOKS_ALLOWED_CIDRS`, loopback by default). Prints a table (or the report
//! as JSON) and exits 1 when a check failed, 0 otherwise (warnings included), 2 on bad usage.

use webhooks::app::receiver_check::{Target, run};
use webhooks::config::{Defaults, Settings};
use webhooks::domain::hook::HookUrl;
use webhooks::domain::receiver_check::Outcome;
use webhooks::domain::signing::SigningKey;
use webhooks::net::client::DeliveryClient;

const USAGE: &str = "usage: webhooks-local check-receiver URL --secret SIGNING_KEY \
[--logto-key KEY (signs logto-signature-sha-256; default: the secret)] [--json]";

/// Runs the check with the command line after `check-receiver`; the process's exit code.
pub async fn run_command(args: &[String]) -> i32 {
    let mut url = None;
    let mut secret = None;
    let mut logto_key = None;
    let mut json = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--secret" => secret = it.next().cloned(),
            "--logto-key" => logto_key = it.next().cloned(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            other if !other.starts_with("--") && url.is_none() => url = Some(other.to_string()),
            _ => {
                eprintln!("{USAGE}");
                return 2;
            }
        }
    }
    let (Some(url), Some(secret)) = (url, secret) else {
        eprintln!("{USAGE}");
        return 2;
    };
    let settings = match Settings::from_env(Defaults::local()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return 2;
        }
    };
    let url = match HookUrl::parse(&url, settings.url_policy) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("URL: {e}");
            return 2;
        }
    };
    // The errors name the rule broken, never the key.
    let secret = match SigningKey::import(&secret) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("--secret: {e}");
            return 2;
        }
    };
    let logto_key = match logto_key.as_deref().map(SigningKey::import).transpose() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("--logto-key: {e}");
            return 2;
        }
    };
    let client = DeliveryClient::from_settings(&settings);
    let target = Target::for_url(url, secret, logto_key, settings.timeouts.total);
    let report = run(&client, &target).await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report serializes")
        );
    } else {
        print!("{}", report.table());
    }
    i32::from(report.outcome == Outcome::Fail)
}
