//! Bounded retries with exponential backoff and jitter for transient API answers.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How [`ClusterClient`](super::ClusterClient) retries a request that got a transient answer:
/// 429 (honouring `Retry-After`), 500, 502, 503, 504, or a connection error.
///
/// The n-th retry waits a random time in `[d/2, d]` with `d = min(base_delay·2ⁿ, max_delay)`;
/// jitter keeps many clusters' clients from retrying in lock step. A `Retry-After` header wins
/// over the computed delay but is capped at `max_delay` so a wait stays bounded.
///
/// ```
/// use std::time::Duration;
/// use mesh_core::cluster::RetryPolicy;
/// let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
/// assert!(policy.delay(0, None) <= policy.base_delay);
/// assert_eq!(policy.delay(1, Some(Duration::from_secs(1))), Duration::from_secs(1));
/// assert!(policy.delay(30, None) <= policy.max_delay);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry (before jitter).
    pub base_delay: Duration,
    /// Upper bound of any single wait, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 100 ms doubling up to 5 s: a dead server is given up on after about 3 s,
    /// while a 5 % error rate practically never exhausts the attempts.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries at all: one attempt.
    ///
    /// ```
    /// assert_eq!(mesh_core::cluster::RetryPolicy::none().max_attempts, 1);
    /// ```
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry number `retry` (0-based), given the server's `Retry-After`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_delay);
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX));
        let ceiling = exp.min(self.max_delay);
        let half = ceiling / 2;
        let spread = ceiling.saturating_sub(half).as_nanos() as u64;
        if spread == 0 {
            return ceiling;
        }
        half + Duration::from_nanos(random_u64() % (spread + 1))
    }
}

/// True for the HTTP status codes worth retrying.
pub(crate) fn is_retryable_status(code: u16) -> bool {
    matches!(code, 429 | 500 | 502 | 503 | 504)
}

/// Parses `Retry-After` in its delta-seconds form; the HTTP-date form is not used by API
/// servers.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

// Jitter needs no cryptographic quality; std's randomly keyed SipHash avoids a dependency.
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_bounds() {
        let policy = RetryPolicy::default();
        for retry in 0..12 {
            let ceiling = policy
                .base_delay
                .saturating_mul(1 << retry)
                .min(policy.max_delay);
            let d = policy.delay(retry, None);
            assert!(d >= ceiling / 2 && d <= ceiling, "retry {retry}: {d:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(3600))),
            policy.max_delay
        );
    }

    #[test]
    fn retryable_codes_and_retry_after_parsing() {
        for code in [429, 500, 502, 503, 504] {
            assert!(is_retryable_status(code));
        }
        for code in [400, 401, 403, 404, 409, 422, 501] {
            assert!(!is_retryable_status(code));
        }
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
