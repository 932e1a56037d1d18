//! Receiver check reports: kept per hook, listed newest first a page at a time, left out once
//! expired, and never seen by the hook listing, the subscriptions or the delivery log.

use super::new_hook;
use std::collections::BTreeMap;
use std::sync::Arc;
use webhooks::domain::catalog::EventName;
use webhooks::domain::clock::now_ms;
use webhooks::domain::hook::HookId;
use webhooks::domain::receiver_check::{CheckReport, CheckResult, Outcome, Received, SentRequest};
use webhooks::ports::{DeliveryFilter, Store};

contract!(check_reports_list_newest_first_per_hook, "checks");

fn report(hook: &HookId, created_at: i64, outcome: Outcome) -> CheckReport {
    let result = CheckResult {
        name: "signed".into(),
        outcome,
        detail: "a correctly signed event was accepted: answered 200 in 3 ms".into(),
        request: SentRequest {
            method: "POST".into(),
            headers: BTreeMap::from([
                ("webhook-id".into(), "chk_01J0000000000000000000000".into()),
                ("webhook-signature".into(), "v1,abcdefgh…".into()),
            ]),
            body_bytes: 120,
            body_note: None,
        },
        response: Received {
            status: Some(200),
            time_ms: 3,
            body: Some("{\"ok\":true}".into()),
            error: None,
            location: None,
        },
    };
    CheckReport::new(
        Some(hook.clone()),
        "https://hooks.example.com/x".into(),
        created_at,
        10_000,
        vec![result],
    )
}

async fn check_reports_list_newest_first_per_hook(s: Arc<impl Store + ?Sized>) {
    let s = s.as_ref();
    let hook = new_hook(&["PostSignIn"]);
    s.create_hook(&hook).await.unwrap();
    let now = now_ms();
    let mut reports = Vec::new();
    for (i, outcome) in [Outcome::Pass, Outcome::Warn, Outcome::Fail]
        .into_iter()
        .enumerate()
    {
        let r = report(&hook.id, now + i as i64, outcome);
        s.put_check(&r, now + 86_400_000).await.unwrap();
        reports.push(r);
        // Report ids are ULIDs: a millisecond apart, they sort by time.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let first = s.page_checks(&hook.id, None, 2, now).await.unwrap();
    assert_eq!(first.items, vec![reports[2].clone(), reports[1].clone()]);
    assert_eq!(first.next, Some(reports[1].id.clone()));
    let rest = s
        .page_checks(&hook.id, first.next.as_ref(), 2, now)
        .await
        .unwrap();
    assert_eq!(rest.items, vec![reports[0].clone()]);
    assert_eq!(rest.next, None);
    let all = s.page_checks(&hook.id, None, 3, now).await.unwrap();
    assert_eq!(all.items.len(), 3);
    assert_eq!(all.next, None, "no next page when exactly all fit");

    // Per hook.
    let other = s
        .page_checks(&HookId::generate(), None, 10, now)
        .await
        .unwrap();
    assert!(other.items.is_empty());

    // Expired reports are left out (TTL may not have removed them yet).
    let old = report(&hook.id, now + 10, Outcome::Pass);
    s.put_check(&old, now + 5).await.unwrap();
    let listed = s.page_checks(&hook.id, None, 10, now + 6).await.unwrap();
    assert!(!listed.items.iter().any(|r| r.id == old.id));
    assert_eq!(listed.items.len(), 3);

    // Reports are no hooks, subscriptions or deliveries.
    assert_eq!(s.count_hooks().await.unwrap(), 1);
    let hooks = s.page_hooks(None, 10).await.unwrap();
    assert_eq!(hooks.items, vec![hook.clone()]);
    assert_eq!(s.get_hook(&hook.id).await.unwrap(), Some(hook.clone()));
    assert_eq!(s.subscribers(EventName::PostSignIn).await.unwrap().len(), 1);
    let deliveries = s
        .page_deliveries(
            &hook.id,
            &DeliveryFilter::between(0, now + 86_400_000),
            None,
            10,
        )
        .await
        .unwrap();
    assert!(deliveries.items.is_empty(), "{:?}", deliveries.items);
    assert!(s.delete_hook(&hook).await.unwrap());
}
