//! The queue's ready index, in memory: every queued entry (a delivery row's `due_at`, or a
//! `jobs` row) ordered by when it is visible, so a receive takes what is due without reading
//! rows. It is rebuilt from the file when the database opens. A backlog of millions of
//! deliveries lives here, so an entry is small (a delivery's hook is an index into the hooks
//! seen) and the map is a B-tree, which grows without doubling.

use crate::domain::delivery::{DeliveryId, Job};
use crate::domain::hook::HookId;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A queued entry: a delivery row (by `seq`) or a `jobs` row (by `id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Key {
    Delivery(i64),
    Job(i64),
}

/// What a receive hands out: a delivery row's next attempt, or a job's JSON.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    Delivery(Job),
    Job(String),
}

impl Payload {
    pub(crate) fn body(&self) -> String {
        match self {
            Payload::Delivery(job) => serde_json::to_string(job).expect("jobs serialize"),
            Payload::Job(body) => body.clone(),
        }
    }
}

/// A payload as an entry keeps it.
enum Stored {
    /// A delivery's next attempt (neither a re-send nor deferred to a rate-limit slot).
    Delivery {
        hook: u32,
        delivery_id: DeliveryId,
        attempt: u32,
        due_at: i64,
    },
    Job(Box<str>),
}

struct Entry {
    visible_at: i64,
    /// Changes each time the entry is queued again: a receipt of an earlier one acknowledges
    /// nothing.
    generation: u64,
    receives: u32,
    /// Whether the file still holds the entry; a recorded attempt takes it off its row while
    /// it is in flight, and its acknowledgement then has nothing to write.
    held: bool,
    payload: Stored,
}

/// One entry handed out: its receipt, body and how many times it was handed out.
pub(crate) struct Taken {
    pub(crate) receipt: String,
    pub(crate) body: String,
    pub(crate) receives: u32,
}

#[derive(Default)]
pub(crate) struct Ready {
    entries: BTreeMap<Key, Entry>,
    order: BTreeSet<(i64, Key)>,
    generation: u64,
    /// The hooks of queued deliveries, by index.
    hooks: Vec<HookId>,
    hook_index: HashMap<HookId, u32>,
}

impl Ready {
    fn store(&mut self, payload: Payload) -> Stored {
        match payload {
            Payload::Delivery(job) if !job.reopen && job.rate_slot.is_none() => {
                let hook = match self.hook_index.get(&job.hook_id) {
                    Some(&i) => i,
                    None => {
                        let i = u32::try_from(self.hooks.len()).expect("fewer than 2^32 hooks");
                        self.hooks.push(job.hook_id.clone());
                        self.hook_index.insert(job.hook_id, i);
                        i
                    }
                };
                Stored::Delivery {
                    hook,
                    delivery_id: job.delivery_id,
                    attempt: job.attempt,
                    due_at: job.due_at,
                }
            }
            payload => Stored::Job(payload.body().into()),
        }
    }

    fn body(&self, stored: &Stored) -> String {
        match stored {
            Stored::Delivery {
                hook,
                delivery_id,
                attempt,
                due_at,
            } => Payload::Delivery(Job {
                hook_id: self.hooks[*hook as usize].clone(),
                delivery_id: delivery_id.clone(),
                attempt: *attempt,
                due_at: *due_at,
                reopen: false,
                rate_slot: None,
            })
            .body(),
            Stored::Job(body) => body.to_string(),
        }
    }

    /// Queues `key`, visible at `visible_at`, replacing what it held.
    pub(crate) fn put(&mut self, key: Key, visible_at: i64, payload: Payload) {
        self.remove(key);
        let payload = self.store(payload);
        self.generation += 1;
        self.order.insert((visible_at, key));
        self.entries.insert(
            key,
            Entry {
                visible_at,
                generation: self.generation,
                receives: 0,
                held: true,
                payload,
            },
        );
    }

    /// Queues a delivery's next attempt, unless exactly that attempt is queued already (in
    /// flight or not): the same job queued twice is one entry.
    pub(crate) fn put_delivery(&mut self, seq: i64, job: Job) {
        let key = Key::Delivery(seq);
        if let Some(Entry {
            payload: Stored::Delivery {
                attempt, due_at, ..
            },
            ..
        }) = self.entries.get(&key)
            && *attempt == job.attempt
            && *due_at == job.due_at
        {
            return;
        }
        self.put(key, job.due_at, Payload::Delivery(job));
    }

    /// The file no longer holds the entry: gone, unless it is in flight, when it stays (to
    /// come back should its processing fail) until acknowledged.
    pub(crate) fn release(&mut self, key: Key) {
        match self.entries.get_mut(&key) {
            Some(entry) if entry.receives > 0 => entry.held = false,
            _ => self.remove(key),
        }
    }

    pub(crate) fn remove(&mut self, key: Key) {
        if let Some(entry) = self.entries.remove(&key) {
            self.order.remove(&(entry.visible_at, key));
        }
    }

    /// Takes up to `max` visible entries and hides them until `hidden_until`; entries received
    /// `max_receives` times already are removed and returned as dead instead, with whether the
    /// file still holds them.
    pub(crate) fn take(
        &mut self,
        now: i64,
        max: usize,
        hidden_until: i64,
        max_receives: u32,
    ) -> (Vec<Taken>, Vec<(Key, String, bool)>) {
        let mut taken = Vec::new();
        let mut dead = Vec::new();
        while taken.len() < max {
            let Some(&(visible_at, key)) = self.order.first() else {
                break;
            };
            if visible_at > now {
                break;
            }
            self.order.pop_first();
            let entry = self.entries.get_mut(&key).expect("ordered entries exist");
            if entry.receives >= max_receives {
                let entry = self.entries.remove(&key).expect("present");
                dead.push((key, self.body(&entry.payload), entry.held));
                continue;
            }
            entry.receives += 1;
            entry.visible_at = hidden_until;
            let (receipt, receives) = (receipt(key, entry.generation), entry.receives);
            self.order.insert((hidden_until, key));
            let body = self.body(&self.entries[&key].payload);
            taken.push(Taken {
                receipt,
                body,
                receives,
            });
        }
        (taken, dead)
    }

    /// When the next entry becomes visible.
    pub(crate) fn next_visible(&self) -> Option<i64> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Removes the entry a receipt names, if it is still the one received; returns its key
    /// when the file still holds it.
    pub(crate) fn acknowledge(&mut self, receipt: &str) -> Option<Key> {
        let (key, generation) = parse_receipt(receipt)?;
        let entry = self.entries.get(&key)?;
        if entry.generation != generation {
            return None;
        }
        let held = entry.held;
        self.remove(key);
        held.then_some(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

fn receipt(key: Key, generation: u64) -> String {
    match key {
        Key::Delivery(seq) => format!("d{seq}.{generation}"),
        Key::Job(id) => format!("j{id}.{generation}"),
    }
}

fn parse_receipt(receipt: &str) -> Option<(Key, u64)> {
    let (key, generation) = receipt.split_once('.')?;
    let generation = generation.parse().ok()?;
    let key = match key.split_at_checked(1)? {
        ("d", seq) => Key::Delivery(seq.parse().ok()?),
        ("j", id) => Key::Job(id.parse().ok()?),
        _ => return None,
    };
    Some((key, generation))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(hook: &HookId, attempt: u32, due_at: i64) -> Job {
        Job {
            hook_id: hook.clone(),
            delivery_id: DeliveryId::generate(),
            attempt,
            due_at,
            reopen: false,
            rate_slot: None,
        }
    }

    fn taken_jobs(ready: &mut Ready) -> Vec<Job> {
        let (taken, _) = ready.take(100, 10, 1_000, 5);
        taken
            .iter()
            .map(|t| serde_json::from_str(&t.body).unwrap())
            .collect()
    }

    #[test]
    fn deliveries_come_back_as_queued_in_due_order() {
        let (a, b) = (HookId::generate(), HookId::generate());
        let mut ready = Ready::default();
        let queued = [job(&a, 2, 30), job(&b, 1, 10), job(&a, 1, 20)];
        for (seq, j) in queued.iter().enumerate() {
            ready.put_delivery(seq as i64, j.clone());
        }
        let mut reopened = job(&b, 3, 40);
        reopened.reopen = true;
        let mut deferred = job(&a, 1, 50);
        deferred.rate_slot = Some(50);
        ready.put_delivery(7, reopened.clone());
        ready.put_delivery(8, deferred.clone());
        assert_eq!(ready.hooks.len(), 2, "each hook is kept once");
        assert_eq!(
            taken_jobs(&mut ready),
            vec![
                queued[1].clone(),
                queued[2].clone(),
                queued[0].clone(),
                reopened,
                deferred
            ]
        );
    }
}
