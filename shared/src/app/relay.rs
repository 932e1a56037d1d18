//! The durable relay for existing Logto deployments: a Logto instance points one of its own
//! webhooks at `POST /api/ingest/logto/{sourceId}`; each source is known by the signing key
//! of that webhook, so a body is accepted only with its `logto-signature-sha-256`
//! ([`LogtoSources::verify`]), then fanned out as one event ([`Relayed::accept`]) whose id
//! derives from its bytes: Logto's retries of it within 24 hours are the same event.

use super::ingest::{Accepted, Ingest, IngestError};
use crate::domain::event::{EventId, IngestBody, parse_relayed};
use crate::domain::hook::printable;
use crate::domain::json::RawJson;
use crate::domain::signing::{SigningKey, verify_logto};
use crate::metrics::{self, Unit};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// The variable (or, on AWS, the SSM parameter) listing the sources: `sourceId=signingKey`
/// pairs, comma-separated.
pub const SOURCES_VARIABLE: &str = "WEBHOOKS_LOGTO_SOURCES";

/// The Logto instances allowed to relay events, by source id.
#[derive(Clone, Default)]
pub struct LogtoSources(BTreeMap<String, SigningKey>);

impl fmt::Debug for LogtoSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl LogtoSources {
    /// Parses `id=key,id=key`; ids are 1 to 64 of `[A-Za-z0-9_-]`, keys Logto signing keys
    /// (24 to 256 printable characters). An error names the entry by position, never its key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut sources = BTreeMap::new();
        for (i, entry) in text.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let n = i + 1;
            let (id, key) = entry
                .split_once('=')
                .ok_or_else(|| format!("entry {n} is not sourceId=signingKey"))?;
            let id = id.trim();
            let valid_id = !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid_id {
                return Err(format!(
                    "entry {n}: the source id must be 1 to 64 letters, digits, _ or -"
                ));
            }
            let key =
                SigningKey::import(key.trim()).map_err(|e| format!("entry {n} ({id}): {e}"))?;
            if sources.insert(id.to_string(), key).is_some() {
                return Err(format!("entry {n}: source {id} is listed twice"));
            }
        }
        Ok(Self(sources))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `signature` (the `logto-signature-sha-256` header) signs `body` with the key of
    /// `source`; false for an unknown source.
    pub fn verifies(&self, source: &str, signature: &str, body: &[u8]) -> bool {
        self.0
            .get(source)
            .is_some_and(|key| verify_logto(key, signature, body).is_ok())
    }

    /// `body` as relayed by `source`, when `signature` signs it with the source's key; `None`
    /// (and a warning logged) for an unknown source or a bad signature.
    pub fn verify<'a>(
        &self,
        source: &'a str,
        signature: &str,
        body: &'a [u8],
    ) -> Option<Relayed<'a>> {
        if !self.verifies(source, signature, body) {
            tracing::warn!(source = %printable(source), "relayed event refused: unknown source or bad signature");
            return None;
        }
        Some(Relayed { source, body })
    }
}

/// A body a known source signed.
#[derive(Debug, Clone, Copy)]
pub struct Relayed<'a> {
    source: &'a str,
    body: &'a [u8],
}

impl Relayed<'_> {
    /// Fans the event out like any other (Logto's `hookId` dropped); the same bytes from the
    /// same source within the idempotency window get the first answer.
    /// What Logto signed is never refused for its content: fields a caller could not post are
    /// delivered as they came (counted in `RelayedUncheckedFields` and named in a warning),
    /// and an event this product does not know is accepted with no delivery (counted in
    /// `RelayedUnknownEvents`). Only a body that is not a JSON object is an error.
    pub async fn accept(&self, ingest: &Ingest) -> Result<Accepted, IngestError> {
        let id = relayed_event_id(self.source, self.body);
        let (event, unchecked) = match parse_relayed(
            self.body,
            time::OffsetDateTime::now_utc(),
            id.clone(),
        ) {
            Ok(parsed) => parsed,
            Err(e) if e.field == "event" => {
                tracing::warn!(source = %self.source, event_id = %id, reason = %e, "relayed event of no known kind: accepted, delivered to no hook");
                metrics::emit(&[("RelayedUnknownEvents", 1.0, Unit::Count)]);
                return Ok(Accepted {
                    answers: vec![RawJson::of(&json!({"id": id, "deliveries": 0}))],
                });
            }
            Err(e) => return Err(e.into()),
        };
        if !unchecked.is_empty() {
            tracing::warn!(source = %self.source, event_id = %id, fields = ?unchecked, "relayed event delivered with fields a caller could not post");
            metrics::emit(&[(
                "RelayedUncheckedFields",
                unchecked.len() as f64,
                Unit::Count,
            )]);
        }
        ingest.accept(IngestBody::Single(event), false).await
    }
}

/// The event id of a relayed body: the same bytes relayed again within the idempotency window
/// are recognised as one event (Logto sends a retry byte for byte).
pub fn relayed_event_id(source: &str, body: &[u8]) -> EventId {
    let digest = Sha256::new()
        .chain_update(source.as_bytes())
        .chain_update([0u8])
        .chain_update(body)
        .finalize();
    EventId::parse(&format!("logto_{source}_{}", &hex::encode(digest)[..40]))
        .expect("a printable id within the length limit")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::signing::logto_signature;

    const KEY: &str = "s3cr3tLogtoKey0123456789abcdefgh";

    #[test]
    fn sources_parse_and_verify_with_their_own_key() {
        let sources =
            LogtoSources::parse(&format!(" prod={KEY}, staging=another-key-of-24-chars-xx "))
                .unwrap();
        assert_eq!(sources.len(), 2);
        let body = br#"{"event":"User.Created","hookId":"h1"}"#;
        let signature = logto_signature(&SigningKey::import(KEY).unwrap(), body);
        assert!(sources.verifies("prod", &signature, body));
        assert!(!sources.verifies("staging", &signature, body));
        assert!(!sources.verifies("nope", &signature, body));
        assert!(!sources.verifies("prod", &signature, b"{}"));
        assert!(!format!("{sources:?}").contains(KEY));
        for bad in [
            "prod",
            "=key-of-twenty-four-chars-x",
            "pr od=key-of-twenty-four-chars-x",
            "prod=short",
            &format!("prod={KEY},prod={KEY}"),
        ] {
            let e = LogtoSources::parse(bad).unwrap_err();
            assert!(!e.contains(KEY) && !e.contains("short"), "{e}");
        }
        let e = LogtoSources::parse("prod=short").unwrap_err();
        assert_eq!(
            e,
            "entry 1 (prod): signing key must be at least 24 characters long"
        );
        assert!(LogtoSources::parse("").unwrap().is_empty());
    }

    #[test]
    fn the_same_bytes_are_the_same_event() {
        let a = relayed_event_id("prod", b"{\"a\":1}");
        assert_eq!(a, relayed_event_id("prod", b"{\"a\":1}"));
        assert_ne!(a, relayed_event_id("prod", b"{\"a\": 1}"));
        assert_ne!(a, relayed_event_id("staging", b"{\"a\":1}"));
        assert!(a.as_str().starts_with("logto_prod_"));
    }
}
