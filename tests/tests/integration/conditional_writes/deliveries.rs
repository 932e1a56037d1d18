use super::SEEDS;
use futures::FutureExt;
use webhooks::domain::catalog::EventName;
use webhooks::domain::delivery::{Attempt, Delivery, DeliveryId, DeliveryStatus};
use webhooks::domain::event::EventId;
use webhooks::domain::hook::HookId;
use webhooks::ports::{AttemptRecord, DeliveryLog, RecordOutcome};
use webhooks_tests::interleaving::Interleaving;

const T0: i64 = 1_700_000_000_000;

fn record(d: &Delivery, expected: u32, status: DeliveryStatus) -> AttemptRecord {
    let succeeded = status == DeliveryStatus::Success;
    AttemptRecord {
        hook_id: d.hook_id.clone(),
        delivery_id: d.id.clone(),
        expires_at: d.expires_at,
        expected_attempts: expected,
        attempt: Some(Attempt {
            number: expected + 1,
            started_at: T0 + i64::from(expected),
            duration_ms: 5,
            response_status: Some(if succeeded { 200 } else { 500 }),
            response_body: None,
            error_kind: None,
            error: None,
        }),
        next_attempt_at: (status == DeliveryStatus::Pending).then_some(T0 + 60_000),
        reason: (status == DeliveryStatus::Error).then(|| "HTTP 500".to_string()),
        status,
    }
}

/// Two jobs of one delivery (a queue message seen twice) record their attempts at once: one
/// succeeds at its first attempt, the other fails it and then fails for good at its second.
/// Each attempt number is recorded once, and a recorded success is never overwritten.
#[tokio::test]
async fn a_recorded_success_is_never_overwritten_by_a_racing_failure() {
    let world = Interleaving::default();
    let store = world.store();
    for seed in 0..SEEDS {
        let hook = HookId::generate();
        let d = Delivery {
            hook_id: hook.clone(),
            id: DeliveryId::derive(T0, &EventId::generate(), &hook),
            event_id: EventId::generate(),
            event: EventName::PostSignIn,
            body: "{}".into(),
            status: DeliveryStatus::Pending,
            attempts: vec![],
            next_attempt_at: Some(T0),
            reason: None,
            event_created_at: T0,
            created_at: T0,
            expires_at: T0 / 1000 + 86_400,
            sync: false,
        };
        store
            .insert_missing_deliveries(std::slice::from_ref(&d))
            .await
            .unwrap();
        let succeeding = {
            let (store, record) = (store.clone(), record(&d, 0, DeliveryStatus::Success));
            async move { vec![store.record_attempt(&record).await.unwrap()] }.boxed()
        };
        let failing = {
            let store = store.clone();
            let (first, second) = (
                record(&d, 0, DeliveryStatus::Pending),
                record(&d, 1, DeliveryStatus::Error),
            );
            async move {
                let mut outcomes = vec![store.record_attempt(&first).await.unwrap()];
                if outcomes[0] == RecordOutcome::Recorded {
                    outcomes.push(store.record_attempt(&second).await.unwrap());
                }
                outcomes
            }
            .boxed()
        };
        let outcomes = world.run(seed, vec![succeeding, failing]).await;
        let stored = store.get_delivery(&hook, &d.id).await.unwrap().unwrap();
        let recorded = outcomes
            .iter()
            .flatten()
            .filter(|o| **o == RecordOutcome::Recorded)
            .count();
        assert_eq!(stored.attempts.len(), recorded, "seed {seed}: {outcomes:?}");
        let numbers: Vec<u32> = stored.attempts.iter().map(|a| a.number).collect();
        assert_eq!(
            numbers,
            (1..=recorded as u32).collect::<Vec<_>>(),
            "seed {seed}"
        );
        if outcomes[0] == [RecordOutcome::Recorded] {
            assert_eq!(
                stored.status,
                DeliveryStatus::Success,
                "seed {seed}: {outcomes:?}"
            );
            assert_eq!(recorded, 1, "seed {seed}: {outcomes:?}");
        } else {
            assert_eq!(
                stored.status,
                DeliveryStatus::Error,
                "seed {seed}: {outcomes:?}"
            );
        }
    }
}
