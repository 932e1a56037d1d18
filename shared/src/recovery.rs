//! Recovery at any volume: `POST /api/hooks/{id}/recover` records a recovery and queues its
//! first step; each step re-queues one page of failed deliveries and then the next step with
//! its cursor, so an outage of any size is re-sent without a long request.

use crate::delivery::{DeliveryId, Job};
use crate::hook::HookId;
use crate::validation::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A ULID prefixed with `rcv_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecoveryId(ulid::Ulid);

impl RecoveryId {
    pub fn generate() -> Self {
        Self(ulid::Ulid::new())
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        s.strip_prefix("rcv_")
            .and_then(|u| ulid::Ulid::from_string(u).ok())
            .map(Self)
            .ok_or_else(|| ValidationError::new("recoveryId", "is not a recovery id"))
    }
}

impl TryFrom<String> for RecoveryId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<RecoveryId> for String {
    fn from(id: RecoveryId) -> String {
        id.to_string()
    }
}

impl fmt::Display for RecoveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rcv_{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecoveryStatus {
    Running,
    Done,
}

/// A recovery as stored: which deliveries it re-sends, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    pub id: RecoveryId,
    pub hook_id: HookId,
    /// Deliveries created in `[since, until]` (unix ms) that failed or were dropped.
    pub since: i64,
    pub until: i64,
    pub status: RecoveryStatus,
    /// Deliveries queued again so far.
    pub resent: u64,
    /// Steps (pages) done so far.
    pub steps: u64,
    /// Where the next step goes on from (`None` before the first one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<DeliveryId>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One step of a recovery, as a queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryStep {
    pub hook_id: HookId,
    pub recovery_id: RecoveryId,
    /// The recovery's cursor this step starts from; a copy of a step already done no longer
    /// matches it and is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<DeliveryId>,
    pub due_at: i64,
}

/// What the queue carries: delivery attempts and recovery steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Task {
    Recovery(RecoveryStep),
    Delivery(Job),
}

impl Task {
    /// Unix milliseconds before which the task must not run.
    pub fn due_at(&self) -> i64 {
        match self {
            Task::Recovery(step) => step.due_at,
            Task::Delivery(job) => job.due_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_told_apart_and_jobs_keep_their_wire_form() {
        let job = Job {
            hook_id: HookId::parse("hook_a").unwrap(),
            delivery_id: DeliveryId::lowest_at(0),
            attempt: 2,
            due_at: 7,
            reopen: false,
            rate_slot: None,
        };
        let text = serde_json::to_string(&Task::Delivery(job.clone())).unwrap();
        assert_eq!(text, serde_json::to_string(&job).unwrap());
        assert_eq!(
            serde_json::from_str::<Task>(&text).unwrap(),
            Task::Delivery(job)
        );
        let step = RecoveryStep {
            hook_id: HookId::parse("hook_a").unwrap(),
            recovery_id: RecoveryId::generate(),
            after: Some(DeliveryId::lowest_at(5)),
            due_at: 9,
        };
        let text = serde_json::to_string(&Task::Recovery(step.clone())).unwrap();
        assert_eq!(
            serde_json::from_str::<Task>(&text).unwrap(),
            Task::Recovery(step)
        );
        let id = RecoveryId::generate();
        assert_eq!(RecoveryId::parse(&id.to_string()).unwrap(), id);
        assert!(RecoveryId::parse("rcv_nope").is_err());
    }
}
