//! The queue envelope: what one queue message carries, a delivery attempt, a recovery step or
//! a health change to act on, told apart by shape so a delivery job keeps its wire form.

use crate::domain::delivery::{FirstJob, Job, PendingDelivery};
use crate::domain::health::HealthChange;
use crate::domain::recovery::RecoveryStep;
use serde::{Deserialize, Serialize};

/// An event's fan-out to finish should its request die: queued with the event's first jobs,
/// due once the request's claim would count as abandoned. Normally the claim is answered by
/// then and the check ends there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanOutCheck {
    /// The event as its jobs carry it (`created_at` is the claim's first time).
    pub check_fan_out: PendingDelivery,
    pub due_at: i64,
}

/// What the queue carries: delivery attempts, recovery steps, health changes and fan-out
/// checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Task {
    Recovery(RecoveryStep),
    /// Before `Delivery`: a first job also reads as a plain job.
    First(FirstJob),
    Delivery(Job),
    Health(HealthChange),
    Check(FanOutCheck),
}

impl Task {
    /// Unix milliseconds before which the task must not run.
    pub fn due_at(&self) -> i64 {
        match self {
            Task::Recovery(step) => step.due_at,
            Task::First(first) => first.job.due_at,
            Task::Delivery(job) => job.due_at,
            Task::Health(change) => change.due_at,
            Task::Check(check) => check.due_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::DeliveryId;
    use crate::domain::hook::HookId;
    use crate::domain::recovery::RecoveryId;

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
            Task::Delivery(job.clone())
        );
        let first = crate::domain::delivery::FirstJob {
            job: job.clone(),
            pending: crate::domain::delivery::PendingDelivery {
                event_id: crate::domain::event::EventId::parse("evt_1").unwrap(),
                event: crate::domain::catalog::EventName::UserCreated,
                fields: Some(r#"{"event":"User.Created"}"#.into()),
                event_created_at: 1,
                created_at: 2,
                expires_at: 3,
                resumed: false,
            },
        };
        let text = serde_json::to_string(&Task::First(first.clone())).unwrap();
        assert!(text.starts_with(&serde_json::to_string(&job).unwrap()[..30]));
        assert_eq!(
            serde_json::from_str::<Task>(&text).unwrap(),
            Task::First(first),
            "a first job keeps what it carries"
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
        let change = Task::Health(crate::domain::health::HealthChange {
            health_of: HookId::parse("hook_a").unwrap(),
            before: Default::default(),
            after: crate::domain::health::HookHealth {
                failing_since: Some(4),
                failed_attempts: 1,
                ..Default::default()
            },
            gone_at: Some(5),
            due_at: 6,
        });
        let text = serde_json::to_string(&change).unwrap();
        assert_eq!(serde_json::from_str::<Task>(&text).unwrap(), change);
    }
}
