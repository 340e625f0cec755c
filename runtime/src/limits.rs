//! What a component may use: memory, time per call, and nothing of the outside world.

use std::time::Duration;

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// Bounds applied to every component instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestLimits {
    /// Most bytes of linear memory an instance may hold, all its memories together.
    pub memory_bytes: usize,
    /// Longest a single call into the component may run.
    pub call_timeout: Duration,
}

impl Default for GuestLimits {
    fn default() -> Self {
        Self { memory_bytes: 512 * 1024 * 1024, call_timeout: Duration::from_secs(60) }
    }
}

/// A [`ResourceLimiter`] that caps the total of all of an instance's linear memories (a
/// component may hold several), and remembers whether it refused a growth, so a trap that
/// follows (Rust guests abort when allocation fails) is reported as the memory limit it was.
pub(crate) struct Limiter {
    inner: StoreLimits,
    memory_limit: usize,
    memory_in_use: usize,
    pub(crate) memory_refused: bool,
}

impl Limiter {
    pub(crate) fn new(limits: &GuestLimits) -> Self {
        // A component holds several core instances, memories and tables, and each counts.
        let inner = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .instances(64)
            .memories(16)
            .tables(64)
            .table_elements(1_000_000)
            .build();
        Self { inner, memory_limit: limits.memory_bytes, memory_in_use: 0, memory_refused: false }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        let total = self.memory_in_use.saturating_add(growth);
        let allowed = total <= self.memory_limit && self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_in_use = total;
        } else {
            self.memory_refused = true;
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
