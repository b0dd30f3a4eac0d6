//! The memory pool of an engine under `memory_limit`: DataFusion's fair
//! spill pool, with two changes.
//!
//! The fair pool: an operator that can spill (a sort, a grouping) may hold
//! at most its share of what the operators that cannot spill leave, the
//! share being that divided by the spilling operators registered; one that
//! cannot spill (a hash join's build side, the headroom a sort keeps to
//! merge what it spilled) gets what is left, or the query fails with
//! "Resources exhausted".
//!
//! Shares are counted over at least one spilling operator per core. A
//! sort runs as one operator per core, each registered when its partition
//! starts; in DataFusion's pool the first to start, alone, had the whole
//! pool as its share and kept what it took once the second registered, so
//! the second's merge headroom, or the first's merge after it spilled,
//! found the pool full and failed the run (seen in CI: a sort of two
//! partitions under 48 MB; the first test below replays it).
//!
//! A sort's merge is granted its headroom (`sort_spill_reservation_bytes`,
//! 10 MB) even when the pool is full. A sort lets its headroom go just
//! before it sorts its rows in memory into a spill file, and takes it back
//! a batch at a time while it merges them; meanwhile the other partition's
//! sort may grow into it, within its share, and the merge failed the run.
//! What the merge asks beyond its headroom (merging many spill files at
//! once) is refused as before, and DataFusion then merges fewer files at a
//! time. So a limit can be passed by the headroom of the sorts that spill.
//!
//! A repartition (the exchange that spreads rows over the cores) never
//! spills: it spills a batch it cannot reserve memory for, and in
//! DataFusion 55 two of its inputs spilling at once can leave its reader
//! waiting on the wrong spill file forever: the query neither finishes nor
//! fails (apache/datafusion#24883; seen here as a run that hung at one
//! limit and failed cleanly just above and below it). A repartition's
//! reservation is therefore always granted: it holds only the batches in
//! flight between cores, a few per core. It stays counted in the pool, so
//! the other operators see it.

use std::sync::Mutex;

use datafusion::common::human_readable_size;
use datafusion::common::{Result, resources_datafusion_err};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit as PoolLimit, MemoryPool, MemoryReservation,
};

/// The pool (see the module doc).
#[derive(Debug)]
pub struct RunPool {
    size: usize,
    /// The fewest spilling operators shares are counted over.
    least_spillers: usize,
    /// What a sort's merge is granted even when the pool is full.
    merge_headroom: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Spilling operators registered.
    spillers: usize,
    /// Bytes held by spilling operators, and by the others.
    spillable: usize,
    unspillable: usize,
}

impl RunPool {
    /// A pool of `size` bytes whose shares are counted over at least
    /// `least_spillers` spilling operators (the engine's cores), whose
    /// sorts' merges are granted `merge_headroom` (the session's
    /// `sort_spill_reservation_bytes`).
    pub fn new(size: usize, least_spillers: usize, merge_headroom: usize) -> RunPool {
        RunPool {
            size,
            least_spillers: least_spillers.max(1),
            merge_headroom,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is three counters, right after any panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RunPool {
    /// Whether `reservation` may grow by `additional` whatever the pool
    /// holds: a repartition's output channel always, a sort's merge within
    /// its headroom (DataFusion 55's names for them).
    fn granted(&self, reservation: &MemoryReservation, additional: usize) -> bool {
        let name = reservation.consumer().name();
        name.starts_with("RepartitionExec[")
            || (name.starts_with("ExternalSorterMerge[")
                && reservation.size() + additional <= self.merge_headroom)
    }
}

impl std::fmt::Display for RunPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fair(pool_size: {})", human_readable_size(self.size))
    }
}

impl MemoryPool for RunPool {
    fn name(&self) -> &str {
        "fair"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        if consumer.can_spill() {
            self.state().spillers += 1;
        }
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        if consumer.can_spill() {
            let mut state = self.state();
            state.spillers = state.spillers.saturating_sub(1);
        }
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        let mut state = self.state();
        if reservation.consumer().can_spill() {
            state.spillable += additional;
        } else {
            state.unspillable += additional;
        }
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        let mut state = self.state();
        if reservation.consumer().can_spill() {
            state.spillable = state.spillable.saturating_sub(shrink);
        } else {
            state.unspillable = state.unspillable.saturating_sub(shrink);
        }
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let consumer = reservation.consumer();
        let mut state = self.state();
        let available = if consumer.can_spill() {
            let share = self.size.saturating_sub(state.unspillable)
                / state.spillers.max(self.least_spillers);
            share.saturating_sub(reservation.size())
        } else {
            self.size
                .saturating_sub(state.unspillable + state.spillable)
        };
        if additional > available && !self.granted(reservation, additional) {
            return Err(resources_datafusion_err!(
                "Failed to allocate additional {} for {} with {} already allocated for this reservation - {} remain available for the total memory pool: {}",
                human_readable_size(additional),
                consumer.name(),
                human_readable_size(reservation.size()),
                human_readable_size(available),
                self
            ));
        }
        if consumer.can_spill() {
            state.spillable += additional;
        } else {
            state.unspillable += additional;
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        let state = self.state();
        state.spillable + state.unspillable
    }

    fn memory_limit(&self) -> PoolLimit {
        PoolLimit::Finite(self.size)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::execution::memory_pool::FairSpillPool;

    use super::*;

    const MB: usize = 1 << 20;

    /// What CI met, replayed: a sort of two partitions under 48 MB, each
    /// keeping 10 MB aside to merge. The first partition starts alone and
    /// takes all it may; the second then cannot keep its 10 MB in
    /// DataFusion's pool. In this one the first took only its share of
    /// two, so the second starts; when the first spills (its 10 MB let
    /// go, the second growing into them, then the 10 MB taken back a batch
    /// at a time), its merge gets them back, and not a byte more.
    #[test]
    fn a_sort_that_starts_first_leaves_room_for_the_next() {
        let fair: Arc<dyn MemoryPool> = Arc::new(FairSpillPool::new(48 * MB));
        let ours: Arc<dyn MemoryPool> = Arc::new(RunPool::new(48 * MB, 2, 10 * MB));
        for (pool, second_starts) in [(fair, false), (ours, true)] {
            let start = |partition: usize| {
                let merge = MemoryConsumer::new(format!("ExternalSorterMerge[{partition}]"))
                    .register(&pool);
                let sort = MemoryConsumer::new(format!("ExternalSorter[{partition}]"))
                    .with_can_spill(true)
                    .register(&pool);
                (sort, merge)
            };
            let (first, first_merge) = start(0);
            first_merge.try_grow(10 * MB).unwrap();
            while first.try_grow(MB).is_ok() {}
            let (second, second_merge) = start(1);
            let started = second_merge.try_grow(10 * MB).is_ok();
            assert_eq!(started, second_starts, "{}", pool.name());
            if !started {
                continue;
            }
            while second.try_grow(MB).is_ok() {}
            assert_eq!(second.size(), 14 * MB, "the share of two");
            first_merge.free();
            while second.try_grow(MB).is_ok() {}
            assert_eq!(second.size(), 19 * MB, "the share of two, less one merge");
            for _ in 0..80 {
                first_merge.try_grow(128 << 10).unwrap();
            }
            assert!(
                first_merge.try_grow(128 << 10).is_err(),
                "past the headroom"
            );
            assert_eq!(pool.reserved(), 58 * MB, "the limit and one headroom");
            drop((first, second, second_merge));
        }
    }

    /// A repartition is granted what it asks for beyond the limit; a hash
    /// join's build side, which cannot spill either, is refused there.
    #[test]
    fn a_repartition_passes_the_limit_and_a_join_does_not() {
        let pool: Arc<dyn MemoryPool> = Arc::new(RunPool::new(MB, 2, 10 * MB));
        let repartition = MemoryConsumer::new("RepartitionExec[0]").register(&pool);
        repartition.try_grow(2 * MB).unwrap();
        let join = MemoryConsumer::new("HashJoinInput[0]").register(&pool);
        let error = join.try_grow(1).unwrap_err().to_string();
        assert!(error.contains("Resources exhausted"), "{error}");
        assert!(error.contains("HashJoinInput[0]"), "{error}");
        assert_eq!(pool.reserved(), 2 * MB);
        drop(repartition);
        assert_eq!(pool.reserved(), 0);
    }
}
