//! Fault injection for one cluster, changeable while it runs: added latency, a rate of
//! 429/500/503 answers, "down" (the listener is closed, so connections are refused), and the
//! API server's max-in-flight filter ([`InFlight`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::status::ApiError;

/// The fault settings of one cluster.
#[derive(Debug)]
pub struct Faults {
    latency_us: AtomicU64,
    error_rate_bits: AtomicU64,
    down: watch::Sender<bool>,
    rng: Mutex<rand::rngs::StdRng>,
    /// Requests being served, and the server's limits on them.
    pub(crate) in_flight: InFlight,
}

impl Faults {
    /// Starts with the given latency and error rate, up.
    pub fn new(latency: Duration, error_rate: f64) -> Self {
        let f = Faults {
            latency_us: AtomicU64::new(0),
            error_rate_bits: AtomicU64::new(0),
            down: watch::channel(false).0,
            rng: Mutex::new(rand::SeedableRng::from_os_rng()),
            in_flight: InFlight::default(),
        };
        f.set_latency(latency);
        f.set_error_rate(error_rate);
        f
    }

    /// Added latency per request.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }

    /// Sets the added latency per request.
    pub fn set_latency(&self, d: Duration) {
        self.latency_us.store(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Fraction of requests answered with an injected error.
    pub fn error_rate(&self) -> f64 {
        f64::from_bits(self.error_rate_bits.load(Ordering::Relaxed))
    }

    /// Sets the fraction (clamped to 0..=1) of requests answered with 429, 500 or 503.
    pub fn set_error_rate(&self, p: f64) {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.error_rate_bits.store(p.to_bits(), Ordering::Relaxed);
    }

    /// Marks the cluster down (refusing connections) or up.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    /// Whether the cluster is down.
    pub fn is_down(&self) -> bool {
        *self.down.borrow()
    }

    /// A receiver that observes down/up changes.
    pub fn watch_down(&self) -> watch::Receiver<bool> {
        self.down.subscribe()
    }

    /// Rolls the dice for one request: `Some(error)` when it must fail. The three kinds come in
    /// equal shares: 429 (with Retry-After), 500, 503.
    pub fn injected_error(&self) -> Option<ApiError> {
        let p = self.error_rate();
        if p <= 0.0 {
            return None;
        }
        let (hit, which): (f64, u8) = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            (
                rand::Rng::random(&mut *rng),
                rand::Rng::random_range(&mut *rng, 0..3),
            )
        };
        if hit >= p {
            return None;
        }
        Some(match which {
            0 => ApiError::too_many_requests(),
            1 => ApiError::internal("Internal error occurred: injected fault"),
            _ => ApiError::unavailable(),
        })
    }
}

/// kube-apiserver's max-in-flight filter (`WithMaxInFlightLimit`, what API Priority and
/// Fairness also answers when a priority level's queues are full): requests are counted while
/// they are served, reads (`get`, `list`) and writes apart, up to `--max-requests-inflight`
/// and `--max-mutating-requests-inflight`; one more is answered at once with 429, a plain-text
/// body "Too many requests, please try again later." and `Retry-After: 1`. Long-running
/// requests (watches) are not counted, and `system:masters` is never limited (a super-user or
/// loopback client always gets an answer). A limit of 0 is no limit, the default here.
#[derive(Debug, Default)]
pub struct InFlight {
    max_read: AtomicUsize,
    max_mutating: AtomicUsize,
    read: AtomicUsize,
    mutating: AtomicUsize,
    peak: AtomicUsize,
    rejected: AtomicU64,
}

/// A request being served; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Serving<'a> {
    in_flight: &'a InFlight,
    mutating: bool,
    counted: bool,
}

impl InFlight {
    /// Sets both limits (0 = none).
    pub fn set_limits(&self, read: usize, mutating: usize) {
        self.max_read.store(read, Ordering::Relaxed);
        self.max_mutating.store(mutating, Ordering::Relaxed);
    }

    /// Admits a request of `verb` (the emulator's verb names), or `None` when it must be answered
    /// 429. `exempt`: a long-running request or a `system:masters` user, counted but never refused.
    pub(crate) fn enter(&self, verb: &str, exempt: bool) -> Option<Serving<'_>> {
        if verb == "watch" {
            return Some(Serving {
                in_flight: self,
                mutating: false,
                counted: false,
            });
        }
        let mutating = !matches!(verb, "get" | "list" | "watch" | "discovery");
        let (count, max) = if mutating {
            (&self.mutating, self.max_mutating.load(Ordering::Relaxed))
        } else {
            (&self.read, self.max_read.load(Ordering::Relaxed))
        };
        let now = count.fetch_add(1, Ordering::AcqRel) + 1;
        let serving = Serving {
            in_flight: self,
            mutating,
            counted: true,
        };
        if !exempt && max > 0 && now > max {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let total = self.read.load(Ordering::Acquire) + self.mutating.load(Ordering::Acquire);
        self.peak.fetch_max(total, Ordering::AcqRel);
        Some(serving)
    }

    /// The most requests served at once (watches excluded) since the last reset.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Requests refused with 429 by the limits since the last reset.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Zeroes the peak and the refusals.
    pub fn reset(&self) {
        self.peak.store(0, Ordering::Relaxed);
        self.rejected.store(0, Ordering::Relaxed);
    }
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let count = if self.mutating {
            &self.in_flight.mutating
        } else {
            &self.in_flight.read
        };
        count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rate_one_always_fails_with_a_retryable_code() {
        let f = Faults::new(Duration::ZERO, 1.0);
        for _ in 0..30 {
            let code = f.injected_error().map(|e| e.code);
            assert!(matches!(code, Some(429 | 500 | 503)), "{code:?}");
        }
        f.set_error_rate(0.0);
        assert!(f.injected_error().is_none());
        f.set_error_rate(f64::NAN);
        assert_eq!(f.error_rate(), 0.0);
    }

    #[test]
    fn max_in_flight_counts_reads_and_writes_apart_and_spares_exempt_requests() {
        let f = InFlight::default();
        f.set_limits(1, 1);
        let read = f.enter("get", false).expect("first read");
        assert!(f.enter("list", false).is_none(), "second read refused");
        let write = f
            .enter("apply", false)
            .expect("writes have their own limit");
        assert!(f.enter("create", false).is_none());
        assert!(f.enter("watch", true).is_some(), "watches are long-running");
        assert!(
            f.enter("get", true).is_some(),
            "system:masters is never limited"
        );
        drop((read, write));
        assert!(f.enter("get", false).is_some());
        assert_eq!(f.rejected(), 2);
        assert_eq!(f.peak(), 3);
    }
}
