//! What an export has done so far, shared by its shards, and how it is shown: a live bar on a
//! terminal, a log line every few seconds otherwise. A restore's tally is shown the same way
//! ([`Shown`]).

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use crate::model::ProgressFigures;

/// Throttled pages are said on stderr at most this often.
const THROTTLE_NOTE_EVERY: Duration = Duration::from_secs(10);

/// Counters updated by the shards as they go.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    items: AtomicU64,
    bytes: AtomicU64,
    pages: AtomicU64,
    /// Consumed read capacity, in thousandths of an RCU.
    milli_rcu: AtomicU64,
    throttles: AtomicU64,
    segments_done: AtomicU64,
    segments: u64,
    /// When a throttled page was last said on stderr (ms since `started`, plus one; 0: never).
    throttle_noted_ms: AtomicU64,
    /// The table's (approximate) item count, when the server reports one.
    expected_items: Option<u64>,
}

impl Progress {
    pub fn new(segments: u64, expected_items: Option<u64>) -> Self {
        Self {
            started: Instant::now(),
            items: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            milli_rcu: AtomicU64::new(0),
            throttles: AtomicU64::new(0),
            segments_done: AtomicU64::new(0),
            segments,
            throttle_noted_ms: AtomicU64::new(0),
            expected_items: expected_items.filter(|&n| n > 0),
        }
    }

    pub fn page(&self, items: u64, rcu: f64) {
        self.items.fetch_add(items, Ordering::Relaxed);
        self.pages.fetch_add(1, Ordering::Relaxed);
        self.milli_rcu.fetch_add((rcu.max(0.0) * 1000.0) as u64, Ordering::Relaxed);
    }

    pub fn bytes_written(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn throttled(&self) {
        self.throttles.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a throttled page should be said on stderr: once every [`THROTTLE_NOTE_EVERY`]
    /// at most (each is counted in any case).
    pub fn should_say_throttled(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let last = self.throttle_noted_ms.load(Ordering::Relaxed);
        (last == 0 || now.saturating_sub(last) >= THROTTLE_NOTE_EVERY.as_millis() as u64)
            && self.throttle_noted_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    /// Items counted as their data file is stored (an incremental export's change records,
    /// which are not the records it reads).
    pub fn items_stored(&self, items: u64) {
        self.items.fetch_add(items, Ordering::Relaxed);
    }

    /// Items an interrupted run already stored, counted once when a resumed shard starts.
    pub fn resumed(&self, items: u64) {
        self.items.fetch_add(items, Ordering::Relaxed);
    }

    pub fn segment_done(&self) {
        self.segments_done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn figures(&self) -> ProgressFigures {
        let seconds = self.started.elapsed().as_secs_f64();
        let items = self.items.load(Ordering::Relaxed);
        ProgressFigures {
            items,
            bytes: self.bytes.load(Ordering::Relaxed),
            scan_pages: self.pages.load(Ordering::Relaxed),
            consumed_read_capacity_units: self.milli_rcu.load(Ordering::Relaxed) as f64 / 1000.0,
            throttles: self.throttles.load(Ordering::Relaxed),
            segments_done: self.segments_done.load(Ordering::Relaxed),
            segments: self.segments,
            seconds,
            items_per_second: if seconds > 0.0 { items as f64 / seconds } else { 0.0 },
        }
    }

    /// One line: items, bytes, rate, RCU, throttles, segments, ETA when the count is known.
    pub fn summary_line(&self) -> String {
        let f = self.figures();
        let eta = match self.expected_items {
            Some(expected) if f.items_per_second > 0.0 && expected > f.items => {
                format!(", ETA {}s", ((expected - f.items) as f64 / f.items_per_second).round())
            }
            _ => String::new(),
        };
        format!(
            "{} items, {:.1} MiB written, {:.0} items/s, {:.1} RCU, {} throttled, {}/{} segments{eta}",
            f.items,
            f.bytes as f64 / (1024.0 * 1024.0),
            f.items_per_second,
            f.consumed_read_capacity_units,
            f.throttles,
            f.segments_done,
            f.segments
        )
    }

    pub fn expected_items(&self) -> Option<u64> {
        self.expected_items
    }

    pub fn items(&self) -> u64 {
        self.items.load(Ordering::Relaxed)
    }
}

/// What the bar and the log lines show of a run's counters.
pub trait Shown: Send + Sync + 'static {
    /// The counters in one line.
    fn line(&self) -> String;
    /// Units done (items), for the bar's position.
    fn done(&self) -> u64;
    /// Units expected, when known: the bar's length.
    fn expected(&self) -> Option<u64>;
}

impl Shown for Progress {
    fn line(&self) -> String {
        self.summary_line()
    }

    fn done(&self) -> u64 {
        self.items()
    }

    fn expected(&self) -> Option<u64> {
        self.expected_items()
    }
}

/// How progress is shown while an export runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressStyle {
    /// A live bar when stderr is a terminal, log lines otherwise.
    Auto,
    /// Log lines every `interval`.
    Lines,
    /// Nothing.
    Off,
    /// Hands the counters to an embedding program every `interval` (nothing on stderr).
    Observe(ProgressObserver),
}

/// A callback that receives an export's counters as it runs (`ProgressStyle::Observe`), for
/// programs that embed the library: a workflow engine's own progress reporting, say. It is
/// called every `progress_interval` and once more, with the final counters, when the export
/// ends (either way). It runs on one of the async runtime's threads: keep it short (hand the
/// figures to a channel), or it holds the export up.
#[derive(Clone)]
pub struct ProgressObserver(Arc<dyn Fn(&ProgressFigures) + Send + Sync>);

impl ProgressObserver {
    pub fn new(observe: impl Fn(&ProgressFigures) + Send + Sync + 'static) -> Self {
        Self(Arc::new(observe))
    }
}

impl std::fmt::Debug for ProgressObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressObserver")
    }
}

/// Two observers are equal when they are the same callback.
impl PartialEq for ProgressObserver {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ProgressObserver {}

/// Shows `progress` until the returned guard is dropped.
pub fn show(progress: Arc<Progress>, style: ProgressStyle, interval: Duration) -> ShowGuard {
    let bar = style == ProgressStyle::Auto && std::io::stderr().is_terminal();
    let mut last = None;
    let task = match style {
        ProgressStyle::Off => None,
        ProgressStyle::Observe(observer) => {
            last = Some((progress.clone(), observer.clone()));
            Some(tokio::spawn(observe(progress, observer, interval)))
        }
        _ if bar => Some(tokio::spawn(live_bar(progress))),
        _ => Some(tokio::spawn(log_lines(progress, interval))),
    };
    ShowGuard { task, last }
}

/// Shows any run's counters as [`show`] does an export's (an observer, which takes an export's
/// figures, sees nothing: the caller has the final report).
pub fn show_counters<S: Shown>(counters: Arc<S>, style: ProgressStyle, interval: Duration) -> ShowGuard {
    let bar = style == ProgressStyle::Auto && std::io::stderr().is_terminal();
    let task = match style {
        ProgressStyle::Off | ProgressStyle::Observe(_) => None,
        _ if bar => Some(tokio::spawn(live_bar(counters))),
        _ => Some(tokio::spawn(log_lines(counters, interval))),
    };
    ShowGuard { task, last: None }
}

/// Stops the display when dropped (an observer gets the final counters then).
pub struct ShowGuard {
    task: Option<tokio::task::JoinHandle<()>>,
    last: Option<(Arc<Progress>, ProgressObserver)>,
}

impl Drop for ShowGuard {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some((progress, observer)) = self.last.take() {
            (observer.0)(&progress.figures());
        }
    }
}

async fn observe(progress: Arc<Progress>, observer: ProgressObserver, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        (observer.0)(&progress.figures());
    }
}

async fn log_lines<S: Shown>(progress: Arc<S>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        tracing::info!("progress: {}", progress.line());
    }
}

async fn live_bar<S: Shown>(progress: Arc<S>) {
    let bar = match progress.expected() {
        Some(total) => indicatif::ProgressBar::new(total),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let template = if progress.expected().is_some() { "{wide_bar} {msg}" } else { "{spinner} {msg}" };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    let _clear = ClearOnDrop(bar.clone());
    loop {
        bar.set_position(progress.done());
        bar.set_message(progress.line());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct ClearOnDrop(indicatif::ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
