use super::SEEDS;
use futures::FutureExt;
use webhooks::domain::hook::HookId;
use webhooks::ports::{HealthStore, StoreError};
use webhooks_tests::interleaving::Interleaving;

const INTERVAL: i64 = 100;

/// Senders racing for a rate-limited hook's slots: no two slots granted closer than the
/// interval, so no window grants more than its share; none is before its caller's now.
#[tokio::test]
async fn racing_senders_are_never_granted_slots_closer_than_the_interval() {
    let world = Interleaving::default();
    let store = world.store();
    for seed in 0..SEEDS {
        let hook = HookId::generate();
        let t0 = 1_700_000_000_000;
        // Two already reserved earlier: the item exists, and goes idle during the race.
        store.reserve_slot(&hook, INTERVAL, t0 - 150).await.unwrap();
        let nows: Vec<i64> = (0..5).map(|i| t0 + 20 * i).collect();
        let actors = nows
            .iter()
            .map(|&now| {
                let (store, hook) = (store.clone(), hook.clone());
                async move {
                    let mut granted = Vec::new();
                    for _ in 0..2 {
                        match store.reserve_slot(&hook, INTERVAL, now).await {
                            Ok(slot) => granted.push(slot),
                            Err(StoreError::Conflict) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    granted
                }
                .boxed()
            })
            .collect();
        let granted = world.run(seed, actors).await;
        for (now, slots) in nows.iter().zip(&granted) {
            assert!(slots.iter().all(|s| s >= now), "seed {seed}: {granted:?}");
        }
        let mut slots: Vec<i64> = granted.into_iter().flatten().collect();
        assert!(!slots.is_empty(), "seed {seed}");
        slots.sort();
        assert!(
            slots.windows(2).all(|w| w[1] - w[0] >= INTERVAL),
            "seed {seed}: {slots:?}"
        );
    }
}
