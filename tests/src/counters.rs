//! Request counters of one cluster.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A snapshot of a cluster's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests by verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `apply`, `delete`,
    /// `discovery` (version/discovery/OpenAPI documents). Requests refused by an injected fault
    /// or by authentication are counted too.
    pub requests_by_verb: BTreeMap<String, u64>,
    /// Mutating requests on stored objects (create/update/patch/apply/delete), whether or not they
    /// changed anything; dry-run requests, TokenRequest and access reviews are not writes.
    pub writes: u64,
    /// Objects currently stored.
    pub objects: u64,
    /// TLS connections accepted, by the protocol ALPN settled on (`h2`, `http/1.1`, or
    /// `none` when the client offered none).
    pub connections_by_protocol: BTreeMap<String, u64>,
}

impl Counters {
    /// Total requests of all verbs.
    pub fn total_requests(&self) -> u64 {
        self.requests_by_verb.values().sum()
    }

    /// TLS connections accepted, whatever their protocol.
    pub fn connections(&self) -> u64 {
        self.connections_by_protocol.values().sum()
    }

    /// Requests of one verb.
    pub fn requests(&self, verb: &str) -> u64 {
        self.requests_by_verb.get(verb).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verbs: Vec<String> = self
            .requests_by_verb
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        write!(
            f,
            "requests: {} ({}), writes: {}, objects: {}",
            self.total_requests(),
            verbs.join(" "),
            self.writes,
            self.objects
        )
    }
}

/// The live counters (the object count is read from the store when a snapshot is taken).
#[derive(Debug, Default)]
pub struct CounterSet {
    inner: Mutex<(BTreeMap<String, u64>, u64)>,
    connections: Mutex<BTreeMap<String, u64>>,
    /// When each request arrived: its verb, URL path, and whether it was a write.
    log: Mutex<Vec<Logged>>,
}

impl CounterSet {
    /// Counts one request of `verb`, and a write when `write`.
    pub fn record(&self, verb: &str, write: bool) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.0.get_mut(verb) {
            Some(n) => *n += 1,
            None => {
                g.0.insert(verb.to_string(), 1);
            }
        }
        if write {
            g.1 += 1;
        }
    }

    /// A snapshot with the given object count.
    pub fn snapshot(&self, objects: usize) -> Counters {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Counters {
            requests_by_verb: g.0.clone(),
            writes: g.1,
            objects: objects as u64,
            connections_by_protocol: self
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Zeroes requests and writes.
    pub fn reset(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0.clear();
        g.1 = 0;
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Counts one accepted TLS connection that settled on `protocol`.
    pub fn record_connection(&self, protocol: &str) {
        *self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(protocol.to_string())
            .or_default() += 1;
    }

    /// Notes when a request of `verb` to `path` arrived.
    pub fn log_request(&self, verb: &'static str, path: &str, write: bool) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Logged {
                at: std::time::Instant::now(),
                verb,
                path: path.to_string(),
                write,
            });
    }

    /// Every request since the last reset, in arrival order.
    pub fn request_log(&self) -> Vec<Logged> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every write since the last reset: when it arrived and its URL path.
    pub fn write_log(&self) -> Vec<(std::time::Instant, String)> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|l| l.write)
            .map(|l| (l.at, l.path.clone()))
            .collect()
    }
}

/// One request as the server saw it arrive.
#[derive(Debug, Clone)]
pub struct Logged {
    /// When it arrived (before the injected latency).
    pub at: std::time::Instant,
    /// The verb it was counted as ([`Counters::requests_by_verb`]).
    pub verb: &'static str,
    /// Its URL path.
    pub path: String,
    /// Whether it was a write ([`Counters::writes`]).
    pub write: bool,
}
