use super::SEEDS;
use futures::FutureExt;
use webhooks::domain::delivery::DeliveryId;
use webhooks::domain::event::EventId;
use webhooks::domain::hook::HookId;
use webhooks::domain::recovery::{Recovery, RecoveryId, RecoveryStatus};
use webhooks::ports::RecoveryStore;
use webhooks_tests::interleaving::Interleaving;

/// Copies of a recovery's steps (a queue delivers a message more than once) racing: each step
/// moves the cursor once and counts once.
#[tokio::test]
async fn each_recovery_step_advances_once() {
    let hook = HookId::generate();
    let t0 = 1_700_000_000_000;
    let cursors: Vec<DeliveryId> = (0..2)
        .map(|i| DeliveryId::derive(t0 + i, &EventId::generate(), &hook))
        .collect();
    // (from, to, resent) of each step; the last one finishes the recovery.
    let steps = [
        (None, Some(cursors[0].clone()), 2),
        (Some(cursors[0].clone()), Some(cursors[1].clone()), 3),
        (Some(cursors[1].clone()), None, 5),
    ];
    let world = Interleaving::default();
    let store = world.store();
    for seed in 0..SEEDS {
        let recovery = Recovery {
            id: RecoveryId::generate(),
            hook_id: hook.clone(),
            since: t0 - 3_600_000,
            until: t0,
            status: RecoveryStatus::Running,
            resent: 0,
            steps: 0,
            cursor: None,
            created_at: t0,
            updated_at: t0,
        };
        store.create_recovery(&recovery).await.unwrap();
        let actors = (0..3)
            .map(|_| {
                let (store, hook, id, steps) = (
                    store.clone(),
                    hook.clone(),
                    recovery.id.clone(),
                    steps.clone(),
                );
                async move {
                    let mut advanced = Vec::new();
                    for (from, to, resent) in &steps {
                        let done = store
                            .advance_recovery(
                                &hook,
                                &id,
                                from.as_ref(),
                                to.as_ref(),
                                *resent,
                                t0 + 1,
                            )
                            .await
                            .unwrap();
                        advanced.push(done);
                    }
                    advanced
                }
                .boxed()
            })
            .collect();
        let advanced = world.run(seed, actors).await;
        let per_step: Vec<usize> = (0..steps.len())
            .map(|i| advanced.iter().filter(|a| a[i]).count())
            .collect();
        assert!(
            per_step.iter().all(|&n| n <= 1),
            "seed {seed}: {advanced:?}"
        );
        let stored = store
            .get_recovery(&hook, &recovery.id)
            .await
            .unwrap()
            .unwrap();
        let done: Vec<_> = steps
            .iter()
            .zip(&per_step)
            .filter(|(_, n)| **n == 1)
            .collect();
        assert_eq!(stored.steps, done.len() as u64, "seed {seed}");
        assert_eq!(
            stored.resent,
            done.iter().map(|((_, _, r), _)| r).sum::<u64>(),
            "seed {seed}"
        );
        let finished = per_step[2] == 1;
        assert_eq!(
            stored.status == RecoveryStatus::Done,
            finished,
            "seed {seed}"
        );
    }
}
