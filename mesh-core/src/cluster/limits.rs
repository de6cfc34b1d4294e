//! How many requests are in flight: a bound per API server (what one server should take from
//! one client) and a bound across the fleet (sockets, memory), and the way a server that answers
//! 429 slows down only its own client.
//!
//! Each API server is its own machine: one bound for the whole fleet makes a 100-cluster run
//! wait on a queue that none of the servers asked for, and lets one slow cluster take every
//! slot. So a [`ClusterClient`](super::ClusterClient) holds a window of at most
//! [`Limits::per_cluster`] requests, and every client made by one
//! [`KubeConnector`](super::KubeConnector) shares [`Limits::global`] slots. A request takes its
//! cluster's slot first, then a global one, so a cluster that waits (for its window, or for a
//! `Retry-After` to pass) never holds a slot another cluster could use.
//!
//! A 429 is the server's max-in-flight or API Priority and Fairness filter saying "too many at
//! once" (it sends `Retry-After: 1`). Its client then (1) sends nothing more to that server
//! until the `Retry-After` has passed, and (2) halves its window (once per pause, however many
//! answers of the same burst were 429), which grows back by one for every window's worth of
//! answers that were not 429 (additive increase, multiplicative decrease, as TCP does). Other
//! clusters never see any of it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Requests in flight to one API server, by default.
///
/// An API server's default limits are 400 reads and 200 writes in flight for all its clients
/// together (`--max-requests-inflight`, `--max-mutating-requests-inflight`), and API Priority
/// and Fairness gives an ordinary user's flow a share of those; 16 at once stays well inside
/// that share while keeping a 50 ms round trip from being the bottleneck.
pub const DEFAULT_PER_CLUSTER: usize = 16;

/// Requests in flight across every cluster, by default: each holds its body and answer in
/// memory (a stream of the server's one HTTP/2 connection, or a connection of its own with its
/// TLS buffers when the server speaks HTTP/1.1 only), so this bounds memory and sockets.
pub const DEFAULT_GLOBAL: usize = 512;

/// The two bounds of requests in flight; clones share the global slots.
///
/// ```
/// use mesh_core::cluster::Limits;
/// let limits = Limits::new(8, 128);
/// assert_eq!((limits.per_cluster(), limits.global()), (8, 128));
/// let shared = limits.clone();
/// assert_eq!(shared, limits);
/// assert_eq!(Limits::default().per_cluster(), mesh_core::cluster::DEFAULT_PER_CLUSTER);
/// ```
#[derive(Debug, Clone)]
pub struct Limits {
    per_cluster: usize,
    global: usize,
    slots: Arc<Semaphore>,
}

impl Limits {
    /// At most `per_cluster` requests to each API server and `global` in all (each at least 1).
    pub fn new(per_cluster: usize, global: usize) -> Limits {
        let global = global.clamp(1, Semaphore::MAX_PERMITS);
        Limits {
            per_cluster: per_cluster.clamp(1, Semaphore::MAX_PERMITS),
            global,
            slots: Arc::new(Semaphore::new(global)),
        }
    }

    /// The bound per API server.
    pub fn per_cluster(&self) -> usize {
        self.per_cluster
    }

    /// The bound across the fleet.
    pub fn global(&self) -> usize {
        self.global
    }

    /// A new client's own window, sharing these global slots.
    pub(crate) fn window(&self) -> Window {
        Window {
            max: self.per_cluster,
            open: Semaphore::new(self.per_cluster),
            state: Mutex::new(WindowState {
                size: self.per_cluster,
                debt: 0,
                answered: 0,
                paused_until: None,
            }),
            throttled: AtomicUsize::new(0),
            global: self.slots.clone(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(DEFAULT_PER_CLUSTER, DEFAULT_GLOBAL)
    }
}

impl PartialEq for Limits {
    fn eq(&self, other: &Self) -> bool {
        self.per_cluster == other.per_cluster
            && self.global == other.global
            && Arc::ptr_eq(&self.slots, &other.slots)
    }
}

impl Eq for Limits {}

/// One client's window on its API server.
#[derive(Debug)]
pub(crate) struct Window {
    max: usize,
    open: Semaphore,
    state: Mutex<WindowState>,
    throttled: AtomicUsize,
    global: Arc<Semaphore>,
}

#[derive(Debug)]
struct WindowState {
    /// Requests allowed at once now (`1..=max`).
    size: usize,
    /// Permits to retire as they come back (the window was halved while they were out).
    debt: usize,
    /// Answers without 429 since the window last grew.
    answered: usize,
    /// Nothing is sent before this instant (the server's `Retry-After`).
    paused_until: Option<Instant>,
}

/// A request's two slots; dropping it gives them back.
pub(crate) struct Slot<'a> {
    window: &'a Window,
    cluster: Option<tokio::sync::SemaphorePermit<'a>>,
    _global: Option<OwnedSemaphorePermit>,
}

impl Window {
    fn lock(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for any `Retry-After` of this server to pass, then for a slot of this server, then
    /// for a global one.
    pub(crate) async fn acquire(&self) -> Slot<'_> {
        loop {
            let until = self.lock().paused_until;
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => break,
            }
        }
        // Neither semaphore is ever closed; a closed one would only mean no bound.
        let cluster = self.open.acquire().await.ok();
        let global = self.global.clone().acquire_owned().await.ok();
        Slot {
            window: self,
            cluster,
            _global: global,
        }
    }

    /// The server answered 429: pause this server for `retry_after` and halve the window.
    pub(crate) fn throttled(&self, retry_after: Duration) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        let now = Instant::now();
        let until = now + retry_after;
        let paused = state.paused_until.is_some_and(|u| u > now);
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
        if paused {
            // The other answers of the same burst: the window shrinks once per pause.
            return;
        }
        let effective = state.size - state.debt.min(state.size);
        let keep = (effective / 2).max(1);
        state.debt += effective - keep;
        state.answered = 0;
        // Idle permits retire at once; the ones out retire as they come back.
        let retired = self.open.forget_permits(state.debt.min(state.size - 1));
        state.size -= retired;
        state.debt -= retired;
    }

    /// An answer that was not a 429: after a window's worth of them, the window grows by one.
    fn answered(&self) {
        let mut state = self.lock();
        state.answered += 1;
        let effective = state.size - state.debt.min(state.size);
        if state.answered >= effective && effective < self.max {
            state.answered = 0;
            if state.debt > 0 {
                state.debt -= 1;
            } else {
                state.size += 1;
                self.open.add_permits(1);
            }
        }
    }

    /// How many 429 answers this client has had.
    pub(crate) fn throttled_count(&self) -> usize {
        self.throttled.load(Ordering::Relaxed)
    }

    /// The window now (requests allowed at once).
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        let state = self.lock();
        state.size - state.debt.min(state.size)
    }
}

impl Slot<'_> {
    /// The request got an answer that was not a 429.
    pub(crate) fn answered(&self) {
        self.window.answered();
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let Some(permit) = self.cluster.take() else {
            return;
        };
        let mut state = self.window.lock();
        if state.debt > 0 && state.size > 1 {
            state.debt -= 1;
            state.size -= 1;
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_429_halves_the_window_and_answers_grow_it_back() {
        let limits = Limits::new(8, 100);
        let window = limits.window();
        assert_eq!(window.size(), 8);
        {
            let slot = window.acquire().await;
            window.throttled(Duration::ZERO);
            drop(slot);
        }
        assert_eq!(window.size(), 4);
        window.throttled(Duration::ZERO);
        assert_eq!(window.size(), 2);
        for _ in 0..2 {
            window.acquire().await.answered();
        }
        assert_eq!(window.size(), 3);
        for _ in 0..100 {
            window.acquire().await.answered();
        }
        assert_eq!(window.size(), 8, "never above the bound");
        assert_eq!(window.throttled_count(), 2);
    }

    #[tokio::test]
    async fn the_window_never_closes() {
        let window = Limits::new(1, 1).window();
        for _ in 0..5 {
            window.throttled(Duration::ZERO);
        }
        assert_eq!(window.size(), 1);
        drop(window.acquire().await);
        drop(window.acquire().await);
    }

    #[tokio::test]
    async fn retry_after_pauses_only_this_window() {
        let limits = Limits::new(4, 4);
        let (slow, other) = (limits.window(), limits.window());
        slow.throttled(Duration::from_millis(300));
        let started = Instant::now();
        drop(other.acquire().await);
        assert!(started.elapsed() < Duration::from_millis(300));
        drop(slow.acquire().await);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_429_retires_idle_slots_at_once() {
        let window = Limits::new(8, 100).window();
        let _out = window.acquire().await;
        window.throttled(Duration::ZERO);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(window.acquire().await);
        }
        let fifth = tokio::time::timeout(Duration::from_millis(50), window.acquire()).await;
        assert!(fifth.is_err(), "the halved window lets 4 out, not 8");
    }

    #[tokio::test]
    async fn global_slots_are_shared() {
        let limits = Limits::new(4, 2);
        let (a, b) = (limits.window(), limits.window());
        let _x = a.acquire().await;
        let _y = b.acquire().await;
        let third = tokio::time::timeout(Duration::from_millis(50), a.acquire()).await;
        assert!(third.is_err(), "a third request waits for a global slot");
    }
}
