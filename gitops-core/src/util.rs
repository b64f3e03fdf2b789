//! Small runtime-agnostic helpers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A runtime-agnostic timer: a future that completes after a duration, so
/// the pure crates need no async runtime to wait.
///
/// All delays of the process share **one** timer thread (started on first
/// use) that keeps a heap of deadlines and wakes each waiting task at its
/// deadline: no thread per wait. Dropping a `Delay` before it fires removes
/// its deadline from the heap, so an abandoned wait (a cancelled sync, a
/// `select!` that went the other way) costs nothing afterwards.
///
/// This is [`futures_timer::Delay`](https://docs.rs/futures-timer), a small,
/// widely used crate built for exactly this (runtimes without a timer of
/// their own), wrapped so that the type in our API stays ours.
pub struct Delay {
    inner: futures_timer::Delay,
}

impl Delay {
    /// A future that completes after `d`. A duration too long to represent
    /// as a deadline waits (practically) forever.
    pub fn new(d: Duration) -> Self {
        Self {
            inner: futures_timer::Delay::new(d),
        }
    }
}

impl std::fmt::Debug for Delay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delay").finish_non_exhaustive()
    }
}

impl Future for Delay {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Threads of this process (Linux: one entry per thread in /proc).
    fn threads() -> Option<usize> {
        std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
    }

    #[test]
    fn waits_at_least_the_duration() {
        let t0 = Instant::now();
        futures::executor::block_on(Delay::new(Duration::from_millis(30)));
        assert!(t0.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn many_waits_share_one_thread_and_dropped_waits_do_not_fire() {
        // Warm up: the shared timer thread exists from now on.
        futures::executor::block_on(Delay::new(Duration::from_millis(1)));
        let before = threads();
        // A hundred concurrent waits, all polled once, then dropped: the old
        // implementation started a hundred sleeping threads here.
        let mut pending: Vec<_> = (0..100)
            .map(|_| Box::pin(Delay::new(Duration::from_secs(3600))))
            .collect();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        for d in &mut pending {
            assert!(d.as_mut().poll(&mut cx).is_pending());
        }
        let during = threads();
        drop(pending);
        // Other tests of this binary may start threads of their own, so
        // allow a little slack, far below one thread per wait.
        if let (Some(before), Some(during)) = (before, during) {
            assert!(
                during < before + 10,
                "{before} threads before, {during} with 100 pending delays"
            );
        }
        // The timer still works after the drops.
        futures::executor::block_on(Delay::new(Duration::from_millis(5)));
    }

    #[test]
    fn unrepresentable_durations_do_not_panic() {
        let mut d = Box::pin(Delay::new(Duration::MAX));
        let waker = futures::task::noop_waker();
        assert!(
            d.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
    }
}

/// The entries of `map` whose keys `keys` yields (in ascending order), in
/// key order: one merged pass over both when `keys` is dense in `map`,
/// lookups when it is sparse. Either way a large sync pays no logarithmic
/// search with full key comparisons per object.
pub(crate) fn entries_of<'a, K: Ord, V>(
    keys: impl ExactSizeIterator<Item = &'a K>,
    map: &'a std::collections::BTreeMap<K, V>,
) -> Vec<(&'a K, &'a V)> {
    if keys.len().saturating_mul(8) < map.len() {
        return keys.filter_map(|k| map.get_key_value(k)).collect();
    }
    let mut out = Vec::with_capacity(keys.len().min(map.len()));
    let mut entries = map.iter().peekable();
    for k in keys {
        while entries.next_if(|(e, _)| *e < k).is_some() {}
        if let Some(entry) = entries.next_if(|(e, _)| *e == k) {
            out.push(entry);
        }
    }
    out
}

#[cfg(test)]
mod entries_tests {
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn entries_of_dense_and_sparse_keys() {
        let map: BTreeMap<u32, u32> = (0..100)
            .filter(|i| i % 3 == 0)
            .map(|i| (i, i * 2))
            .collect();
        for keys in [
            (0..100).collect::<BTreeSet<u32>>(),
            BTreeSet::from([3, 4, 99]),
            BTreeSet::new(),
        ] {
            let got: Vec<(u32, u32)> = super::entries_of(keys.iter(), &map)
                .into_iter()
                .map(|(k, v)| (*k, *v))
                .collect();
            let want: Vec<(u32, u32)> = keys
                .iter()
                .filter_map(|k| map.get(k).map(|v| (*k, *v)))
                .collect();
            assert_eq!(got, want);
        }
    }
}
