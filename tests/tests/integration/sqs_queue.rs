//! The SQS adapter against moto: batches past ten, delays, acknowledge by delete.

use crate::support::moto;
use std::collections::HashSet;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::{DeliveryId, Job};
use webhooks::domain::hook::HookId;
use webhooks::ports::JobQueue;

fn job(due_at: i64) -> Job {
    Job {
        hook_id: HookId::parse("hook_sqs").unwrap(),
        delivery_id: DeliveryId::generate(),
        attempt: 1,
        due_at,
        reopen: false,
        rate_slot: None,
    }
}

#[tokio::test]
async fn enqueues_in_batches_and_delays_future_jobs() {
    let m = moto("sqs").await;
    let now = now_ms();
    let due: Vec<Job> = (0..23).map(|_| job(now)).collect();
    let mut all = due.clone();
    all.push(job(now + 60_000));
    m.queue.enqueue(&all).await.unwrap();

    let mut seen = HashSet::new();
    for _ in 0..10 {
        let got = m.queue.receive(10, 1).await.unwrap();
        let handles: Vec<String> = got.iter().map(|r| r.receipt_handle.clone()).collect();
        for r in &got {
            let job: Job = serde_json::from_str(&r.message.body).unwrap();
            seen.insert(job.delivery_id);
        }
        m.queue.delete(&handles).await.unwrap();
        if seen.len() >= due.len() {
            break;
        }
    }
    let expected: HashSet<_> = due.iter().map(|j| j.delivery_id.clone()).collect();
    assert_eq!(
        seen, expected,
        "every due job arrives once; the delayed one does not"
    );
    assert!(
        m.queue.receive(10, 0).await.unwrap().is_empty(),
        "deleted messages stay gone"
    );
}
