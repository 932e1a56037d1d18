//! Event claims: repeat, wait, take over, expire.

use serde_json::json;
use std::sync::Arc;
use webhooks::domain::clock::now_ms;
use webhooks::domain::event::EventId;
use webhooks::domain::json::RawJson;
use webhooks::ports::{EventClaim, EventClaims};

contract!(event_claims_repeat_wait_take_over_and_expire, "claims");

async fn event_claims_repeat_wait_take_over_and_expire(s: Arc<impl EventClaims + ?Sized>) {
    let s = s.as_ref();
    const WINDOW: i64 = 86_400_000;
    const STALE: i64 = 60_000;
    let t0 = now_ms();
    let id = EventId::parse(&format!("evt_{}", ulid::Ulid::new())).unwrap();
    let fresh = EventClaim::Claimed {
        first_claimed_at: t0,
        resumed: false,
    };
    assert_eq!(s.claim_event(&id, t0, WINDOW, STALE).await.unwrap(), fresh);
    assert_eq!(
        s.claim_event(&id, t0 + 1_000, WINDOW, STALE).await.unwrap(),
        EventClaim::InProgress
    );
    // Abandoned: taken over, keeping the first claim's time.
    let resumed = EventClaim::Claimed {
        first_claimed_at: t0,
        resumed: true,
    };
    assert_eq!(
        s.claim_event(&id, t0 + STALE + 1, WINDOW, STALE)
            .await
            .unwrap(),
        resumed
    );
    assert_eq!(
        s.claim_event(&id, t0 + STALE + 2, WINDOW, STALE)
            .await
            .unwrap(),
        EventClaim::InProgress,
        "the takeover is a fresh claim"
    );
    // Released: free at once, still with the first claim's time.
    s.release_event(&id).await.unwrap();
    assert_eq!(
        s.claim_event(&id, t0 + STALE + 3, WINDOW, STALE)
            .await
            .unwrap(),
        resumed
    );
    // Kept as written: numbers beyond f64 and repeated keys of an endpoint's answer included.
    let answer = RawJson::parse(&format!(
        r#"{{"id":"{id}","deliveries":3,"results":[{{"body":{{"n":12345678901234567890123,"k":1,"k":2}}}}]}}"#
    ))
    .unwrap();
    s.complete_event(&id, &answer).await.unwrap();
    s.release_event(&id).await.unwrap();
    assert_eq!(
        s.claim_event(&id, t0 + 2 * STALE, WINDOW, STALE)
            .await
            .unwrap(),
        EventClaim::Accepted(answer.clone()),
        "a completed claim repeats its answer and cannot be released"
    );
    // After the window the id is new again.
    assert_eq!(
        s.claim_event(&id, t0 + WINDOW, WINDOW, STALE)
            .await
            .unwrap(),
        EventClaim::Claimed {
            first_claimed_at: t0 + WINDOW,
            resumed: false,
        }
    );

    // A request's claims and answers, several at once.
    let ids: Vec<EventId> = (0..3)
        .map(|i| EventId::parse(&format!("evt_{}_{i}", ulid::Ulid::new())).unwrap())
        .collect();
    let claims = s.claim_events(&ids, t0, WINDOW, STALE).await.unwrap();
    assert_eq!(claims, vec![fresh.clone(); 3]);
    let answers: Vec<(EventId, RawJson)> = ids
        .iter()
        .map(|id| (id.clone(), RawJson::of(&json!({"id": id, "deliveries": 0}))))
        .collect();
    s.complete_events(&answers).await.unwrap();
    let again = s.claim_events(&ids, t0 + 1, WINDOW, STALE).await.unwrap();
    let repeated: Vec<EventClaim> = answers
        .into_iter()
        .map(|(_, a)| EventClaim::Accepted(a))
        .collect();
    assert_eq!(again, repeated);
}
