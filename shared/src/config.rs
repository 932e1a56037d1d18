//! Configuration from the environment: the same variable names for the local dev server and
//! the Lambda functions, parsed once at start so a bad value stops the process with a clear line.

use crate::domain::duration::parse_duration;
use crate::domain::health::HealthPolicy;
use crate::domain::hook::{HookUrl, UrlPolicy};
use crate::domain::retry::RetrySchedule;
use crate::net::address_policy::AddressPolicy;
use crate::net::client::DeliveryClient;
use crate::net::client::Timeouts;
use crate::net::lookup::SystemLookup;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("{name}: {message}")]
pub struct ConfigError {
    pub name: &'static str,
    pub message: String,
}

/// Settings shared by every entry point.
#[derive(Debug, Clone)]
pub struct Settings {
    pub retry_schedule: RetrySchedule,
    pub address_policy: AddressPolicy,
    pub url_policy: UrlPolicy,
    pub retention: Duration,
    pub timeouts: Timeouts,
    /// When a failing hook is disabled.
    pub health: HealthPolicy,
    /// Where operational notices go (`WEBHOOKS_OPERATIONAL_URL`); its key is read apart, as
    /// a secret.
    pub operational_url: Option<HookUrl>,
    /// Whether events Logto ships behind its dev-feature flag are accepted
    /// (`WEBHOOKS_PREVIEW_EVENTS`).
    pub preview_events: bool,
    /// The deliveries' `User-Agent` (`WEBHOOKS_USER_AGENT`; `webhooks/<version>` when unset).
    pub user_agent: http::HeaderValue,
}

/// What differs between deployments when a variable is unset.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub address_policy: AddressPolicy,
    pub allow_http: bool,
}

impl Defaults {
    /// AWS: https only, public addresses only.
    pub fn aws() -> Self {
        Self {
            address_policy: AddressPolicy::default(),
            allow_http: false,
        }
    }

    /// Local dev server: http allowed, loopback allowed.
    pub fn local() -> Self {
        Self {
            address_policy: AddressPolicy::loopback(),
            allow_http: true,
        }
    }
}

pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The delivery client as the settings configure it (address and URL policies, timeouts).
impl DeliveryClient {
    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(
            settings.address_policy.clone(),
            settings.url_policy,
            settings.timeouts,
        )
        .with_user_agent(settings.user_agent.clone())
    }

    /// Like [`DeliveryClient::from_settings`], but the HTTP client (its TLS roots above all)
    /// is built by the first attempt: for entry points where most requests deliver nothing.
    pub fn from_settings_on_first_use(settings: &Settings) -> Self {
        Self::deferred(
            settings.address_policy.clone(),
            settings.url_policy,
            settings.timeouts,
            Arc::new(SystemLookup),
        )
        .with_user_agent(settings.user_agent.clone())
    }
}

impl Settings {
    pub fn from_env(defaults: Defaults) -> Result<Self, ConfigError> {
        Self::from_lookup(defaults, var)
    }

    pub fn from_lookup(
        defaults: Defaults,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let err = |name: &'static str, message: String| ConfigError { name, message };
        let retry_schedule = match get("WEBHOOKS_RETRY_SCHEDULE") {
            Some(s) if !s.trim().is_empty() => RetrySchedule::parse(&s)
                .map_err(|e| err("WEBHOOKS_RETRY_SCHEDULE", e.to_string()))?,
            _ => RetrySchedule::default(),
        };
        let address_policy = match get("WEBHOOKS_ALLOWED_CIDRS") {
            Some(s) => AddressPolicy::parse_allowlist(&s)
                .map_err(|e| err("WEBHOOKS_ALLOWED_CIDRS", e.to_string()))?,
            None => defaults.address_policy,
        };
        let flag = |name: &'static str, default: bool| match get(name).as_deref().map(str::trim) {
            None | Some("") => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(_) => Err(err(name, "must be true or false".into())),
        };
        let allow_http = flag("WEBHOOKS_ALLOW_HTTP", defaults.allow_http)?;
        let preview_events = flag(crate::domain::catalog::PREVIEW_SETTING, false)?;
        let retention_days = match get("WEBHOOKS_RETENTION_DAYS") {
            Some(s) if !s.trim().is_empty() => s
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| {
                    err(
                        "WEBHOOKS_RETENTION_DAYS",
                        "must be a number of days from 1 to 3650".into(),
                    )
                })?,
            _ => 14,
        };
        let mut health = HealthPolicy::default();
        if let Some(s) = get("WEBHOOKS_DISABLE_AFTER").filter(|s| !s.trim().is_empty()) {
            health.disable_after = parse_duration(&s).ok_or_else(|| {
                err(
                    "WEBHOOKS_DISABLE_AFTER",
                    "must be a duration such as 90s, 30m, 12h or 5d (up to 3650d)".into(),
                )
            })?;
        }
        if let Some(s) = get("WEBHOOKS_DISABLE_MIN_ATTEMPTS").filter(|s| !s.trim().is_empty()) {
            health.min_attempts = s
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| {
                    err(
                        "WEBHOOKS_DISABLE_MIN_ATTEMPTS",
                        "must be a count from 1 to 1000000".into(),
                    )
                })?;
        }
        let url_policy = UrlPolicy { allow_http };
        let operational_url = match get("WEBHOOKS_OPERATIONAL_URL").filter(|s| !s.trim().is_empty())
        {
            None => None,
            Some(s) => {
                let url = HookUrl::parse(s.trim(), url_policy)
                    .map_err(|e| err("WEBHOOKS_OPERATIONAL_URL", e.message))?;
                address_policy.check_url(url.as_url()).map_err(|_| {
                    err(
                        "WEBHOOKS_OPERATIONAL_URL",
                        "destination address is not allowed".into(),
                    )
                })?;
                Some(url)
            }
        };
        let user_agent = match get("WEBHOOKS_USER_AGENT") {
            Some(s) if !s.trim().is_empty() => {
                let s = s.trim();
                let visible = s.len() <= 256 && s.bytes().all(|b| (0x20..0x7f).contains(&b));
                match http::HeaderValue::from_str(s) {
                    Ok(v) if visible => v,
                    _ => {
                        return Err(err(
                            "WEBHOOKS_USER_AGENT",
                            "must be at most 256 printable ASCII characters".into(),
                        ));
                    }
                }
            }
            _ => http::HeaderValue::from_static(crate::net::client::USER_AGENT),
        };
        Ok(Self {
            user_agent,
            retry_schedule,
            address_policy,
            url_policy,
            retention: Duration::from_secs(retention_days * 86_400),
            timeouts: Timeouts::default(),
            health,
            operational_url,
            preview_events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)], defaults: Defaults) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(defaults, |k| map.get(k).cloned())
    }

    #[test]
    fn the_disable_policy_has_defaults_and_refuses_bad_values() {
        let s = settings(&[], Defaults::aws()).unwrap();
        assert_eq!(s.health, HealthPolicy::default());
        let s = settings(
            &[
                ("WEBHOOKS_DISABLE_AFTER", "3s"),
                ("WEBHOOKS_DISABLE_MIN_ATTEMPTS", "4"),
            ],
            Defaults::aws(),
        )
        .unwrap();
        assert_eq!(s.health.disable_after, Duration::from_secs(3));
        assert_eq!(s.health.min_attempts, 4);
        for (name, value) in [
            ("WEBHOOKS_DISABLE_AFTER", "5"),
            ("WEBHOOKS_DISABLE_AFTER", "0d"),
            ("WEBHOOKS_DISABLE_MIN_ATTEMPTS", "0"),
            ("WEBHOOKS_DISABLE_MIN_ATTEMPTS", "many"),
        ] {
            let e = settings(&[(name, value)], Defaults::aws()).unwrap_err();
            assert_eq!(e.name, name);
        }
    }

    #[test]
    fn the_operational_url_follows_the_url_and_address_policies() {
        assert!(
            settings(&[], Defaults::aws())
                .unwrap()
                .operational_url
                .is_none()
        );
        let s = settings(
            &[("WEBHOOKS_OPERATIONAL_URL", "http://127.0.0.1:9/ops")],
            Defaults::local(),
        )
        .unwrap();
        assert_eq!(
            s.operational_url.unwrap().as_str(),
            "http://127.0.0.1:9/ops"
        );
        for (url, defaults) in [
            ("http://ops.example.com/n", Defaults::aws()),
            ("https://127.0.0.1/n", Defaults::aws()),
            ("https://10.1.2.3/n", Defaults::local()),
            ("not a url", Defaults::local()),
        ] {
            let e = settings(&[("WEBHOOKS_OPERATIONAL_URL", url)], defaults).unwrap_err();
            assert_eq!(e.name, "WEBHOOKS_OPERATIONAL_URL", "{url}");
        }
    }

    #[test]
    fn defaults_differ_between_local_and_aws() {
        let local = settings(&[], Defaults::local()).unwrap();
        assert!(local.url_policy.allow_http);
        assert!(local.address_policy.permits("127.0.0.1".parse().unwrap()));
        let aws = settings(&[], Defaults::aws()).unwrap();
        assert!(!aws.url_policy.allow_http);
        assert!(!aws.address_policy.permits("127.0.0.1".parse().unwrap()));
        assert_eq!(aws.retry_schedule.max_attempts(), 8);
        assert_eq!(aws.retention, Duration::from_secs(14 * 86_400));
    }

    #[test]
    fn empty_allowlist_allows_nothing_extra() {
        let s = settings(&[("WEBHOOKS_ALLOWED_CIDRS", "")], Defaults::local()).unwrap();
        assert!(!s.address_policy.permits("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("WEBHOOKS_RETRY_SCHEDULE", "soon"),
            ("WEBHOOKS_ALLOWED_CIDRS", "10.0.0.0/99"),
            ("WEBHOOKS_ALLOW_HTTP", "maybe"),
            ("WEBHOOKS_PREVIEW_EVENTS", "yes"),
            ("WEBHOOKS_RETENTION_DAYS", "0"),
        ] {
            let e = settings(&[(name, value)], Defaults::aws()).unwrap_err();
            assert_eq!(e.name, name);
        }
        let s = settings(&[("WEBHOOKS_RETRY_SCHEDULE", "1s,2s")], Defaults::aws()).unwrap();
        assert_eq!(s.retry_schedule.max_attempts(), 3);
    }

    #[test]
    fn the_user_agent_is_set_or_refused() {
        let s = Settings::from_lookup(Defaults::aws(), |_| None).unwrap();
        assert!(s.user_agent.to_str().unwrap().starts_with("webhooks/"));
        let logto = |v: &'static str| {
            move |name: &str| (name == "WEBHOOKS_USER_AGENT").then(|| v.to_string())
        };
        let s = Settings::from_lookup(Defaults::aws(), logto("Logto (https://logto.io/)")).unwrap();
        assert_eq!(s.user_agent, "Logto (https://logto.io/)");
        for bad in ["caf\u{e9}", "a\tb"] {
            let e = Settings::from_lookup(Defaults::aws(), logto(bad)).unwrap_err();
            assert_eq!(e.name, "WEBHOOKS_USER_AGENT");
        }
    }
}
