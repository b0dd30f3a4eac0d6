//! The memory pool of an engine under `memory_limit`: DataFusion's fair
//! pool, except that a repartition never spills.
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

use std::fmt;

use datafusion::common::Result;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit as PoolLimit, MemoryPool, MemoryReservation,
};

/// `inner`, granting repartitions what they ask for.
#[derive(Debug)]
pub struct WithoutRepartitionSpills<P> {
    inner: P,
}

impl<P> WithoutRepartitionSpills<P> {
    pub fn new(inner: P) -> Self {
        WithoutRepartitionSpills { inner }
    }
}

/// Whether `consumer` is a repartition's output channel.
fn never_spills(consumer: &MemoryConsumer) -> bool {
    consumer.name().starts_with("RepartitionExec[")
}

impl<P: fmt::Display> fmt::Display for WithoutRepartitionSpills<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<P: MemoryPool> MemoryPool for WithoutRepartitionSpills<P> {
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
            Err(_) if never_spills(reservation.consumer()) => {
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
