//! The hook port: hooks, their listing and the subscription index.

use super::{POLICY, ids, new_hook};
use serde_json::json;
use std::sync::Arc;
use webhooks::api::bodies::HookPatch;
use webhooks::domain::catalog::EventName;
use webhooks::domain::clock::now_ms;
use webhooks::domain::hook::{HookMode, HookPosition};
use webhooks::ports::{HookStore, StoreError, Subscriber};

contract!(hooks_and_subscriptions_follow_every_change, "hooks");
contract!(
    hook_pages_run_newest_first_and_count_every_hook,
    "hookpages"
);

async fn hooks_and_subscriptions_follow_every_change(s: Arc<impl HookStore + ?Sized>) {
    let s = s.as_ref();
    let a = new_hook(&["PostSignIn", "User.Created"]);
    let b = new_hook(&["PostSignIn"]);
    s.create_hook(&a).await.unwrap();
    s.create_hook(&b).await.unwrap();
    assert!(matches!(
        s.create_hook(&a).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(s.get_hook(&a.id).await.unwrap().as_ref(), Some(&a));
    let listed: Vec<_> = s
        .page_hooks(None, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|h| h.id)
        .collect();
    let mut expected = vec![(a.created_at, a.id.clone()), (b.created_at, b.id.clone())];
    expected.sort();
    expected.reverse();
    assert_eq!(
        listed,
        expected.into_iter().map(|(_, id)| id).collect::<Vec<_>>(),
        "hooks list newest first, as Logto lists them"
    );

    let mut subs = ids(s.subscribers(EventName::PostSignIn).await.unwrap());
    subs.sort();
    let mut both = vec![a.id.clone(), b.id.clone()];
    both.sort();
    assert_eq!(subs, both);

    let patch = HookPatch::parse(
        &json!({"events": ["Role.Created"], "enabled": true}),
        POLICY,
    )
    .unwrap();
    let a2 = patch.apply(&a, now_ms());
    s.update_hook(&a, &a2).await.unwrap();
    assert_eq!(
        ids(s.subscribers(EventName::PostSignIn).await.unwrap()),
        vec![b.id.clone()]
    );
    assert_eq!(
        ids(s.subscribers(EventName::RoleCreated).await.unwrap()),
        vec![a.id.clone()]
    );
    assert!(
        s.subscribers(EventName::UserCreated)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        matches!(s.update_hook(&a, &a2).await, Err(StoreError::Conflict)),
        "a stale write loses"
    );

    let disable = HookPatch::parse(&json!({"enabled": false}), POLICY)
        .unwrap()
        .apply(&b, now_ms());
    s.update_hook(&b, &disable).await.unwrap();
    assert!(
        s.subscribers(EventName::PostSignIn)
            .await
            .unwrap()
            .is_empty(),
        "disabled hooks get nothing"
    );

    // The index says which subscribers are called synchronously.
    let sync = HookPatch::parse(
        &json!({"enabled": true, "config": {"url": "https://hooks.example.com/s", "mode": "sync", "timeoutMs": 500}}),
        POLICY,
    )
    .unwrap()
    .apply(&disable, now_ms());
    s.update_hook(&disable, &sync).await.unwrap();
    assert_eq!(
        s.subscribers(EventName::PostSignIn).await.unwrap(),
        vec![Subscriber {
            hook_id: b.id.clone(),
            mode: HookMode::Sync
        }]
    );
    let back = HookPatch::parse(
        &json!({"config": {"url": "https://hooks.example.com/s"}}),
        POLICY,
    )
    .unwrap()
    .apply(&sync, now_ms());
    s.update_hook(&sync, &back).await.unwrap();
    assert_eq!(
        s.subscribers(EventName::PostSignIn).await.unwrap()[0].mode,
        HookMode::Async
    );

    assert!(s.delete_hook(&a2).await.unwrap());
    assert!(!s.delete_hook(&a2).await.unwrap());
    assert!(s.get_hook(&a.id).await.unwrap().is_none());
    assert!(
        s.subscribers(EventName::RoleCreated)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn hook_pages_run_newest_first_and_count_every_hook(s: Arc<impl HookStore + ?Sized>) {
    let s = s.as_ref();
    let empty = s.page_hooks(None, 5).await.unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());
    assert_eq!(s.count_hooks().await.unwrap(), 0);
    // Seven hooks; two pairs share a creation time, so ties are ordered by id.
    let mut made = Vec::new();
    for at in [5_000, 1_000, 3_000, 3_000, 9_000, 7_000, 7_000] {
        let mut hook = new_hook(&["PostSignIn"]);
        hook.created_at = 1_795_000_000_000 + at;
        hook.updated_at = hook.created_at;
        s.create_hook(&hook).await.unwrap();
        made.push(hook);
    }
    let mut want: Vec<HookPosition> = made.iter().map(HookPosition::of).collect();
    want.sort();
    want.reverse();
    assert_eq!(s.count_hooks().await.unwrap(), 7);
    for size in [1, 3, 6, 7, 8] {
        let (mut got, mut after, mut pages) = (Vec::new(), None, 0);
        loop {
            let page = s.page_hooks(after.as_ref(), size).await.unwrap();
            assert!(page.items.len() <= size);
            pages += 1;
            got.extend(page.items.iter().map(HookPosition::of));
            after = page.next;
            if after.is_none() {
                break;
            }
        }
        assert_eq!(got, want, "page size {size}");
        assert_eq!(
            pages,
            7usize.div_ceil(size),
            "no empty last page at size {size}"
        );
    }
    // Subscriptions are not hooks: deleting one hook leaves six listed.
    assert!(s.delete_hook(&made[0]).await.unwrap());
    assert_eq!(s.count_hooks().await.unwrap(), 6);
}
