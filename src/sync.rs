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

/// The value of a lock whose holder may have panicked. The crate's critical sections leave
/// their state consistent before anything that can panic (a user's sink, source or
/// callback), so a poisoned lock's data is sound and the engine goes on (for `std` and
/// `loom` locks alike, `Mutex` and `RwLock`).
#[inline]
pub(crate) fn unpoison<G>(result: std::sync::LockResult<G>) -> G {
    result.unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Locks `m` (see [`unpoison`]).
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    unpoison(m.lock())
}

/// Locks a `std` mutex: the engine's locks that loom does not model (the same function as
/// [`lock`] but under `--cfg loom`).
#[inline]
pub(crate) fn lock_std<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    unpoison(m.lock())
}

/// The text of a panic's payload (`"panicked: …"`), for the error that reports a panicking
/// sink or source.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match payload.downcast_ref::<&str>() {
        Some(s) => format!("panicked: {s}"),
        None => match payload.downcast_ref::<String>() {
            Some(s) => format!("panicked: {s}"),
            None => "panicked".to_string(),
        },
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_taken_over_and_panics_are_described() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let payload = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("sink failed at {}", 7);
        })
        .join()
        .unwrap_err();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
        assert_eq!(panic_message(&*payload), "panicked: sink failed at 7");
        assert_eq!(panic_message(&"plain"), "panicked: plain");
        assert_eq!(panic_message(&5u8), "panicked");
    }
}
