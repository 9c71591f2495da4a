//! The synchronisation primitives the registry and the engine's emission and subscriber
//! queues are built on, swapped for `loom`'s models when compiled with `--cfg loom` so that
//! their protocols can be model-checked.

use std::sync::Arc;

#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Atomics, modelled under loom like the locks.
pub(crate) mod atomic {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
    #[cfg(not(loom))]
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
}

/// A cell holding the current published value: readers load it without blocking writers,
/// writers replace it atomically (`arc-swap`; under loom, a modelled lock).
#[derive(Debug)]
pub(crate) struct PublishCell<T> {
    #[cfg(not(loom))]
    inner: arc_swap::ArcSwap<T>,
    #[cfg(loom)]
    inner: loom::sync::RwLock<Arc<T>>,
}

impl<T> PublishCell<T> {
    /// A cell holding `value`.
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        {
            PublishCell { inner: arc_swap::ArcSwap::from_pointee(value) }
        }
        #[cfg(loom)]
        {
            PublishCell { inner: loom::sync::RwLock::new(Arc::new(value)) }
        }
    }

    /// The current value (lock-free and wait-free outside loom).
    pub(crate) fn load(&self) -> Arc<T> {
        #[cfg(not(loom))]
        {
            self.inner.load_full()
        }
        #[cfg(loom)]
        {
            self.inner.read().expect("not poisoned").clone()
        }
    }

    /// Publishes `value`; every `load` that starts after this returns sees it (or a later one).
    pub(crate) fn store(&self, value: Arc<T>) {
        #[cfg(not(loom))]
        {
            self.inner.store(value)
        }
        #[cfg(loom)]
        {
            *self.inner.write().expect("not poisoned") = value;
        }
    }
}
