//! Operational notices: the operator hears when a hook starts failing, is disabled, or
//! recovers. They go to one endpoint the deployment configures (never a stored hook) through
//! the same queue, retries and log as any delivery, and optionally to an SNS topic. What a
//! notice is and where notices go; sending them is the health use case's
//! ([`crate::app::health::Health::notify`]).

use crate::domain::catalog::EventName;
use crate::domain::clock::iso;
use crate::domain::delivery::{Delivery, DeliveryId, DeliveryStatus};
use crate::domain::event::EventId;
use crate::domain::hook::{CustomHeaders, Hook, HookId, HookUrl};
use crate::domain::signing::SigningKey;
use async_trait::async_trait;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The hook id the operational endpoint's deliveries are logged under. Generated hook ids
/// start with `hook_`, so no stored hook can take it.
pub const OPERATIONAL_HOOK_ID: &str = "operational";

pub fn operational_hook_id() -> HookId {
    HookId::parse(OPERATIONAL_HOOK_ID).expect("a valid hook id")
}

/// The operator's endpoint for notices and the key its requests are signed with.
#[derive(Debug, Clone)]
pub struct OperationalEndpoint {
    pub url: HookUrl,
    pub key: SigningKey,
}

impl OperationalEndpoint {
    /// A Standard Webhooks key: `whsec_` and the base64 of 24 to 64 random bytes. The error
    /// never repeats the value.
    pub fn parse_key(value: &str) -> Result<SigningKey, String> {
        use base64::Engine;
        let value = value.trim();
        let bytes = value
            .strip_prefix("whsec_")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .ok_or("must be a whsec_ key (whsec_ and base64)")?;
        if !(24..=64).contains(&bytes.len()) {
            return Err("must hold 24 to 64 bytes after whsec_".into());
        }
        SigningKey::import(value).map_err(|e| e.to_string())
    }

    /// The endpoint as the sender handles a hook: enabled, subscribed to nothing, signed with
    /// the operator's key.
    pub fn hook(&self) -> Hook {
        Hook {
            id: operational_hook_id(),
            name: "operational notices".into(),
            events: Vec::new(),
            legacy_event: None,
            events_from_legacy: false,
            url: self.url.clone(),
            headers: CustomHeaders::default(),
            signing_key: self.key.clone(),
            retired_keys: Vec::new(),
            enabled: true,
            created_at: 0,
            updated_at: 0,
            disabled_reason: None,
            disabled_at: None,
            disable_after: None,
            rate_limit: None,
            retries: None,
            mode: crate::domain::hook::HookMode::Async,
            timeout_ms: None,
        }
    }
}

/// What a notice says about one hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `Hook.FailingSince`, `Hook.Disabled` or `Hook.Recovered`.
    pub event: EventName,
    pub hook_id: HookId,
    pub hook_name: Option<String>,
    /// Unix milliseconds of the change.
    pub at: i64,
    pub failing_since: Option<i64>,
    pub failed_attempts: u64,
    /// Why the hook was disabled.
    pub reason: Option<String>,
}

impl Notice {
    /// A notice about `hook` (its name when it is still stored) in failure state `health`.
    pub fn of(
        event: EventName,
        hook: &HookId,
        stored: Option<&Hook>,
        health: &crate::domain::health::HookHealth,
        at: i64,
    ) -> Self {
        Self {
            event,
            hook_id: hook.clone(),
            hook_name: stored.map(|h| h.name.clone()),
            at,
            failing_since: health.failing_since,
            failed_attempts: health.failed_attempts,
            reason: None,
        }
    }

    /// The delivered body: `{event, createdAt, data: {hookId, hookName, failingSince,
    /// failedAttempts, reason?}}`, times as `Date.toISOString()` writes them.
    pub fn body(&self) -> String {
        let mut data = json!({
            "hookId": self.hook_id.as_str(),
            "hookName": self.hook_name,
            "failingSince": self.failing_since.map(iso),
            "failedAttempts": self.failed_attempts,
        });
        if let Some(reason) = &self.reason {
            data["reason"] = reason.as_str().into();
        }
        json!({
            "event": self.event.as_str(),
            "createdAt": iso(self.at),
            "data": data,
        })
        .to_string()
    }

    /// The pending delivery of this notice to the operational endpoint, kept `retention`.
    pub fn delivery(&self, now_ms: i64, retention: Duration) -> Delivery {
        Delivery {
            hook_id: operational_hook_id(),
            id: DeliveryId::generate(),
            event_id: EventId::generate(),
            event: self.event,
            body: self.body(),
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            next_attempt_at: Some(now_ms),
            reason: None,
            event_created_at: self.at,
            created_at: now_ms,
            expires_at: now_ms / 1000 + retention.as_secs() as i64,
            sync: false,
        }
    }
}

/// A topic notices are also published to (SNS on AWS).
#[async_trait]
pub trait NoticeTopic: Send + Sync {
    /// Publishes one notice body; the error says why, without the body.
    async fn publish(&self, event: EventName, body: &str) -> Result<(), String>;
}

/// Where notices go; nothing is sent when both are unset.
#[derive(Clone, Default)]
pub struct Notices {
    pub endpoint: Option<OperationalEndpoint>,
    pub topic: Option<Arc<dyn NoticeTopic>>,
    /// How long a notice's delivery record is kept.
    pub retention: Duration,
}

impl Notices {
    pub fn is_empty(&self) -> bool {
        self.endpoint.is_none() && self.topic.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::hook::UrlPolicy;

    #[test]
    fn keys_must_be_standard_webhooks_secrets() {
        let key = SigningKey::generate();
        assert_eq!(
            OperationalEndpoint::parse_key(key.expose()).unwrap(),
            key,
            "a generated key is one"
        );
        for bad in [
            "whsec_",
            "whsec_not base64!",
            "whsec_c2hvcnQ=",
            "plain-logto-style-key-of-32-chars",
        ] {
            assert!(OperationalEndpoint::parse_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_notice_names_its_hook_and_times_in_iso() {
        let notice = Notice {
            event: EventName::HookDisabled,
            hook_id: HookId::parse("hook_a").unwrap(),
            hook_name: Some("crm".into()),
            at: 1_795_752_000_123,
            failing_since: Some(1_795_752_000_000),
            failed_attempts: 21,
            reason: Some("endpoint failing".into()),
        };
        let body: serde_json::Value = serde_json::from_str(&notice.body()).unwrap();
        assert_eq!(
            body,
            json!({
                "event": "Hook.Disabled",
                "createdAt": "2026-11-27T04:00:00.123Z",
                "data": {
                    "hookId": "hook_a",
                    "hookName": "crm",
                    "failingSince": "2026-11-27T04:00:00.000Z",
                    "failedAttempts": 21,
                    "reason": "endpoint failing",
                }
            })
        );
        let d = notice.delivery(1_795_752_000_200, Duration::from_secs(86_400));
        assert_eq!(d.hook_id.as_str(), OPERATIONAL_HOOK_ID);
        assert_eq!(d.event, EventName::HookDisabled);
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!(d.expires_at, 1_795_752_000 + 86_400);
        let endpoint = OperationalEndpoint {
            url: HookUrl::parse("https://ops.example.com/n", UrlPolicy { allow_http: false })
                .unwrap(),
            key: SigningKey::generate(),
        };
        let hook = endpoint.hook();
        assert!(hook.enabled && hook.events.is_empty());
        assert_eq!(hook.id, d.hook_id);
    }
}
