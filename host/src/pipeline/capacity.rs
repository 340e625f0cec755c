//! How fast an export may read, or a restore write: a token bucket of capacity units (read
//! units for the Scans of an export, write units for a restore's writes), shared by every lane
//! and fed by the `ConsumedCapacity` each request reports.
//!
//! A request's cost is only known once it is made, so the bucket may go into debt (at most one
//! second of the budget); the next request of any lane waits until it is paid off. On average the
//! export reads at most `rate` RCU per second, plus a burst of one second's worth and of the
//! pages in flight, whichever segments are still running (a lone slow segment at the end gets
//! the whole budget). Throttling halves the rate, at most once a second however many lanes
//! see it; each page read without throttling wins back 5%, up to the configured budget.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The lowest rate, in RCU per second, a budget has or throttling brings it to: a small
/// table's share is honoured (50% of 1 RCU is 0.5 RCU/s), and the rate never reaches zero.
const MIN_RATE: f64 = 0.01;

/// A shared capacity budget (read or write units).
#[derive(Debug)]
pub struct CapacityBudget {
    /// The configured budget, RCU per second.
    limit: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// The current rate (at most `limit`), RCU per second.
    rate: f64,
    /// RCU available now; negative while in debt.
    tokens: f64,
    last_refill: Instant,
    /// When throttling last halved the rate.
    last_cut: Option<Instant>,
}

/// Throttling reported within this long of the last cut is the same episode.
const CUT_INTERVAL: Duration = Duration::from_secs(1);

impl CapacityBudget {
    /// A budget of `rcu_per_second`, starting with one second's worth.
    pub fn new(rcu_per_second: f64) -> Self {
        let limit = rcu_per_second.max(MIN_RATE);
        let bucket = Bucket { rate: limit, tokens: limit, last_refill: Instant::now(), last_cut: None };
        Self { limit, state: Mutex::new(bucket) }
    }

    /// The configured budget, RCU per second.
    pub fn limit(&self) -> f64 {
        self.limit
    }

    /// The current rate, after throttling adjustments.
    pub fn rate(&self) -> f64 {
        self.lock().rate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // A panic while holding this lock leaves plain numbers behind: still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The most items a Scan page should ask for so that it costs about one second of one
    /// lane's share of the budget, given what an item has cost so far (`rcu_per_item`, or a
    /// guess of 1 KB items read eventually consistent: 1/8 RCU each). Keeps a small budget from
    /// being spent in a few bursts of 1 MB pages.
    pub fn page_limit(&self, lanes: u32, rcu_per_item: Option<f64>) -> u32 {
        let share = self.rate() / f64::from(lanes.max(1));
        let per_item = rcu_per_item.filter(|r| *r > 0.0).unwrap_or(0.125);
        (share / per_item).clamp(1.0, 1_000_000.0) as u32
    }

    /// Waits until the bucket is out of debt.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut bucket = self.lock();
                bucket.refill(Instant::now());
                if bucket.tokens >= 0.0 {
                    return;
                }
                Duration::try_from_secs_f64(-bucket.tokens / bucket.rate).unwrap_or(Duration::from_secs(1))
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Records what a page consumed, and that it was not throttled.
    pub fn consume(&self, rcu: f64) {
        let mut bucket = self.lock();
        bucket.refill(Instant::now());
        // A server's odd report (negative, NaN, infinite) must not stall the export.
        let rcu = if rcu.is_finite() { rcu.max(0.0) } else { 0.0 };
        bucket.tokens = (bucket.tokens - rcu).max(-self.limit);
        bucket.rate = (bucket.rate * 1.05).min(self.limit);
    }

    /// Records a throttling error: halves the rate, once per [`CUT_INTERVAL`].
    pub fn throttled(&self) {
        let mut bucket = self.lock();
        let now = Instant::now();
        bucket.refill(now);
        if bucket.last_cut.is_some_and(|cut| now.saturating_duration_since(cut) < CUT_INTERVAL) {
            return;
        }
        bucket.last_cut = Some(now);
        bucket.rate = (bucket.rate / 2.0).max(MIN_RATE);
        bucket.tokens = bucket.tokens.min(0.0);
    }
}

impl Bucket {
    /// Adds what accrued since the last refill, up to one second's worth.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_refill).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last_refill = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn debt_is_paid_off_at_the_rate_and_capped_at_a_second() {
        let budget = CapacityBudget::new(100.0);
        let started = Instant::now();
        budget.acquire().await; // one second's worth to start with
        assert_eq!(started.elapsed(), Duration::ZERO);
        budget.consume(180.0); // 80 RCU in debt
        budget.acquire().await;
        let waited = started.elapsed().as_secs_f64();
        assert!((0.79..=0.81).contains(&waited), "waited {waited}s");
        budget.consume(1_000_000.0); // debt is capped at one second of the budget
        budget.consume(f64::INFINITY);
        let started = Instant::now();
        budget.acquire().await;
        let waited = started.elapsed().as_secs_f64();
        assert!((0.99..=1.01).contains(&waited), "waited {waited}s");
    }

    #[tokio::test(start_paused = true)]
    async fn throughput_over_time_stays_under_the_limit() {
        let budget = CapacityBudget::new(50.0);
        let started = Instant::now();
        let mut consumed = 0.0;
        for _ in 0..100 {
            budget.acquire().await;
            budget.consume(20.0);
            consumed += 20.0;
        }
        let seconds = started.elapsed().as_secs_f64();
        // The first second's allowance comes free; after that, 50 RCU/s.
        assert!(consumed <= 50.0 * seconds + 50.0 + 20.0, "{consumed} RCU in {seconds}s");
        assert!(consumed >= 50.0 * seconds - 20.0, "too slow: {consumed} RCU in {seconds}s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_below_one_rcu_per_second_is_honoured() {
        // Half of a table of 1 RCU: pages of 0.5 RCU (the least a Scan page costs), one a second.
        let budget = CapacityBudget::new(0.5);
        assert_eq!(budget.limit(), 0.5);
        let started = Instant::now();
        let mut consumed = 0.0;
        for _ in 0..40 {
            budget.acquire().await;
            budget.consume(0.5);
            consumed += 0.5;
        }
        let seconds = started.elapsed().as_secs_f64();
        let rate = (consumed - 1.0) / seconds;
        assert!((0.45..=0.55).contains(&rate), "{consumed} RCU in {seconds}s: {rate} RCU/s");
        budget.throttled();
        assert_eq!(budget.rate(), 0.25, "throttling halves it below 1 as well");
    }

    #[test]
    fn pages_are_sized_to_a_lanes_share() {
        let budget = CapacityBudget::new(100.0);
        assert_eq!(budget.page_limit(4, Some(0.5)), 50);
        assert_eq!(budget.page_limit(4, None), 200);
        assert_eq!(budget.page_limit(1000, Some(10.0)), 1, "at least one item");
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_the_rate_and_success_wins_it_back() {
        let budget = CapacityBudget::new(80.0);
        budget.throttled();
        budget.throttled(); // the same episode: many lanes see one throttling
        assert_eq!(budget.rate(), 40.0);
        tokio::time::advance(Duration::from_secs(2)).await;
        budget.throttled();
        assert_eq!(budget.rate(), 20.0);
        for _ in 0..100 {
            budget.consume(0.0);
        }
        assert_eq!(budget.rate(), 80.0, "never above the limit");
    }
}
