//! Deliveries (one per hook per event), their attempts, and the queue job that drives them.
//! A delivery's id is the `webhook-id` receivers de-duplicate on; it never changes across attempts.

use crate::domain::catalog::EventName;
use crate::domain::event::EventId;
use crate::domain::hook::HookId;
use crate::domain::ids::typed_id;
use serde::{Deserialize, Serialize};

/// Most bytes of a response body kept with an attempt.
pub const MAX_CAPTURE_BYTES: usize = 8 * 1024;
/// Most bytes of a 2xx answer's body a delivery's attempt keeps: a success needs no diagnosis,
/// and a short record keeps the write that stores it small.
pub const SUCCESS_CAPTURE_BYTES: usize = 256;

typed_id!(
    /// A ULID prefixed with `msg_`: time-sortable, and the `webhook-id` of every attempt.
    ulid DeliveryId, "msg_", "deliveryId", "is not a delivery id"
);

impl DeliveryId {
    /// The id of `event`'s delivery to `hook`, first fanned out at `at_ms`: the same inputs
    /// always give the same id, so a repeated fan-out cannot mint a second `webhook-id`.
    pub fn derive(at_ms: i64, event: &EventId, hook: &HookId) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(event.as_str().as_bytes())
            .chain_update([0u8])
            .chain_update(hook.as_str().as_bytes())
            .finalize();
        let mut random = [0u8; 16];
        random[6..].copy_from_slice(&digest[..10]);
        Self(ulid::Ulid::from_parts(
            at_ms.max(0) as u64,
            u128::from_be_bytes(random),
        ))
    }

    /// Smallest id that can be generated at `ms` (unix milliseconds).
    pub fn lowest_at(ms: i64) -> Self {
        Self(ulid::Ulid::from_parts(ms.max(0) as u64, 0))
    }

    /// Largest id that can be generated at `ms`.
    pub fn highest_at(ms: i64) -> Self {
        Self(ulid::Ulid::from_parts(ms.max(0) as u64, u128::MAX))
    }

    /// The id just before this one in listing order (`None` for the smallest).
    pub fn predecessor(&self) -> Option<Self> {
        u128::from(self.0)
            .checked_sub(1)
            .map(|n| Self(ulid::Ulid::from(n)))
    }

    pub fn created_at_ms(&self) -> i64 {
        self.0.timestamp_ms() as i64
    }

    /// One of `count` buckets, from the id's random part: ids spread evenly over them.
    pub fn bucket(&self, count: u32) -> u32 {
        (u128::from(self.0) % u128::from(count.max(1))) as u32
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryStatus {
    /// Not finished: an attempt is queued.
    Pending,
    Success,
    /// Failed for good: attempts exhausted, 410, or a blocked destination.
    Error,
    /// Never sent because the hook was deleted or disabled.
    Dropped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "Pending",
            DeliveryStatus::Success => "Success",
            DeliveryStatus::Error => "Error",
            DeliveryStatus::Dropped => "Dropped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Success, Self::Error, Self::Dropped]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Why an attempt did not get an answer, or `Http` when the answer was not 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    Timeout,
    Connect,
    Tls,
    Blocked,
    Http,
}

/// One HTTP attempt as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub number: u32,
    /// Unix milliseconds when the request started.
    pub started_at: i64,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    /// Up to [`MAX_CAPTURE_BYTES`] of the response body, lossily decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error_kind.is_none()
            && self
                .response_status
                .is_some_and(|s| (200..300).contains(&s))
    }

    /// The attempt as a delivery's log keeps it: a 2xx answer's body cut to
    /// [`SUCCESS_CAPTURE_BYTES`].
    pub fn trimmed(mut self) -> Self {
        if self.succeeded()
            && let Some(body) = &mut self.response_body
        {
            truncate_at_char(body, SUCCESS_CAPTURE_BYTES);
        }
        self
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
pub fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let at = text.floor_char_boundary(max);
        text.truncate(at);
    }
}

/// A delivery as stored: the body is fixed at ingest and sent byte-identical every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub hook_id: HookId,
    pub id: DeliveryId,
    pub event_id: EventId,
    pub event: EventName,
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    /// Unix milliseconds of the next queued attempt while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
    /// Why the delivery ended without success, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix milliseconds of the event's `createdAt`.
    pub event_created_at: i64,
    pub created_at: i64,
    /// Unix seconds after which the record may be deleted (DynamoDB TTL).
    pub expires_at: i64,
    /// A synchronous call (`POST /api/events?wait=true`): one attempt, never re-sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sync: bool,
}

impl Delivery {
    pub fn attempt_count(&self) -> u32 {
        self.attempts.len() as u32
    }

    /// When the delivery ended on a `410 Gone`, the time that answer arrived: the hook must be
    /// disabled unless it was changed after that. Derived from the recorded attempt itself, so
    /// a disable that failed or was interrupted is finished by the next copy of the job.
    pub fn gone_at(&self) -> Option<i64> {
        let last = self.attempts.last()?;
        (self.status == DeliveryStatus::Error && last.response_status == Some(410))
            .then(|| last.started_at + last.duration_ms as i64)
    }
}

/// The queue message for one attempt of one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub hook_id: HookId,
    pub delivery_id: DeliveryId,
    /// 1-based number of the attempt this job performs.
    pub attempt: u32,
    /// Unix milliseconds before which the attempt must not run.
    pub due_at: i64,
    /// Re-send a finished delivery: the sender makes it pending again first, if it still has
    /// the attempts this job expects (a recovery queues these before changing any record).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reopen: bool,
    /// The rate-limit slot (unix milliseconds) this job was deferred to: it runs then
    /// without taking another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_slot: Option<i64>,
}

/// A delivery that has no record yet, as its first job carries it: the queue message is the
/// pending delivery, and its first attempt writes the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingDelivery {
    pub event_id: EventId,
    pub event: EventName,
    /// The event's delivered fields without `hookId`; `None` when too large to carry in every
    /// job, and then stored once for the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<String>,
    pub event_created_at: i64,
    pub created_at: i64,
    pub expires_at: i64,
    /// Queued again by a fan-out that resumed: an earlier copy may have been attempted, so the
    /// sender looks for a record first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
}

impl PendingDelivery {
    /// The delivery as it stands before its first attempt, its body built from `fields`.
    pub fn delivery(&self, job: &Job, fields: &str) -> Delivery {
        Delivery {
            hook_id: job.hook_id.clone(),
            id: job.delivery_id.clone(),
            event_id: self.event_id.clone(),
            event: self.event,
            body: crate::domain::event::delivered_body(fields, &job.hook_id),
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            next_attempt_at: Some(job.due_at),
            reason: None,
            event_created_at: self.event_created_at,
            created_at: self.created_at,
            expires_at: self.expires_at,
            sync: false,
        }
    }
}

/// The first job of a delivery that has no record yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstJob {
    #[serde(flatten)]
    pub job: Job,
    pub pending: PendingDelivery,
}

impl Job {
    /// The job for the delivery's next attempt (the first one after those on record), due at
    /// `due_at`.
    pub fn for_delivery(delivery: &Delivery, due_at: i64) -> Self {
        Self {
            hook_id: delivery.hook_id.clone(),
            delivery_id: delivery.id.clone(),
            attempt: delivery.attempt_count() + 1,
            due_at,
            reopen: false,
            rate_slot: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_round_trip_and_sort_by_time() {
        let id = DeliveryId::generate();
        let text = id.to_string();
        assert!(text.starts_with("msg_") && text.len() == 30);
        assert_eq!(DeliveryId::parse(&text).unwrap(), id);
        assert!(DeliveryId::parse("msg_nope").is_err());
        assert!(DeliveryId::parse(&text[4..]).is_err());
        let at = id.created_at_ms();
        assert!(DeliveryId::lowest_at(at) <= id && id <= DeliveryId::highest_at(at));
        assert!(DeliveryId::highest_at(at - 1) < id);
        assert!(DeliveryId::lowest_at(at).to_string() < DeliveryId::lowest_at(at + 1).to_string());
    }

    #[test]
    fn derived_ids_are_stable_per_event_and_hook() {
        let event = EventId::parse("evt_repeat").unwrap();
        let (a, b) = (
            HookId::parse("hook_a").unwrap(),
            HookId::parse("hook_b").unwrap(),
        );
        let id = DeliveryId::derive(1_795_000_000_000, &event, &a);
        assert_eq!(id, DeliveryId::derive(1_795_000_000_000, &event, &a));
        assert_eq!(id.created_at_ms(), 1_795_000_000_000);
        assert_ne!(id, DeliveryId::derive(1_795_000_000_000, &event, &b));
        assert_ne!(id, DeliveryId::derive(1_795_000_000_001, &event, &a));
        let other = EventId::parse("evt_other").unwrap();
        assert_ne!(id, DeliveryId::derive(1_795_000_000_000, &other, &a));
        assert_eq!(DeliveryId::parse(&id.to_string()).unwrap(), id);
        let before = id.predecessor().unwrap();
        assert!(before < id && before.to_string() < id.to_string());
        assert_eq!(DeliveryId::lowest_at(0).predecessor(), None);
    }

    #[test]
    fn a_success_keeps_a_short_answer_and_a_failure_all_it_captured() {
        let attempt = |status: u16| Attempt {
            number: 1,
            started_at: 0,
            duration_ms: 1,
            response_status: Some(status),
            response_body: Some("é".repeat(300)),
            error_kind: None,
            error: None,
        };
        let kept = attempt(200).trimmed().response_body.unwrap();
        assert_eq!(kept, "é".repeat(SUCCESS_CAPTURE_BYTES / 2));
        let kept = attempt(500).trimmed().response_body.unwrap();
        assert_eq!(kept.len(), 600);
        let mut odd = "aé".to_string();
        truncate_at_char(&mut odd, 2);
        assert_eq!(odd, "a");
    }

    #[test]
    fn job_serializes_as_compact_json() {
        let job = Job {
            hook_id: HookId::parse("hook_a").unwrap(),
            delivery_id: DeliveryId::lowest_at(0),
            attempt: 2,
            due_at: 7,
            reopen: false,
            rate_slot: None,
        };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(
            text,
            r#"{"hookId":"hook_a","deliveryId":"msg_00000000000000000000000000","attempt":2,"dueAt":7}"#
        );
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
    }
}
