//! The delivery log at volume through the API: cursor pages that cost O(page size), a `Link`
//! that keeps every filter, and exact totals.

use crate::support::pipeline;
use http::Method;
use serde_json::Value;
use std::collections::HashSet;
use webhooks::domain::catalog::EventName;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::{Delivery, DeliveryId, DeliveryStatus};
use webhooks::domain::event::EventId;
use webhooks::domain::hook::HookId;
use webhooks::ports::DeliveryLog;

pub fn deliveries(hook: &HookId, n: i64, status: DeliveryStatus) -> Vec<Delivery> {
    let now = now_ms();
    (0..n)
        .map(|i| {
            // Oldest first, 10 ms apart, the newest a second ago.
            let at = now - 1_000 - (n - i) * 10;
            Delivery {
                hook_id: hook.clone(),
                id: DeliveryId::derive(at, &EventId::generate(), hook),
                event_id: EventId::generate(),
                event: if i % 2 == 0 {
                    EventName::PostSignIn
                } else {
                    EventName::UserCreated
                },
                body: "{}".into(),
                status,
                attempts: vec![],
                next_attempt_at: None,
                reason: None,
                event_created_at: at,
                created_at: at,
                expires_at: at / 1000 + 86_400,
                sync: false,
            }
        })
        .collect()
}

/// The path and query of a `Link: <URL>; rel="next"` header.
fn next_of(link: Option<&http::HeaderValue>) -> Option<String> {
    let link = link?.to_str().unwrap();
    let url = link
        .strip_prefix('<')
        .and_then(|l| l.split_once(">; rel=\"next\""))
        .map(|(u, _)| u)
        .unwrap_or_else(|| panic!("not a next link: {link}"));
    let rest = url.split_once("://").unwrap().1;
    Some(rest[rest.find('/').unwrap()..].to_string())
}

#[tokio::test]
async fn the_log_pages_by_cursor_with_every_filter_kept() {
    let p = pipeline("logpages", "1s").await;
    let hook = p.create_hook("http://127.0.0.1:9/x", &["PostSignIn"]).await;
    let id = HookId::parse(hook["id"].as_str().unwrap()).unwrap();
    let made = deliveries(&id, 25, DeliveryStatus::Success);
    p.moto.store.insert_deliveries(&made).await.unwrap();

    let mut path = Some(format!(
        "/api/hooks/{id}/recent-logs?page_size=10&startTime=0"
    ));
    let (mut seen, mut pages) = (Vec::new(), 0);
    while let Some(next) = path {
        let r = p.admin(Method::GET, &next, None).await;
        assert_eq!(r.status, 200, "{}", r.body_json());
        let items = r.body_json();
        let items = items.as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(items.iter().map(|l| l["id"].as_str().unwrap().to_string()));
        pages += 1;
        path = next_of(r.headers.get("link"));
        // Exact on every page, as Logto's console computes its page count from it.
        assert_eq!(r.headers["total-number"], "25");
        assert!(r.headers.get("total-number-is-capped").is_none());
        if let Some(next) = &path {
            assert!(next.contains("startTime=0") && next.contains("page_size=10"));
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = made.iter().rev().map(|d| d.id.to_string()).collect();
    assert_eq!(seen, want, "every entry once, newest first");

    // A filter is kept across pages and applied by the store.
    let r = p
        .admin(
            Method::GET,
            &format!("/api/hooks/{id}/recent-logs?page_size=5&startTime=0&event=User.Created"),
            None,
        )
        .await;
    let mut entries: Vec<Value> = r.body_json().as_array().unwrap().clone();
    assert_eq!(entries.len(), 5);
    assert_eq!(r.headers["total-number"], "12", "the filter's count");
    let mut next = next_of(r.headers.get("link"));
    while let Some(path) = next {
        assert!(path.contains("event=User.Created"));
        let r = p.admin(Method::GET, &path, None).await;
        assert_eq!(r.headers["total-number"], "12");
        entries.extend(r.body_json().as_array().unwrap().iter().cloned());
        next = next_of(r.headers.get("link"));
    }
    assert!(entries.iter().all(|l| l["event"] == "User.Created"));
    let ids: HashSet<&str> = entries.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(entries.len(), 12, "the 12 User.Created entries");
    assert_eq!(ids.len(), 12, "none twice");

    // A listing that fits one page has an exact total.
    let r = p
        .admin(
            Method::GET,
            &format!("/api/hooks/{id}/recent-logs?page_size=100&startTime=0"),
            None,
        )
        .await;
    assert_eq!(r.headers["total-number"], "25");
    assert!(r.headers.get("total-number-is-capped").is_none());
    assert!(r.headers.get("link").is_none());
    // `page` still works from the newest entry.
    let r = p
        .admin(
            Method::GET,
            &format!("/api/hooks/{id}/recent-logs?page_size=10&page=3&startTime=0"),
            None,
        )
        .await;
    assert_eq!(r.body_json().as_array().unwrap().len(), 5);
    assert_eq!(r.headers["total-number"], "25");

    let r = p
        .admin(
            Method::GET,
            &format!("/api/hooks/{id}/recent-logs?cursor=not-a-cursor"),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body_json()["data"]["field"], "cursor");
}

#[tokio::test]
async fn hooks_page_by_cursor_newest_first_with_an_exact_total() {
    let p = pipeline("hookpages", "1s").await;
    let mut created = Vec::new();
    for _ in 0..23 {
        let hook = p.create_hook("http://127.0.0.1:9/x", &["PostSignIn"]).await;
        created.push(hook["id"].as_str().unwrap().to_string());
    }
    let mut path = Some("/api/hooks?page_size=10&includeExecutionStats=true".to_string());
    let (mut seen, mut pages) = (Vec::new(), 0);
    while let Some(next) = path {
        let r = p.admin(Method::GET, &next, None).await;
        assert_eq!(r.status, 200, "{}", r.body_json());
        assert_eq!(r.headers["total-number"], "23");
        let items = r.body_json();
        for hook in items.as_array().unwrap() {
            assert!(hook["executionStats"].is_object(), "filters are kept");
            seen.push(hook["id"].as_str().unwrap().to_string());
        }
        pages += 1;
        path = next_of(r.headers.get("link"));
    }
    assert_eq!(pages, 3);
    created.reverse();
    assert_eq!(
        seen, created,
        "every hook once, newest first (as Logto lists them)"
    );
    let r = p
        .admin(Method::GET, "/api/hooks?page=3&page_size=10", None)
        .await;
    assert_eq!(r.body_json().as_array().unwrap().len(), 3);
    let r = p.admin(Method::GET, "/api/hooks?cursor=bm9wZQ", None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body_json()["data"]["field"], "cursor");
}
