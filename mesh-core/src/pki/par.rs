//! A tiny scoped work queue: RSA prime search and per-cluster signing and writing are
//! independent per item, and a mesh CA is at most a few hundred items, so a shared index over
//! `available_parallelism()` scoped threads is all the scheduling needed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Applies `f` to every item on up to `available_parallelism()` threads; results keep the
/// order of `items`. `None` only if a worker stopped without producing its result, which a
/// panic would already have propagated; callers turn it into an error rather than unwrap.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Option<Vec<R>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    map_on(cores, items, f)
}

/// Threads for work that mostly waits on the disk: every file meshboot writes is fsynced, and
/// a fsync waits for the filesystem's journal commit, which takes the fsyncs of every thread
/// waiting at that moment at once (ext4's and XFS's group commit). On two cores, two threads
/// issuing 100 cluster folders one fsync after another took 350 ms; many waiting together
/// share the commits.
pub(crate) const DISK_THREADS: usize = 16;

/// [`map`] for items that write files: on up to [`DISK_THREADS`] threads (or as many cores,
/// if more), since they spend their time waiting for fsync rather than computing.
pub(crate) fn map_writing<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Option<Vec<R>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    map_on(cores.max(DISK_THREADS), items, f)
}

fn map_on<T: Sync, R: Send>(
    threads: usize,
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Option<Vec<R>> {
    let threads = threads.min(items.len());
    if threads <= 1 {
        return Some(items.iter().map(f).collect());
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = f(item);
                    *slots[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_of_the_items() {
        let items: Vec<u32> = (0..100).collect();
        let out = super::map(&items, |i| i * 2).unwrap();
        assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(
            super::map(&[] as &[u32], |i| *i).unwrap(),
            Vec::<u32>::new()
        );
    }
}
