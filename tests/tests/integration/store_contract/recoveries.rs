//! Recoveries: created once, read back, and advanced step by step until done.

use std::sync::Arc;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::DeliveryId;
use webhooks::domain::event::EventId;
use webhooks::domain::hook::HookId;
use webhooks::domain::recovery::{Recovery, RecoveryId, RecoveryStatus};
use webhooks::ports::{RecoveryStore, StoreError};

contract!(
    recoveries_advance_from_their_cursor_until_done,
    "recoveries"
);

async fn recoveries_advance_from_their_cursor_until_done(s: Arc<impl RecoveryStore + ?Sized>) {
    let s = s.as_ref();
    let hook = HookId::generate();
    let now = now_ms();
    let recovery = Recovery {
        id: RecoveryId::generate(),
        hook_id: hook.clone(),
        since: now - 3_600_000,
        until: now,
        status: RecoveryStatus::Running,
        resent: 0,
        steps: 0,
        cursor: None,
        created_at: now,
        updated_at: now,
    };
    s.create_recovery(&recovery).await.unwrap();
    assert!(matches!(
        s.create_recovery(&recovery).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        s.get_recovery(&hook, &recovery.id).await.unwrap(),
        Some(recovery.clone())
    );
    assert!(
        s.get_recovery(&HookId::generate(), &recovery.id)
            .await
            .unwrap()
            .is_none(),
        "per hook"
    );
    assert!(
        s.get_recovery(&hook, &RecoveryId::generate())
            .await
            .unwrap()
            .is_none()
    );

    // Two steps: from no cursor to the first page's last id, then to the end.
    let page_end = DeliveryId::derive(now - 60_000, &EventId::generate(), &hook);
    assert!(
        s.advance_recovery(&hook, &recovery.id, None, Some(&page_end), 10, now + 1)
            .await
            .unwrap()
    );
    assert!(
        !s.advance_recovery(&hook, &recovery.id, None, Some(&page_end), 10, now + 1)
            .await
            .unwrap(),
        "a step from a cursor it left is refused"
    );
    let running = s.get_recovery(&hook, &recovery.id).await.unwrap().unwrap();
    assert_eq!(running.status, RecoveryStatus::Running);
    assert_eq!(running.cursor, Some(page_end.clone()));
    assert_eq!((running.resent, running.steps), (10, 1));
    assert_eq!(running.updated_at, now + 1);

    assert!(
        s.advance_recovery(&hook, &recovery.id, Some(&page_end), None, 4, now + 2)
            .await
            .unwrap()
    );
    let done = s.get_recovery(&hook, &recovery.id).await.unwrap().unwrap();
    assert_eq!(done.status, RecoveryStatus::Done);
    assert_eq!(done.cursor, None);
    assert_eq!((done.resent, done.steps), (14, 2));
    assert_eq!(done.updated_at, now + 2);
    assert!(
        !s.advance_recovery(&hook, &recovery.id, None, None, 1, now + 3)
            .await
            .unwrap(),
        "a done recovery takes no step"
    );
    assert!(
        !s.advance_recovery(&HookId::generate(), &recovery.id, None, None, 1, now + 3)
            .await
            .unwrap(),
        "nor does one that does not exist"
    );
    assert_eq!(
        s.get_recovery(&hook, &recovery.id).await.unwrap(),
        Some(done)
    );
}
