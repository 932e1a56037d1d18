//! The queue's ready index, in memory: every queued entry (a delivery row's `due_at`, or a
//! `jobs` row) ordered by when it is visible, so a receive takes what is due without reading
//! rows. It is rebuilt from the file when the database opens.

use crate::domain::delivery::Job;
use std::collections::{BTreeSet, HashMap};

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

struct Entry {
    visible_at: i64,
    /// Changes each time the entry is queued again: a receipt of an earlier one acknowledges
    /// nothing.
    generation: u64,
    receives: u32,
    /// Whether the file still holds the entry; a recorded attempt takes it off its row while
    /// it is in flight, and its acknowledgement then has nothing to write.
    held: bool,
    payload: Payload,
}

/// One entry handed out: its receipt, body and how many times it was handed out.
pub(crate) struct Taken {
    pub(crate) receipt: String,
    pub(crate) body: String,
    pub(crate) receives: u32,
}

#[derive(Default)]
pub(crate) struct Ready {
    entries: HashMap<Key, Entry>,
    order: BTreeSet<(i64, Key)>,
    generation: u64,
}

impl Ready {
    /// Queues `key`, visible at `visible_at`, replacing what it held.
    pub(crate) fn put(&mut self, key: Key, visible_at: i64, payload: Payload) {
        self.remove(key);
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
            payload: Payload::Delivery(queued),
            ..
        }) = self.entries.get(&key)
            && queued.attempt == job.attempt
            && queued.due_at == job.due_at
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
                dead.push((key, entry.payload.body(), entry.held));
                continue;
            }
            entry.receives += 1;
            entry.visible_at = hidden_until;
            self.order.insert((hidden_until, key));
            taken.push(Taken {
                receipt: receipt(key, entry.generation),
                body: entry.payload.body(),
                receives: entry.receives,
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
