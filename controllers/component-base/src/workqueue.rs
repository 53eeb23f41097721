//! A rate-limited work queue with client-go's `workqueue` semantics: an item queued many times is
//! processed once; an item being processed is never handed to a second worker (if it is queued
//! again meanwhile, it is processed again after `done`); failures back off per item
//! exponentially from 5 ms to 1000 s (`DefaultControllerRateLimiter`); `add_after` delays.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

struct State<T> {
    queue: VecDeque<T>,
    dirty: HashSet<T>,
    processing: HashSet<T>,
    failures: HashMap<T, u32>,
    shut_down: bool,
}

pub struct WorkQueue<T: Hash + Eq + Clone + Send + 'static> {
    state: Mutex<State<T>>,
    notify: Notify,
    name: String,
}

impl<T: Hash + Eq + Clone + Send + Sync + 'static> WorkQueue<T> {
    pub fn new(name: impl Into<String>) -> Arc<Self> {
        Arc::new(WorkQueue {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                shut_down: false,
            }),
            notify: Notify::new(),
            name: name.into(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn add(&self, item: T) {
        let mut s = self.state.lock().expect("workqueue");
        if s.shut_down || s.dirty.contains(&item) {
            return;
        }
        s.dirty.insert(item.clone());
        if s.processing.contains(&item) {
            return;
        }
        s.queue.push_back(item);
        drop(s);
        self.notify.notify_one();
    }

    pub fn add_after(self: &Arc<Self>, item: T, delay: Duration) {
        if delay.is_zero() {
            self.add(item);
            return;
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(item);
        });
    }

    /// Re-queues after the item's backoff, which doubles with each consecutive failure.
    pub fn add_rate_limited(self: &Arc<Self>, item: T) {
        let n = {
            let mut s = self.state.lock().expect("workqueue");
            let n = s.failures.entry(item.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let ms = 5u64.saturating_mul(1u64 << (n - 1).min(30));
        self.add_after(item, Duration::from_millis(ms.min(1_000_000)));
    }

    /// Clears the item's failure count (after a success).
    pub fn forget(&self, item: &T) {
        self.state.lock().expect("workqueue").failures.remove(item);
    }

    pub fn num_requeues(&self, item: &T) -> u32 {
        self.state
            .lock()
            .expect("workqueue")
            .failures
            .get(item)
            .copied()
            .unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.state.lock().expect("workqueue").queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next item, or `None` once shut down.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.lock().expect("workqueue");
                if let Some(item) = s.queue.pop_front() {
                    s.dirty.remove(&item);
                    s.processing.insert(item.clone());
                    if !s.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return Some(item);
                }
                if s.shut_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks the item processed; if it was queued meanwhile it goes back on the queue.
    pub fn done(&self, item: &T) {
        let mut s = self.state.lock().expect("workqueue");
        s.processing.remove(item);
        if s.dirty.contains(item) {
            s.queue.push_back(item.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn shut_down(&self) {
        self.state.lock().expect("workqueue").shut_down = true;
        self.notify.notify_waiters();
    }
}

/// Runs `workers` loops taking keys from the queue and calling `sync`; an error re-queues the
/// key with backoff, success forgets its failures.
pub async fn run_workers<T, F, Fut>(queue: Arc<WorkQueue<T>>, workers: usize, sync: F)
where
    T: Hash + Eq + Clone + Send + Sync + std::fmt::Display + 'static,
    F: Fn(T) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut handles = Vec::new();
    for _ in 0..workers.max(1) {
        let q = queue.clone();
        let sync = sync.clone();
        handles.push(tokio::spawn(async move {
            while let Some(item) = q.get().await {
                match sync(item.clone()).await {
                    Ok(()) => q.forget(&item),
                    Err(e) => {
                        tracing::info!(queue = q.name(), key = %item, error = %format!("{e:#}"), "sync failed; retrying");
                        q.add_rate_limited(item.clone());
                    }
                }
                q.done(&item);
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deduplicates_and_requeues_items_added_while_processing() {
        let q: Arc<WorkQueue<String>> = WorkQueue::new("t");
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        assert_eq!(q.len(), 2);
        let a = q.get().await.unwrap();
        assert_eq!(a, "a");
        q.add("a".into());
        // "a" is being processed: it is not handed out again until done.
        assert_eq!(q.get().await.unwrap(), "b");
        assert!(q.is_empty());
        q.done(&a);
        assert_eq!(q.get().await.unwrap(), "a");
    }

    #[tokio::test]
    async fn shut_down_wakes_getters() {
        let q: Arc<WorkQueue<String>> = WorkQueue::new("t");
        let q2 = q.clone();
        let h = tokio::spawn(async move { q2.get().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        q.shut_down();
        assert_eq!(h.await.unwrap(), None);
    }

    #[tokio::test]
    async fn rate_limited_backoff_doubles_until_forgotten() {
        let q: Arc<WorkQueue<String>> = WorkQueue::new("t");
        q.add_rate_limited("x".into());
        q.add_rate_limited("x".into());
        assert_eq!(q.num_requeues(&"x".to_string()), 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(q.get().await.unwrap(), "x");
        q.forget(&"x".to_string());
        assert_eq!(q.num_requeues(&"x".to_string()), 0);
    }
}
