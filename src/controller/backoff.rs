//! Per-key-set retry delays after a failed reconcile: exponential (1 s doubling to 5 min) with
//! jitter, so a Secret the API server keeps refusing is neither hammered nor forgotten, and many
//! key sets failing at once do not retry in lockstep.

use std::{collections::HashMap, sync::Mutex, time::Duration};

const FIRST: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// The delay before retrying `key` after one more failure.
    pub fn next(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().expect("backoff lock");
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        delay(*n, rand::random_range(0.8..1.2))
    }

    /// Forgets `key`'s failures (it reconciled successfully, or is gone).
    pub fn reset(&self, key: &str) {
        self.failures.lock().expect("backoff lock").remove(key);
    }
}

/// The delay after `failures` failures in a row, scaled by `jitter`.
fn delay(failures: u32, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << exponent).min(MAX).mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_seconds_to_minutes_and_stop_growing() {
        let secs: Vec<u64> = (1..=12).map(|n| delay(n, 1.0).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(delay(u32::MAX, 1.0), MAX);
    }

    #[test]
    fn jitter_spreads_retries_and_success_starts_over() {
        let b = Backoff::default();
        let first = b.next("ns/a");
        assert!(first >= Duration::from_millis(800) && first < Duration::from_millis(1200));
        let second = b.next("ns/a");
        assert!(second >= Duration::from_millis(1600));
        b.reset("ns/a");
        assert!(b.next("ns/a") < Duration::from_millis(1200));
        let spread: std::collections::HashSet<_> = (0..20)
            .map(|_| {
                b.reset("x");
                b.next("x")
            })
            .collect();
        assert!(spread.len() > 1, "jittered");
    }
}
