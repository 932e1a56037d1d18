//! The embedded store: everything in memory, optionally snapshotted to a directory so the
//! local dev server keeps hooks and deliveries across restarts. Same contract as DynamoDB.

use crate::catalog::EventName;
use crate::delivery::{Delivery, DeliveryId, DeliveryStatus, Job};
use crate::event::EventId;
use crate::hook::{Hook, HookId, HookPosition};
use crate::ports::{
    AttemptRecord, DeliveryFilter, EventClaim, ExecutionStats, Page, RecordOutcome, Store,
    StoreError,
};
use crate::recovery::{Recovery, RecoveryId, RecoveryStatus};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

const SNAPSHOT: &str = "store.json";
const FLUSH_EVERY: Duration = Duration::from_millis(200);

#[derive(Default, Serialize, Deserialize)]
struct State {
    hooks: BTreeMap<HookId, Hook>,
    /// Per hook, deliveries by id (ids sort by creation time).
    deliveries: BTreeMap<HookId, BTreeMap<DeliveryId, Delivery>>,
    #[serde(default)]
    events: BTreeMap<EventId, EventRecord>,
    /// Per hook, (requests, successes) by unix hour.
    #[serde(default)]
    stats: BTreeMap<HookId, BTreeMap<i64, (u64, u64)>>,
    #[serde(default)]
    recoveries: BTreeMap<RecoveryId, Recovery>,
}

#[derive(Serialize, Deserialize)]
struct EventRecord {
    /// 0 once released: free to take over at once.
    claimed_at: i64,
    #[serde(default)]
    first_claimed_at: Option<i64>,
    window_ends_at: i64,
    answer: Option<serde_json::Value>,
}

pub struct MemoryStore {
    state: Mutex<State>,
    snapshot: Option<Snapshot>,
}

struct Snapshot {
    path: PathBuf,
    changed: Arc<Notify>,
    dirty: AtomicBool,
}

impl MemoryStore {
    /// A store that lives and dies with the process.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            snapshot: None,
        })
    }

    /// A store persisted under `dir`: loaded now, written shortly after every change.
    pub async fn open(dir: &Path) -> std::io::Result<Arc<Self>> {
        tokio::fs::create_dir_all(dir).await?;
        let path = dir.join(SNAPSHOT);
        let state = match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a valid snapshot: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e),
        };
        let changed = Arc::new(Notify::new());
        let store = Arc::new(Self {
            state: Mutex::new(state),
            snapshot: Some(Snapshot {
                path,
                changed: changed.clone(),
                dirty: AtomicBool::new(false),
            }),
        });
        let weak = Arc::downgrade(&store);
        tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(Duration::from_secs(5), changed.notified()).await;
                tokio::time::sleep(FLUSH_EVERY).await;
                let Some(store) = weak.upgrade() else { break };
                if let Err(e) = store.flush().await {
                    tracing::error!(error = %e, "could not write the store snapshot");
                }
            }
        });
        Ok(store)
    }

    /// Writes the snapshot now (atomically, by rename) if anything changed since the last one.
    pub async fn flush(&self) -> std::io::Result<()> {
        let Some(snapshot) = &self.snapshot else {
            return Ok(());
        };
        if !snapshot.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let bytes = {
            let mut state = self.lock();
            let now_s = crate::clock::now_ms() / 1000;
            for deliveries in state.deliveries.values_mut() {
                deliveries.retain(|_, d| d.expires_at > now_s);
            }
            state.events.retain(|_, e| e.window_ends_at > now_s * 1000);
            serde_json::to_vec(&*state).map_err(std::io::Error::other)?
        };
        let tmp = snapshot.path.with_extension("json.tmp");
        let written = async {
            tokio::fs::write(&tmp, bytes).await?;
            tokio::fs::rename(&tmp, &snapshot.path).await
        }
        .await;
        if written.is_err() {
            snapshot.dirty.store(true, Ordering::Release);
        }
        written
    }

    /// Jobs for every pending delivery: re-queues work after a restart.
    pub fn pending_jobs(&self, now_ms: i64) -> Vec<Job> {
        self.lock()
            .deliveries
            .values()
            .flat_map(|m| m.values())
            .filter(|d| d.status == DeliveryStatus::Pending)
            .map(|d| Job::for_delivery(d, d.next_attempt_at.unwrap_or(now_ms)))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self) {
        if let Some(s) = &self.snapshot {
            s.dirty.store(true, Ordering::Release);
            s.changed.notify_one();
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_hook(&self, hook: &Hook) -> Result<(), StoreError> {
        {
            let mut state = self.lock();
            if state.hooks.contains_key(&hook.id) {
                return Err(StoreError::AlreadyExists);
            }
            state.hooks.insert(hook.id.clone(), hook.clone());
        }
        self.changed();
        Ok(())
    }

    async fn get_hook(&self, id: &HookId) -> Result<Option<Hook>, StoreError> {
        Ok(self.lock().hooks.get(id).cloned())
    }

    async fn page_hooks(
        &self,
        after: Option<&HookPosition>,
        limit: usize,
    ) -> Result<Page<Hook, HookPosition>, StoreError> {
        let mut hooks: Vec<Hook> = self
            .lock()
            .hooks
            .values()
            .filter(|h| after.is_none_or(|a| &HookPosition::of(h) > a))
            .cloned()
            .collect();
        hooks.sort_by_key(HookPosition::of);
        let next = (hooks.len() > limit).then(|| HookPosition::of(&hooks[limit - 1]));
        hooks.truncate(limit);
        Ok(Page { items: hooks, next })
    }

    async fn count_hooks(&self) -> Result<u64, StoreError> {
        Ok(self.lock().hooks.len() as u64)
    }

    async fn update_hook(&self, previous: &Hook, next: &Hook) -> Result<(), StoreError> {
        {
            let mut state = self.lock();
            match state.hooks.get_mut(&previous.id) {
                Some(current) if current.updated_at == previous.updated_at => {
                    *current = next.clone()
                }
                _ => return Err(StoreError::Conflict),
            }
        }
        self.changed();
        Ok(())
    }

    async fn delete_hook(&self, hook: &Hook) -> Result<bool, StoreError> {
        let existed = self.lock().hooks.remove(&hook.id).is_some();
        self.changed();
        Ok(existed)
    }

    async fn subscribers(&self, event: EventName) -> Result<Vec<HookId>, StoreError> {
        Ok(self
            .lock()
            .hooks
            .values()
            .filter(|h| h.enabled && h.events.contains(&event))
            .map(|h| h.id.clone())
            .collect())
    }

    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        {
            let mut state = self.lock();
            for d in deliveries {
                state
                    .deliveries
                    .entry(d.hook_id.clone())
                    .or_default()
                    .insert(d.id.clone(), d.clone());
            }
        }
        self.changed();
        Ok(())
    }

    async fn insert_missing_deliveries(
        &self,
        deliveries: &[Delivery],
    ) -> Result<Vec<(Delivery, bool)>, StoreError> {
        let stored = {
            let mut state = self.lock();
            deliveries
                .iter()
                .map(|d| {
                    let records = state.deliveries.entry(d.hook_id.clone()).or_default();
                    match records.get(&d.id) {
                        Some(existing) => (existing.clone(), false),
                        None => {
                            records.insert(d.id.clone(), d.clone());
                            (d.clone(), true)
                        }
                    }
                })
                .collect()
        };
        self.changed();
        Ok(stored)
    }

    async fn delete_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        {
            let mut state = self.lock();
            for d in deliveries {
                if let Some(m) = state.deliveries.get_mut(&d.hook_id) {
                    m.remove(&d.id);
                }
            }
        }
        self.changed();
        Ok(())
    }

    async fn get_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        Ok(self
            .lock()
            .deliveries
            .get(hook)
            .and_then(|m| m.get(id))
            .cloned())
    }

    async fn record_attempt(&self, record: &AttemptRecord) -> Result<RecordOutcome, StoreError> {
        {
            let mut state = self.lock();
            let Some(d) = state
                .deliveries
                .get_mut(&record.hook_id)
                .and_then(|m| m.get_mut(&record.delivery_id))
            else {
                return Ok(RecordOutcome::AlreadyRecorded);
            };
            if d.status != DeliveryStatus::Pending || d.attempt_count() != record.expected_attempts
            {
                return Ok(RecordOutcome::AlreadyRecorded);
            }
            d.attempts.extend(record.attempt.clone());
            d.status = record.status;
            d.next_attempt_at = record.next_attempt_at;
            d.reason = record.reason.clone();
        }
        self.changed();
        Ok(RecordOutcome::Recorded)
    }

    async fn page_deliveries(
        &self,
        hook: &HookId,
        filter: &DeliveryFilter,
        after: Option<&DeliveryId>,
        limit: usize,
    ) -> Result<Page<Delivery>, StoreError> {
        let state = self.lock();
        let Some(m) = state.deliveries.get(hook) else {
            return Ok(Page::default());
        };
        let low = DeliveryId::lowest_at(filter.from_ms);
        let mut high = DeliveryId::highest_at(filter.to_ms);
        if let Some(after) = after {
            match after.predecessor() {
                Some(before) => high = high.min(before),
                None => return Ok(Page::default()),
            }
        }
        if low > high {
            return Ok(Page::default());
        }
        let mut matching = m
            .range(low..=high)
            .rev()
            .map(|(_, d)| d)
            .filter(|d| filter.matches(d));
        let items: Vec<Delivery> = matching.by_ref().take(limit).cloned().collect();
        let next = match matching.next() {
            Some(_) => items.last().map(|d| d.id.clone()),
            None => None,
        };
        Ok(Page { items, next })
    }

    async fn reopen_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
        now_ms: i64,
        expected_attempts: Option<u32>,
    ) -> Result<Option<Delivery>, StoreError> {
        let reopened = {
            let mut state = self.lock();
            let Some(d) = state.deliveries.get_mut(hook).and_then(|m| m.get_mut(id)) else {
                return Ok(None);
            };
            if d.status == DeliveryStatus::Pending
                || expected_attempts.is_some_and(|n| d.attempt_count() != n)
            {
                return Err(StoreError::Conflict);
            }
            d.status = DeliveryStatus::Pending;
            d.next_attempt_at = Some(now_ms);
            d.reason = None;
            d.clone()
        };
        self.changed();
        Ok(Some(reopened))
    }

    async fn create_recovery(&self, recovery: &Recovery) -> Result<(), StoreError> {
        {
            let mut state = self.lock();
            if state.recoveries.contains_key(&recovery.id) {
                return Err(StoreError::AlreadyExists);
            }
            state
                .recoveries
                .insert(recovery.id.clone(), recovery.clone());
        }
        self.changed();
        Ok(())
    }

    async fn get_recovery(
        &self,
        hook: &HookId,
        id: &RecoveryId,
    ) -> Result<Option<Recovery>, StoreError> {
        Ok(self
            .lock()
            .recoveries
            .get(id)
            .filter(|r| &r.hook_id == hook)
            .cloned())
    }

    async fn advance_recovery(
        &self,
        hook: &HookId,
        id: &RecoveryId,
        from: Option<&DeliveryId>,
        to: Option<&DeliveryId>,
        resent: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        {
            let mut state = self.lock();
            let Some(r) = state.recoveries.get_mut(id).filter(|r| &r.hook_id == hook) else {
                return Ok(false);
            };
            if r.status != RecoveryStatus::Running || r.cursor.as_ref() != from {
                return Ok(false);
            }
            r.cursor = to.cloned();
            r.resent += resent;
            r.steps += 1;
            r.updated_at = now_ms;
            if to.is_none() {
                r.status = RecoveryStatus::Done;
            }
        }
        self.changed();
        Ok(true)
    }

    async fn claim_event(
        &self,
        id: &EventId,
        now_ms: i64,
        window_ms: i64,
        stale_ms: i64,
    ) -> Result<EventClaim, StoreError> {
        let claim = {
            let mut state = self.lock();
            match state.events.get_mut(id) {
                Some(existing) if existing.window_ends_at > now_ms => {
                    if let Some(answer) = &existing.answer {
                        return Ok(EventClaim::Accepted(answer.clone()));
                    }
                    if existing.claimed_at + stale_ms > now_ms {
                        return Ok(EventClaim::InProgress);
                    }
                    let first = existing.first_claimed_at.unwrap_or(existing.claimed_at);
                    existing.claimed_at = now_ms;
                    existing.first_claimed_at = Some(first);
                    EventClaim::Claimed {
                        first_claimed_at: first,
                        resumed: true,
                    }
                }
                _ => {
                    state.events.insert(
                        id.clone(),
                        EventRecord {
                            claimed_at: now_ms,
                            first_claimed_at: Some(now_ms),
                            window_ends_at: now_ms + window_ms,
                            answer: None,
                        },
                    );
                    EventClaim::Claimed {
                        first_claimed_at: now_ms,
                        resumed: false,
                    }
                }
            }
        };
        self.changed();
        Ok(claim)
    }

    async fn complete_event(
        &self,
        id: &EventId,
        answer: &serde_json::Value,
    ) -> Result<(), StoreError> {
        if let Some(e) = self.lock().events.get_mut(id) {
            e.answer = Some(answer.clone());
        }
        self.changed();
        Ok(())
    }

    async fn release_event(&self, id: &EventId) -> Result<(), StoreError> {
        if let Some(e) = self.lock().events.get_mut(id)
            && e.answer.is_none()
        {
            e.claimed_at = 0;
        }
        self.changed();
        Ok(())
    }

    async fn count_attempt(
        &self,
        hook: &HookId,
        at_ms: i64,
        succeeded: bool,
    ) -> Result<(), StoreError> {
        {
            let mut state = self.lock();
            let hour = at_ms.div_euclid(3_600_000);
            let counters = state
                .stats
                .entry(hook.clone())
                .or_default()
                .entry(hour)
                .or_default();
            counters.0 += 1;
            counters.1 += u64::from(succeeded);
        }
        self.changed();
        Ok(())
    }

    async fn execution_stats(
        &self,
        hook: &HookId,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<ExecutionStats, StoreError> {
        let state = self.lock();
        let mut stats = ExecutionStats::default();
        if let Some(hours) = state.stats.get(hook) {
            for (_, (requests, successes)) in hours.range(from_hour..=to_hour) {
                stats.request_count += requests;
                stats.success_count += successes;
            }
        }
        Ok(stats)
    }
}
