use super::SEEDS;
use futures::FutureExt;
use webhooks::domain::event::EventId;
use webhooks::ports::{EventClaim, EventClaims};
use webhooks_tests::interleaving::Interleaving;

const WINDOW: i64 = 600_000;
const STALE: i64 = 30_000;

/// Racing ingests of one event id: exactly one fans it out.
#[tokio::test]
async fn an_event_is_claimed_by_one_of_many_racing_ingests() {
    let world = Interleaving::default();
    let store = world.store();
    for seed in 0..SEEDS {
        let id = EventId::generate();
        let t0 = 1_700_000_000_000;
        let actors = (0..4)
            .map(|i| {
                let (store, id) = (store.clone(), id.clone());
                async move { store.claim_event(&id, t0 + i, WINDOW, STALE).await.unwrap() }.boxed()
            })
            .collect();
        let claims = world.run(seed, actors).await;
        let won: Vec<_> = claims
            .iter()
            .filter(|c| matches!(c, EventClaim::Claimed { .. }))
            .collect();
        assert_eq!(won.len(), 1, "seed {seed}: {claims:?}");
        assert!(
            claims.iter().all(|c| matches!(
                c,
                EventClaim::Claimed { resumed: false, .. } | EventClaim::InProgress
            )),
            "seed {seed}: {claims:?}"
        );
    }
}

/// Racing takeovers of an abandoned claim: exactly one resumes it, keeping the first claim's time.
#[tokio::test]
async fn an_abandoned_claim_is_taken_over_once() {
    let world = Interleaving::default();
    let store = world.store();
    for seed in 0..SEEDS {
        let id = EventId::generate();
        let t0 = 1_700_000_000_000;
        store.claim_event(&id, t0, WINDOW, STALE).await.unwrap();
        let actors = (0..4)
            .map(|i| {
                let (store, id) = (store.clone(), id.clone());
                let at = t0 + STALE + 1 + i;
                async move { store.claim_event(&id, at, WINDOW, STALE).await.unwrap() }.boxed()
            })
            .collect();
        let claims = world.run(seed, actors).await;
        let won: Vec<_> = claims
            .iter()
            .filter(|c| matches!(c, EventClaim::Claimed { .. }))
            .collect();
        let resumed = EventClaim::Claimed {
            first_claimed_at: t0,
            resumed: true,
        };
        assert_eq!(won, [&resumed], "seed {seed}: {claims:?}");
    }
}
