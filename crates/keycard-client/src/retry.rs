//! Backoff for concurrency rejections: exponential, capped, with jitter.

use std::time::Duration;

/// How often and how patiently to retry a concurrency rejection
/// (`CONCURRENCY_LIMIT_EXCEEDED`, HTTP 429; `SSS_REQUEST_LIMIT_EXCEEDED`, HTTP 400).
/// Nothing else is ever retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The delay before the first retry; it doubles each time.
    pub base_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 1 s doubling to at most 16 s: NetSuite's own advice is to wait about a
    /// second and try again, a few times.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(16),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The delay after failed attempt `attempt` (1-based), with "equal jitter": half the
    /// exponential step, plus a random part of the other half (`random` scales it).
    pub fn delay(&self, attempt: u32, random: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let step = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let half = step / 2;
        let jitter = half.mul_f64(f64::from(random) / f64::from(u32::MAX));
        half + jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_and_stop_at_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(policy.delay(1, 0), Duration::from_millis(50));
        assert_eq!(policy.delay(1, u32::MAX), Duration::from_millis(100));
        assert_eq!(policy.delay(2, 0), Duration::from_millis(100));
        assert_eq!(policy.delay(3, u32::MAX), Duration::from_millis(400));
        assert_eq!(policy.delay(9, u32::MAX), Duration::from_secs(1));
        assert_eq!(policy.delay(200, 0), Duration::from_millis(500));
        let mid = policy.delay(2, u32::MAX / 2);
        assert!(mid > Duration::from_millis(100) && mid < Duration::from_millis(200));
    }
}
