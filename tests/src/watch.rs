//! Watch events: every stored change is published to the cluster's hub, and `?watch=true`
//! requests stream the matching ones as newline-delimited `{"type","object"}` JSON.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// One change.
#[derive(Debug, Clone)]
pub struct Event {
    /// API group of the object.
    pub group: String,
    /// Resource plural.
    pub plural: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object after the change (before it, for deletions).
    pub object: Value,
}

impl Event {
    /// The wire form of a watch event.
    pub fn to_json(&self) -> Value {
        json!({"type": self.kind, "object": self.object})
    }
}

/// The per-cluster event fan-out.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Hub {
    /// Publishes a change (a no-op when nobody watches).
    pub fn publish(&self, group: &str, plural: &str, kind: &'static str, object: &Value) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let _ = self.tx.send(Arc::new(Event {
            group: group.to_string(),
            plural: plural.to_string(),
            kind,
            object: object.clone(),
        }));
    }

    /// A receiver of every later change.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}
