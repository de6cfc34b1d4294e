//! Fault injection for one cluster, changeable while it runs: added latency, a rate of
//! 429/500/503 answers, and "down" (the listener is closed, so connections are refused).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

impl Faults {
    /// Starts with the given latency and error rate, up.
    pub fn new(latency: Duration, error_rate: f64) -> Self {
        let f = Faults {
            latency_us: AtomicU64::new(0),
            error_rate_bits: AtomicU64::new(0),
            down: watch::channel(false).0,
            rng: Mutex::new(rand::SeedableRng::from_os_rng()),
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
}
