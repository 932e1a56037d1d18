use super::SEEDS;
use futures::FutureExt;
use webhooks::domain::health::{BatchHealth, HealthCounts, HookHealth};
use webhooks::domain::hook::HookId;
use webhooks::ports::{HealthStore, HourlyCount};
use webhooks_tests::interleaving::Interleaving;

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut all = Vec::new();
    for rest in permutations(n - 1) {
        for at in 0..=rest.len() {
            let mut p = rest.clone();
            p.insert(at, n - 1);
            all.push(p);
        }
    }
    all
}

/// Batches of one hook's attempts racing into its failure state: the result is what applying
/// them one after another in some order gives (no count lost, no older success winning).
#[tokio::test]
async fn racing_batches_leave_the_failure_state_of_some_serial_order() {
    let batches = [
        BatchHealth::of(&[(100, true)]),
        BatchHealth::of(&[(300, true), (310, false), (320, false)]),
        BatchHealth::of(&[(200, false), (210, false), (220, false)]),
        BatchHealth::of(&[(400, false)]),
    ];
    let serial: Vec<HookHealth> = permutations(batches.len())
        .into_iter()
        .map(|order| {
            order
                .into_iter()
                .fold(HookHealth::default(), |h, i| h.apply(&batches[i]))
        })
        .collect();
    let world = Interleaving::default();
    let store = world.store();
    for seed in 0..SEEDS {
        let hook = HookId::generate();
        let actors = batches
            .iter()
            .map(|batch| {
                let (store, hook, batch) = (store.clone(), hook.clone(), batch.clone());
                async move { store.record_health(&hook, &batch).await.unwrap() }.boxed()
            })
            .collect();
        world.run(seed, actors).await;
        let health = store.hook_health(&hook).await.unwrap();
        assert!(serial.contains(&health), "seed {seed}: {health:?}");
    }
}

/// Senders adding one hour's counters at once: every attempt counted, and the latest success
/// and failure times are the latest of all.
#[tokio::test]
async fn racing_hourly_counts_are_all_kept() {
    let hour = 472_222;
    let at = hour * 3_600_000;
    let counts = [
        (3, Some(at + 50), None),
        (2, Some(at + 10), Some(at + 90)),
        (4, None, Some(at + 30)),
    ];
    let world = Interleaving::default();
    let store = world.store();
    for seed in 0..SEEDS {
        let hook = HookId::generate();
        let actors = counts
            .iter()
            .map(|&(attempts, success, failure)| {
                let (store, hook) = (store.clone(), hook.clone());
                async move {
                    let counts = HealthCounts {
                        attempts,
                        successes: u64::from(success.is_some()),
                        last_success_at: success,
                        last_failure_at: failure,
                        ..HealthCounts::default()
                    };
                    let count = HourlyCount {
                        hook_id: hook,
                        hour,
                        counts,
                    };
                    store.count_attempts(&[count]).await.unwrap()
                }
                .boxed()
            })
            .collect();
        world.run(seed, actors).await;
        let hours = store.hourly_health(&hook, hour, hour).await;
        let (_, stored) = &hours.unwrap()[0];
        assert_eq!(stored.attempts, 9, "seed {seed}");
        assert_eq!(stored.successes, 2, "seed {seed}");
        assert_eq!(stored.last_success_at, Some(at + 50), "seed {seed}");
        assert_eq!(stored.last_failure_at, Some(at + 90), "seed {seed}");
    }
}
