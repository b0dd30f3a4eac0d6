//! The memory pool of an engine under `memory_limit`: DataFusion's fair
//! pool, except that a repartition never spills and a sort's merge is
//! never refused.
//!
//! A repartition (the exchange that spreads rows over the cores) spills a
//! batch it cannot reserve memory for, and in DataFusion 55 two of its
//! inputs spilling at once can leave its reader waiting on the wrong spill
//! file forever: the query neither finishes nor fails
//! (apache/datafusion#24883; seen here as a run that hung at one limit and
//! failed cleanly just above and below it). A repartition's reservation is
//! therefore always granted: it holds only the batches in flight between
//! cores, a few per core. It stays registered and counted in the pool, so
//! the sorts, groupings and joins, which hold a query's rows, get the same
//! shares as in the fair pool and spill or fail as there.
//!
//! A sort keeps `sort_spill_reservation_bytes` aside per core to merge
//! what it spilled, frees it just before sorting its rows in memory into a
//! spill file, and takes it back a batch at a time while merging. The fair
//! pool only bounds each sort by its share *when it grows*: a sort that
//! grew while it was the only one registered keeps more than its share
//! once a second registers, and the merge it starts next then finds the
//! pool full and fails the query with "Resources exhausted" (seen once in
//! CI, a sort of two partitions under 48 MB). The merge holds a batch per
//! sorted run, the headroom DataFusion meant it to have, so its
//! reservation is always granted too; the sort itself spills at its next
//! growth as before.

use std::fmt;

use datafusion::common::Result;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit as PoolLimit, MemoryPool, MemoryReservation,
};

/// `inner`, granting repartitions and sort merges what they ask for.
#[derive(Debug)]
pub struct GrantingExchangesAndMerges<P> {
    inner: P,
}

impl<P> GrantingExchangesAndMerges<P> {
    pub fn new(inner: P) -> Self {
        GrantingExchangesAndMerges { inner }
    }
}

/// Whether `consumer` is a repartition's output channel or the merge of a
/// sort's sorted runs (DataFusion 55's names for them).
fn always_granted(consumer: &MemoryConsumer) -> bool {
    let name = consumer.name();
    name.starts_with("RepartitionExec[") || name.starts_with("ExternalSorterMerge[")
}

impl<P: fmt::Display> fmt::Display for GrantingExchangesAndMerges<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<P: MemoryPool> MemoryPool for GrantingExchangesAndMerges<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        match self.inner.try_grow(reservation, additional) {
            Err(_) if always_granted(reservation.consumer()) => {
                self.inner.grow(reservation, additional);
                Ok(())
            }
            granted => granted,
        }
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> PoolLimit {
        self.inner.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::execution::memory_pool::FairSpillPool;

    use super::*;

    const MB: usize = 1 << 20;

    /// The race CI met: a sort grows alone to nearly the whole pool, a
    /// second registers and takes its share, and the first sort's merge
    /// then asks for a batch's worth. The fair pool refuses it; this pool
    /// grants it, and still refuses what else cannot spill (a join's
    /// build side) and bounds the sorts by their shares.
    #[test]
    fn a_sort_merge_is_granted_when_the_sorts_hold_the_pool() {
        let fair: Arc<dyn MemoryPool> = Arc::new(FairSpillPool::new(48 * MB));
        let pool: Arc<dyn MemoryPool> =
            Arc::new(GrantingExchangesAndMerges::new(FairSpillPool::new(48 * MB)));
        for (pool, merge_granted) in [(fair, false), (pool, true)] {
            let first = MemoryConsumer::new("ExternalSorter[0]")
                .with_can_spill(true)
                .register(&pool);
            first.try_grow(34 * MB).unwrap();
            let second = MemoryConsumer::new("ExternalSorter[1]")
                .with_can_spill(true)
                .register(&pool);
            second.try_grow(14 * MB).unwrap();
            assert!(
                second.try_grow(11 * MB).is_err(),
                "a sort keeps to its share"
            );

            let merge = MemoryConsumer::new("ExternalSorterMerge[0]").register(&pool);
            assert_eq!(merge.try_grow(128 << 10).is_ok(), merge_granted);
            let join = MemoryConsumer::new("HashJoinInput[0]").register(&pool);
            assert!(join.try_grow(128 << 10).is_err(), "{}", pool.name());
        }
    }
}
