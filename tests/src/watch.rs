//! Watch events: every stored change is published to the cluster's hub with its
//! resourceVersion, and `?watch=true` requests stream the matching ones as newline-delimited
//! `{"type","object"}` JSON. A bounded history lets a watch resume from the resourceVersion of a
//! preceding list without missing changes; resuming from before the history is a 410 Expired, as
//! on a real server (clients then list again).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// How many past events a watch can resume from.
const HISTORY: usize = 1024;

/// One change.
#[derive(Debug, Clone)]
pub struct Event {
    /// API group of the object.
    pub group: String,
    /// Resource plural.
    pub plural: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object after the change (for deletions: as it was, stamped with the deletion's
    /// resourceVersion).
    pub object: Value,
    /// resourceVersion of the change.
    pub rv: u64,
}

impl Event {
    /// The wire form of a watch event.
    pub fn to_json(&self) -> Value {
        json!({"type": self.kind, "object": self.object})
    }
}

/// The per-cluster event fan-out and its recent history.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Event>>,
    history: Mutex<VecDeque<Arc<Event>>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(4096).0,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }
}

/// A subscription plus the recorded events it starts with.
pub type Resumed = (broadcast::Receiver<Arc<Event>>, Vec<Arc<Event>>);

/// Why a watch cannot start where it was asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired;

impl Hub {
    /// Publishes a change at resourceVersion `rv`.
    pub fn publish(&self, group: &str, plural: &str, kind: &'static str, object: &Value, rv: u64) {
        let mut object = object.clone();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ev = Arc::new(Event {
            group: group.to_string(),
            plural: plural.to_string(),
            kind,
            object,
            rv,
        });
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(ev.clone());
        let _ = self.tx.send(ev);
    }

    /// Subscribes to later changes. Call it while holding the store lock (every publish happens
    /// under it) to line the subscription up with a listing.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Subscribes to later changes and returns the recorded ones after `since` (a resourceVersion
    /// a client got from a list or an earlier event).
    pub fn resume(&self, since: u64) -> Result<Resumed, Expired> {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        if let Some(oldest) = h.front()
            && h.len() == HISTORY
            && since + 1 < oldest.rv
        {
            return Err(Expired);
        }
        Ok((rx, h.iter().filter(|e| e.rv > since).cloned().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_replays_changes_after_the_given_version() {
        let hub = Hub::default();
        for rv in 1..=3 {
            hub.publish(
                "",
                "secrets",
                "ADDED",
                &json!({"metadata": {"name": format!("s{rv}")}}),
                rv,
            );
        }
        let (_, replay) = hub.resume(1).unwrap_or_else(|_| panic!("expired"));
        let names: Vec<&str> = replay
            .iter()
            .filter_map(|e| e.object["metadata"]["name"].as_str())
            .collect();
        assert_eq!(names, ["s2", "s3"]);
        assert_eq!(replay[0].object["metadata"]["resourceVersion"], "2");
    }
}
