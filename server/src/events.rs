//! The event stream (Nomad's `/v1/event/stream`): every change of a job, allocation,
//! evaluation or node writes an event in the same transaction, under a versionstamped key,
//! so the stream is exactly the commit order — nothing lost, nothing invented — and an
//! event's index is the commit version of its change.
//!
//! ```text
//! (st, 7 EVENTS, 0 LOG, versionstamp, topic, namespace, key, type, (filter keys)) → payload
//! (st, 7 EVENTS, 1 LAST)                                           → versionstamp of the latest event
//! (st, 7 EVENTS, 2 MARKS, unix_ns)                                 → read version then (for trimming)
//! ```
//!
//! A transaction that writes the same (topic, namespace, key, type) twice keeps the last:
//! one event per record and type per commit, carrying the record as committed. The
//! payload is the record in the store's encoding, the very bytes of the record when the
//! writer has them (a placement's prepared record: shared, not copied, in memory);
//! readers decode it by topic into Nomad's JSON (`{"Payload": {"Allocation": {...}}}`).
//!
//! Events are kept for [`EVENTS_RETENTION`]; the GC duty trims older ones.

use std::time::Duration;

use bytes::Bytes;

use serde::Serialize;
use stead_store::model::{Allocation, Evaluation, Job, Node};
use stead_store::schema::{Area, encoding};
use stead_store::tuple::{Subspace, Versionstamp as TupleStamp};
use stead_store::{RangeOption, ReadMode, Transaction};

use crate::error::{Result, ServerError};
use crate::keys::{STAMP_VALUE_TEMPLATE, Store};

/// The events' area.
pub const AREA_EVENTS: Area = Area(7);
const LOG: i64 = 0;
const LAST: i64 = 1;
const MARKS: i64 = 2;

/// How long events are kept (Nomad keeps a buffer of the latest events; a reader that
/// resumes from an older index starts at the oldest kept).
pub const EVENTS_RETENTION: Duration = Duration::from_secs(3600);

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Topic {
    Job,
    Allocation,
    Evaluation,
    Node,
    Deployment,
}

impl Topic {
    pub const ALL: [Topic; 5] = [Topic::Job, Topic::Allocation, Topic::Evaluation, Topic::Node, Topic::Deployment];

    pub fn name(self) -> &'static str {
        match self {
            Topic::Job => "Job",
            Topic::Allocation => "Allocation",
            Topic::Evaluation => "Evaluation",
            Topic::Node => "Node",
            Topic::Deployment => "Deployment",
        }
    }

    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }

    fn id(self) -> i64 {
        self as i64
    }

    fn from_id(id: i64) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.id() == id)
    }
}

/// An event being written.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub topic: Topic,
    /// Nomad's type: `JobRegistered`, `PlanResult`, `AllocationUpdated`, …
    pub event_type: &'a str,
    pub key: &'a str,
    pub namespace: &'a str,
    /// Other values a subscription may filter on (a job's ID for its allocations).
    pub filter_keys: &'a [&'a str],
}

fn area(store: &Store) -> Subspace {
    store.ks.area(AREA_EVENTS)
}

fn log(store: &Store) -> Subspace {
    area(store).subspace(&LOG)
}

/// The key events' watchers wait on.
pub fn last_key(store: &Store) -> Vec<u8> {
    area(store).pack(&LAST)
}

/// Writes `event` with `payload` (the record it is about) in `tx`: blind writes, never a
/// conflict.
pub fn emit<T: Serialize>(store: &Store, tx: &Transaction, event: NewEvent<'_>, payload: &T) -> Result<()> {
    let bytes = encoding::encode(payload).map_err(|reason| ServerError::Corrupt { what: "event".into(), reason })?;
    emit_encoded(store, tx, event, Bytes::from(bytes));
    Ok(())
}

/// [`emit`] with the payload already in the store's encoding (a placement's prepared
/// record, whose bytes the event shares).
pub fn emit_encoded(store: &Store, tx: &Transaction, event: NewEvent<'_>, payload: Bytes) {
    let key = log(store).pack_with_versionstamp(&(
        TupleStamp::incomplete(0),
        event.topic.id(),
        event.namespace,
        event.key,
        event.event_type,
        event.filter_keys,
    ));
    tx.set_versionstamped_key_owned(key, payload);
    tx.set_versionstamped_value(&last_key(store), &STAMP_VALUE_TEMPLATE);
}

/// An event as read back, in Nomad's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    pub topic: String,
    #[serde(rename = "Type")]
    pub event_type: String,
    pub key: String,
    pub namespace: String,
    pub filter_keys: Vec<String>,
    pub index: u64,
    pub payload: serde_json::Value,
}

fn corrupt(reason: impl Into<String>) -> ServerError {
    ServerError::Corrupt { what: "event".to_owned(), reason: reason.into() }
}

fn decode_payload(topic: Topic, bytes: &[u8], index: u64) -> Result<serde_json::Value> {
    fn json<T: Serialize + serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<serde_json::Value> {
        let record: T = encoding::decode(bytes).map_err(corrupt)?;
        serde_json::to_value(record).map_err(|e| corrupt(e.to_string()))
    }
    let mut value = match topic {
        Topic::Job => json::<Job>(bytes)?,
        Topic::Allocation => json::<Allocation>(bytes)?,
        Topic::Evaluation => json::<Evaluation>(bytes)?,
        Topic::Node => json::<Node>(bytes)?,
        Topic::Deployment => json::<stead_store::model::Deployment>(bytes)?,
    };
    // The record was encoded before its commit: its modify index is the event's.
    if let Some(obj) = value.as_object_mut() {
        if obj.get("ModifyIndex").and_then(serde_json::Value::as_u64) == Some(0) {
            obj.insert("ModifyIndex".to_owned(), index.into());
        }
        if obj.get("CreateIndex").and_then(serde_json::Value::as_u64) == Some(0) {
            obj.insert("CreateIndex".to_owned(), index.into());
        }
        obj.remove("SecretID");
    }
    Ok(serde_json::json!({ topic.name(): value }))
}

fn decode(store: &Store, key: &[u8], value: &[u8]) -> Result<Event> {
    let (stamp, topic, namespace, ekey, event_type, filter_keys): (
        TupleStamp,
        i64,
        String,
        String,
        String,
        Vec<String>,
    ) = log(store).unpack(key).map_err(|e| corrupt(format!("key: {e}")))?;
    let topic = Topic::from_id(topic).ok_or_else(|| corrupt(format!("unknown topic {topic}")))?;
    let mut v = [0u8; 8];
    v.copy_from_slice(&stamp.transaction_version()[..8]);
    let index = u64::from_be_bytes(v);
    let payload = decode_payload(topic, value, index)?;
    Ok(Event { topic: topic.name().to_owned(), event_type, key: ekey, namespace, filter_keys, index, payload })
}

/// A subscription's filter: `Topic:Key` pairs (`*` for any topic or key); empty means
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub topics: Vec<(String, String)>,
    /// Only events of this namespace (`*` or empty: any); node events have none and pass.
    pub namespace: String,
}

impl Filter {
    /// Parses Nomad's `topic=Topic:FilterKey` values.
    pub fn parse(topics: &[String], namespace: &str) -> Result<Filter> {
        let mut out = Vec::new();
        for t in topics {
            let (topic, key) = t.split_once(':').unwrap_or((t.as_str(), "*"));
            if topic != "*" && Topic::from_name(topic).is_none() {
                return Err(ServerError::Invalid(format!(
                    "topic {topic:?} is not an event topic (Job, Allocation, Evaluation, Node, Deployment or *)"
                )));
            }
            out.push((topic.to_owned(), if key.is_empty() { "*".to_owned() } else { key.to_owned() }));
        }
        Ok(Filter { topics: out, namespace: namespace.to_owned() })
    }

    pub fn matches(&self, e: &Event) -> bool {
        let ns_ok = self.namespace.is_empty()
            || self.namespace == "*"
            || e.namespace.is_empty()
            || e.namespace == self.namespace;
        ns_ok
            && (self.topics.is_empty()
                || self.topics.iter().any(|(topic, key)| {
                    (topic == "*" || *topic == e.topic)
                        && (key == "*" || *key == e.key || e.filter_keys.iter().any(|k| k == key))
                }))
    }
}

/// Events read per call at most.
pub const EVENTS_PER_READ_MAX: usize = 1_000;

/// Up to `limit` events committed after `after`, oldest first, and the index read up to.
pub async fn read_after(store: &Store, tx: &Transaction, after: u64, limit: usize) -> Result<Vec<Event>> {
    let next = stead_store::Versionstamp::new(i64::try_from(after).unwrap_or(i64::MAX).saturating_add(1), 0);
    let begin = log(store).pack(&(TupleStamp::complete(next.0, 0),));
    let (_, end) = log(store).range();
    let range = RangeOption::new(begin, end).limit(limit.min(EVENTS_PER_READ_MAX));
    let kvs = tx.get_range(&range, ReadMode::Snapshot).await?.key_values;
    kvs.iter().map(|kv| decode(store, &kv.key, &kv.value)).collect()
}

/// The events of one commit, as the stream sends them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Batch {
    pub index: u64,
    pub events: Vec<Event>,
}

/// Groups events by commit, dropping those `filter` refuses; the index the reader got to.
pub fn batches(events: Vec<Event>, filter: &Filter) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    for e in events {
        if !filter.matches(&e) {
            continue;
        }
        match out.last_mut() {
            Some(b) if b.index == e.index => b.events.push(e),
            _ => out.push(Batch { index: e.index, events: vec![e] }),
        }
    }
    out
}

/// The next events after `after` that pass `filter`, waiting up to `wait` for some; with
/// the index to resume from (past any events the filter dropped).
pub async fn next_batches(store: &Store, after: u64, filter: &Filter, wait: Duration) -> Result<(Vec<Batch>, u64)> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut after = after;
    loop {
        let tx = store.db.create_transaction()?;
        let events = read_after(store, &tx, after, EVENTS_PER_READ_MAX).await?;
        if let Some(last) = events.last() {
            after = last.index;
            // A read cut by the limit may end inside a commit: finish that commit.
            let full = events.len() >= EVENTS_PER_READ_MAX;
            let mut events = events;
            if full {
                events.retain(|e| e.index < after);
                after = events.last().map_or(after, |e| e.index);
                if events.is_empty() {
                    // One commit with more events than a read: take it in one go.
                    let all = read_commit(store, &tx, after).await?;
                    return Ok((batches(all, filter), after));
                }
            }
            let out = batches(events, filter);
            if !out.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok((out, after));
            }
            continue;
        }
        let watch = tx.watch(&last_key(store));
        tx.commit().await?;
        tokio::select! {
            biased;
            _ = watch => {}
            () = tokio::time::sleep_until(deadline) => return Ok((Vec::new(), after)),
        }
    }
}

/// Every event of the commit at `index`.
async fn read_commit(store: &Store, tx: &Transaction, index: u64) -> Result<Vec<Event>> {
    let mut out = Vec::new();
    let mut after_key: Option<Vec<u8>> = None;
    loop {
        let begin = match &after_key {
            Some(k) => {
                let mut k = k.clone();
                k.push(0);
                k
            }
            None => log(store).pack(&(TupleStamp::complete(stead_store::Versionstamp::new(index as i64, 0).0, 0),)),
        };
        let end = log(store).pack(&(TupleStamp::complete(stead_store::Versionstamp::new(index as i64 + 1, 0).0, 0),));
        let kvs = tx.get_range(&RangeOption::new(begin, end).limit(EVENTS_PER_READ_MAX), ReadMode::Snapshot).await?;
        for kv in &kvs.key_values {
            out.push(decode(store, &kv.key, &kv.value)?);
        }
        match kvs.key_values.last() {
            Some(kv) if kvs.more => after_key = Some(kv.key.to_vec()),
            _ => return Ok(out),
        }
    }
}

/// Trims events older than `retention` (the GC duty calls it): records a (time, version)
/// mark now, and clears the events below the newest mark older than `retention`.
pub async fn trim(store: &Store, tx: &Transaction, now_ns: i64, retention: Duration) -> Result<()> {
    let marks = area(store).subspace(&MARKS);
    let version = tx.get_read_version().await?;
    tx.set(&marks.pack(&now_ns), &version.to_be_bytes());
    let cutoff_ns = now_ns.saturating_sub(i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX));
    let (begin, _) = marks.range();
    let old = tx.get_range(&RangeOption::new(begin.clone(), marks.pack(&cutoff_ns)), ReadMode::Snapshot).await?;
    let Some(newest_old) = old.key_values.last() else { return Ok(()) };
    let Ok(bytes) = <[u8; 8]>::try_from(newest_old.value.as_ref()) else { return Ok(()) };
    let cutoff_version = i64::from_be_bytes(bytes);
    let (log_begin, _) = log(store).range();
    // Everything committed at or before the mark's read version is older than the mark.
    let log_end = log(store)
        .pack(&(TupleStamp::complete(stead_store::Versionstamp::new(cutoff_version.saturating_add(1), 0).0, 0),));
    tx.clear_range(&log_begin, &log_end);
    tx.clear_range(&begin, newest_old.key.as_ref());
    Ok(())
}

/// The event of a job's change.
pub fn job_event<'a>(job: &'a Job, event_type: &'a str) -> NewEvent<'a> {
    NewEvent { topic: Topic::Job, event_type, key: job.id.as_str(), namespace: &job.namespace, filter_keys: &[] }
}

/// Writes an allocation's event (filterable by its job).
pub fn emit_alloc(store: &Store, tx: &Transaction, alloc: &Allocation, event_type: &str) -> Result<()> {
    let job = [alloc.job_id.as_str()];
    let event = NewEvent {
        topic: Topic::Allocation,
        event_type,
        key: alloc.id.as_str(),
        namespace: &alloc.namespace,
        filter_keys: &job,
    };
    emit(store, tx, event, alloc)
}

/// Writes a node's event.
pub fn emit_node(store: &Store, tx: &Transaction, node: &Node, event_type: &str) -> Result<()> {
    let event = NewEvent { topic: Topic::Node, event_type, key: node.id.as_str(), namespace: "", filter_keys: &[] };
    emit(store, tx, event, node)
}
