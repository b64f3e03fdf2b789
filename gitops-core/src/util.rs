//! Small runtime-agnostic helpers.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A runtime-agnostic timer: a helper thread sleeps and wakes the task, so
/// the pure crates need no async runtime to wait.
pub struct Delay {
    deadline: Instant,
    waker: Option<Arc<Mutex<Waker>>>,
}

impl Delay {
    /// A future that completes after `d`.
    pub fn new(d: Duration) -> Self {
        let now = Instant::now();
        // An unrepresentable deadline is far enough to wait a year at a time.
        let deadline = now
            .checked_add(d)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        Self {
            deadline,
            waker: None,
        }
    }
}

impl Future for Delay {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        if now >= self.deadline {
            return Poll::Ready(());
        }
        match &self.waker {
            Some(w) => *lock(w) = cx.waker().clone(),
            None => {
                let w = Arc::new(Mutex::new(cx.waker().clone()));
                let remaining = self.deadline - now;
                let shared = Arc::clone(&w);
                std::thread::spawn(move || {
                    std::thread::sleep(remaining);
                    lock(&shared).wake_by_ref();
                });
                self.waker = Some(w);
            }
        }
        Poll::Pending
    }
}
