//! When a DynamoDB request that failed is tried again, and after how long: the one policy of
//! the export's Scans and the restore's writes.
//!
//! Throttling (and, for a write, items DynamoDB left unprocessed) never fails a run: the
//! request is retried after a jittered, doubling backoff, and the caller slows its capacity
//! budget. Other transient errors (5xx, timeouts, resets) are retried [`MAX_TRANSIENT_RETRIES`]
//! times in a row; anything else fails at once.

use std::time::Duration;

use crate::error::ExportError;

/// Backoff after the first failure, doubled per retry up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// Transient (non-throttling) errors tolerated in a row before the run fails.
pub const MAX_TRANSIENT_RETRIES: u32 = 8;

/// One request's retries.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    transient_failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST_BACKOFF, transient_failures: 0 }
    }
}

impl Backoff {
    /// How long to wait before trying again after `error`; `None`: give up (return the error).
    pub fn after(&mut self, error: &ExportError) -> Option<Duration> {
        match error {
            ExportError::Throttled { .. } => {}
            ExportError::Transient { .. } if self.transient_failures < MAX_TRANSIENT_RETRIES => {
                self.transient_failures += 1;
            }
            _ => return None,
        }
        Some(self.pause())
    }

    /// How long to wait before sending what DynamoDB left unprocessed (a form of throttling).
    pub fn after_unprocessed(&mut self) -> Duration {
        self.pause()
    }

    /// The attempt the next try is (1 is the first), counting transient failures.
    pub fn attempt(&self) -> u32 {
        self.transient_failures + 1
    }

    /// The request went through: the next failure starts from the first backoff again.
    pub fn succeeded(&mut self) {
        *self = Self::default();
    }

    fn pause(&mut self) -> Duration {
        let pause = self.next.mul_f64(fastrand::f64());
        self.next = (self.next * 2).min(MAX_BACKOFF);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttled() -> ExportError {
        ExportError::Throttled { operation: "Scan", table: "t".into(), message: "slow down".into() }
    }

    fn transient() -> ExportError {
        ExportError::Transient { operation: "Scan", table: "t".into(), message: "500".into() }
    }

    #[test]
    fn throttling_is_always_retried_and_the_backoff_doubles_to_its_cap() {
        let mut backoff = Backoff::default();
        let mut ceiling = FIRST_BACKOFF;
        for _ in 0..20 {
            let pause = backoff.after(&throttled()).unwrap();
            assert!(pause <= ceiling, "{pause:?} <= {ceiling:?}");
            ceiling = (ceiling * 2).min(MAX_BACKOFF);
        }
        assert_eq!(backoff.attempt(), 1, "throttling is not a failed attempt");
    }

    #[test]
    fn transient_errors_are_retried_a_bounded_number_of_times_in_a_row() {
        let mut backoff = Backoff::default();
        for _ in 0..MAX_TRANSIENT_RETRIES {
            assert!(backoff.after(&transient()).is_some());
        }
        assert_eq!(backoff.after(&transient()), None);
        backoff.succeeded();
        assert!(backoff.after(&transient()).is_some(), "a success resets the count");
        let other = ExportError::Internal("a bug".into());
        assert_eq!(backoff.after(&other), None, "anything else fails at once");
    }
}
