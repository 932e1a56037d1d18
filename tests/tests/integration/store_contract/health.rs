//! Counters and failure state: hourly stats, the failure state and its notices, rate slots.

use super::new_hook;
use std::sync::Arc;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::ErrorKind;
use webhooks::domain::health::{BatchHealth, HealthCounts, HookHealth, Outcome, bucket_of};
use webhooks::domain::hook::HookId;
use webhooks::ports::{HealthStore, HourlyCount};

contract!(hourly_stats_add_up_per_hook_and_hour, "hourly");
contract!(failure_states_open_close_and_reset, "health");
contract!(rate_slots_follow_one_another_and_restart_when_idle, "slots");

async fn hourly_stats_add_up_per_hook_and_hour(s: Arc<impl HealthStore + ?Sized>) {
    let s = s.as_ref();
    let hook = new_hook(&["PostSignIn"]);
    let now = now_ms();
    let hour = 3_600_000;
    let base = (now / hour) * hour;
    let h = base / hour;
    let other = HookId::generate();
    // `requests` attempts of `ms` each at `at`, the first `successes` of them successful,
    // the others 503s.
    let count = |hook: &HookId, hour: i64, requests: u64, successes: u64, at: i64, ms: u64| {
        let mut counts = HealthCounts::default();
        for i in 0..requests {
            let outcome = if i < successes {
                Outcome::Succeeded
            } else {
                Outcome::of(Some(503), Some(ErrorKind::Http))
            };
            counts.record(at, ms, outcome);
        }
        HourlyCount {
            hook_id: hook.clone(),
            hour,
            counts,
        }
    };
    s.count_attempts(&[
        count(&hook.id, h, 1, 1, base + 10, 30),
        count(&hook.id, h - 1, 1, 1, base - 10, 30),
        count(&hook.id, h - 30, 1, 1, base - 30 * hour, 30),
        count(&other, h, 5, 0, base + 1, 30),
    ])
    .await
    .unwrap();
    // An earlier failure written later: counted, and the latest failure time stays.
    s.count_attempts(&[count(&hook.id, h, 1, 0, base + 20, 4_000)])
        .await
        .unwrap();
    s.count_attempts(&[count(&hook.id, h, 1, 0, base + 15, 700)])
        .await
        .unwrap();
    s.count_attempts(&[]).await.unwrap();
    let day = s.hourly_health(&hook.id, h - 23, h).await.unwrap();
    assert_eq!(
        day.iter().map(|(hour, _)| *hour).collect::<Vec<_>>(),
        vec![h - 1, h],
        "the hours with attempts, oldest first"
    );
    let now_hour = &day[1].1;
    assert_eq!((now_hour.attempts, now_hour.successes), (3, 1));
    assert_eq!(now_hour.failures.status_5xx, 2);
    assert_eq!(now_hour.failures.total(), 2);
    assert_eq!(now_hour.last_success_at, Some(base + 10));
    assert_eq!(now_hour.last_failure_at, Some(base + 20));
    assert_eq!(now_hour.durations[bucket_of(30)], 1);
    assert_eq!(now_hour.durations[bucket_of(700)], 1);
    assert_eq!(now_hour.durations[bucket_of(4_000)], 1);
    assert_eq!(now_hour.percentile(0.99), Some(5_000));
    let older = s.hourly_health(&hook.id, h - 40, h - 2).await.unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].0, h - 30);
    let others = s.hourly_health(&other, h, h).await.unwrap();
    assert_eq!(others[0].1.failures.status_5xx, 5);
}

/// A batch's `(started_at, succeeded)` attempts.
type Step = &'static [(i64, bool)];

async fn failure_states_open_close_and_reset(s: Arc<impl HealthStore + ?Sized>) {
    let s = s.as_ref();
    let hook = HookId::generate();
    let other = HookId::generate();
    assert_eq!(s.hook_health(&hook).await.unwrap(), HookHealth::default());

    // Each step: a batch's attempts, and the state expected after it.
    let steps: [(Step, Option<i64>, u64); 6] = [
        (&[(100, false), (90, false)], Some(90), 2),
        (&[(120, false)], Some(90), 3),
        // A later success closes the window; the failure after it opens a new one.
        (&[(130, true), (140, false)], Some(140), 1),
        // Failures before the success on record do not count; nor does an older success.
        (&[(125, false)], Some(140), 1),
        (&[(128, true)], Some(140), 1),
        (&[(150, true)], None, 0),
    ];
    let mut expected = HookHealth::default();
    for (i, (attempts, failing_since, failed)) in steps.into_iter().enumerate() {
        let batch = BatchHealth::of(attempts);
        let (before, after) = s.record_health(&hook, &batch).await.unwrap();
        assert_eq!(before, expected, "step {i}: the state before");
        assert_eq!(
            after,
            before.apply(&batch),
            "step {i}: as the pure rule says"
        );
        assert_eq!(
            (after.failing_since, after.failed_attempts),
            (failing_since, failed),
            "step {i}"
        );
        assert_eq!(
            s.hook_health(&hook).await.unwrap(),
            after,
            "step {i}: stored"
        );
        expected = after;
    }
    assert_eq!(s.hook_health(&other).await.unwrap(), HookHealth::default());

    // One notice per window: a claim is refused until the window after the last one ends,
    // and failures and successes recorded since keep it.
    assert!(s.claim_notice(&hook, 1_000, 500).await.unwrap());
    assert!(!s.claim_notice(&hook, 1_499, 500).await.unwrap());
    let (_, after) = s
        .record_health(&hook, &BatchHealth::of(&[(1_200, false)]))
        .await
        .unwrap();
    assert_eq!(
        (after.failing_since, after.noticed_at),
        (Some(1_200), Some(1_000))
    );
    let (_, after) = s
        .record_health(&hook, &BatchHealth::of(&[(1_300, true)]))
        .await
        .unwrap();
    assert_eq!((after.failing_since, after.noticed_at), (None, Some(1_000)));
    assert!(s.claim_notice(&hook, 1_500, 500).await.unwrap());
    assert_eq!(s.hook_health(&hook).await.unwrap().noticed_at, Some(1_500));
    assert!(
        s.claim_notice(&other, 1_500, 500).await.unwrap(),
        "per hook"
    );

    s.record_health(&hook, &BatchHealth::of(&[(2_000, false)]))
        .await
        .unwrap();
    s.reset_health(&hook).await.unwrap();
    assert_eq!(s.hook_health(&hook).await.unwrap(), HookHealth::default());
    let (before, after) = s
        .record_health(&hook, &BatchHealth::of(&[(50, false)]))
        .await
        .unwrap();
    assert_eq!(
        before,
        HookHealth::default(),
        "a reset forgets the success too"
    );
    assert_eq!(after.failing_since, Some(50));
}

async fn rate_slots_follow_one_another_and_restart_when_idle(s: Arc<impl HealthStore + ?Sized>) {
    let s = s.as_ref();
    let (hook, other) = (HookId::generate(), HookId::generate());
    let now = 1_000_000;
    let mut slots = Vec::new();
    for _ in 0..4 {
        slots.push(s.reserve_slot(&hook, 200, now).await.unwrap());
    }
    assert_eq!(slots, [now, now + 200, now + 400, now + 600]);
    assert_eq!(
        s.reserve_slot(&other, 200, now).await.unwrap(),
        now,
        "per hook"
    );
    // Later, but before the last slot taken: the slot after it.
    assert_eq!(
        s.reserve_slot(&hook, 200, now + 300).await.unwrap(),
        now + 800
    );
    // Idle since: now again.
    assert_eq!(
        s.reserve_slot(&hook, 200, now + 5_000).await.unwrap(),
        now + 5_000
    );
    assert_eq!(
        s.reserve_slot(&hook, 200, now + 5_000).await.unwrap(),
        now + 5_200
    );
}
