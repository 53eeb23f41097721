//! The scheduling queue (mirrors upstream `pkg/scheduler/backend/queue/scheduling_queue.go`):
//! activeQ ordered by priority then time queued (PrioritySort), backoffQ (1 s doubling per
//! attempt up to 10 s), unschedulable pods parked until a cluster event one of their
//! rejecting plugins registered for (or a move request while they were being scheduled), and
//! flushed back after 5 minutes regardless. Pods with scheduling gates wait gated.

use crate::framework::runtime::Nominator;
use crate::framework::{ClusterEvent, PodInfo};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_UNSCHEDULABLE_DURATION: Duration = Duration::from_secs(300);

/// A pod waiting in (or popped from) the queue.
#[derive(Clone, Debug)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    pub attempts: u32,
    pub initial_attempt: Option<Instant>,
    /// Plugins that rejected it last time (empty after an error: any event moves it).
    pub unschedulable_plugins: HashSet<String>,
    /// When its last attempt failed.
    pub failed_at: Option<Instant>,
    /// The scheduling cycle that popped it.
    pub cycle: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Active(Reverse<i32>, u64),
    Backoff(Instant, u64),
    Unschedulable(Instant),
    Gated,
}

struct Entry {
    qp: QueuedPod,
    place: Place,
}

#[derive(Default)]
struct Inner {
    pods: HashMap<String, Entry>,
    active: BTreeMap<(Reverse<i32>, u64), String>,
    backoff: BTreeMap<(Instant, u64), String>,
    unschedulable: HashSet<String>,
    in_flight: HashSet<String>,
    seq: u64,
    cycle: u64,
    move_request_cycle: u64,
    closed: bool,
    initial_backoff: Duration,
    max_backoff: Duration,
}

pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    pub nominator: Arc<Nominator>,
    /// Events each plugin registered (plugin name -> events), across profiles.
    events: HashMap<String, Vec<ClusterEvent>>,
}

fn gated(pi: &PodInfo) -> bool {
    pi.pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty())
}

fn nominated(pi: &PodInfo) -> Option<&str> {
    pi.pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Backoff after `attempts` failures: 1 s doubling, at most 10 s.
pub fn backoff_duration(attempts: u32) -> Duration {
    backoff_between(attempts, INITIAL_BACKOFF, MAX_BACKOFF)
}

/// Backoff after `attempts` failures: `initial` doubling, at most `max`.
pub fn backoff_between(attempts: u32, initial: Duration, max: Duration) -> Duration {
    let mut d = initial.min(max);
    for _ in 1..attempts.max(1) {
        d *= 2;
        if d >= max {
            return max;
        }
    }
    d
}

impl Inner {
    fn unlink(&mut self, key: &str) -> Option<Entry> {
        let e = self.pods.remove(key)?;
        match e.place {
            Place::Active(p, s) => {
                self.active.remove(&(p, s));
            }
            Place::Backoff(t, s) => {
                self.backoff.remove(&(t, s));
            }
            Place::Unschedulable(_) => {
                self.unschedulable.remove(key);
            }
            Place::Gated => {}
        }
        Some(e)
    }

    fn place(&mut self, qp: QueuedPod, place: Place) {
        let key = qp.info.key.clone();
        match place {
            Place::Active(p, s) => {
                self.active.insert((p, s), key.clone());
            }
            Place::Backoff(t, s) => {
                self.backoff.insert((t, s), key.clone());
            }
            Place::Unschedulable(_) => {
                self.unschedulable.insert(key.clone());
            }
            Place::Gated => {}
        }
        self.pods.insert(key, Entry { qp, place });
    }

    fn activate(&mut self, qp: QueuedPod) {
        self.seq += 1;
        let place = Place::Active(Reverse(qp.info.priority), self.seq);
        self.place(qp, place);
    }

    fn backoff_until(&mut self, qp: QueuedPod, until: Instant) {
        self.seq += 1;
        let s = self.seq;
        self.place(qp, Place::Backoff(until, s));
    }

    /// To backoffQ while its backoff runs, else to activeQ.
    fn requeue(&mut self, qp: QueuedPod, now: Instant) {
        let backoff = backoff_between(qp.attempts, self.initial_backoff, self.max_backoff);
        match qp.failed_at.map(|t| t + backoff) {
            Some(until) if until > now => self.backoff_until(qp, until),
            _ => self.activate(qp),
        }
    }
}

impl SchedulingQueue {
    pub fn new(nominator: Arc<Nominator>, events: HashMap<String, Vec<ClusterEvent>>) -> Self {
        SchedulingQueue {
            inner: Mutex::new(Inner {
                initial_backoff: INITIAL_BACKOFF,
                max_backoff: MAX_BACKOFF,
                ..Default::default()
            }),
            notify: Notify::new(),
            nominator,
            events,
        }
    }

    /// `podInitialBackoffSeconds` / `podMaxBackoffSeconds`.
    pub fn set_backoff(&self, initial: Duration, max: Duration) {
        let mut g = self.inner.lock().expect("queue");
        g.initial_backoff = initial;
        g.max_backoff = max.max(initial);
    }

    /// A new pending pod.
    pub fn add(&self, info: Arc<PodInfo>) {
        self.nominator.set(&info, nominated(&info));
        let mut g = self.inner.lock().expect("queue");
        if g.in_flight.contains(&info.key) {
            return;
        }
        let old = g.unlink(&info.key);
        let qp = match old {
            Some(e) => QueuedPod { info, ..e.qp },
            None => QueuedPod {
                info,
                attempts: 0,
                initial_attempt: None,
                unschedulable_plugins: HashSet::new(),
                failed_at: None,
                cycle: 0,
            },
        };
        if gated(&qp.info) {
            g.place(qp, Place::Gated);
        } else {
            g.activate(qp);
        }
        drop(g);
        self.notify.notify_one();
    }

    /// A pending pod changed: gated or unschedulable pods get another chance.
    pub fn update(&self, info: Arc<PodInfo>) {
        self.nominator.set(&info, nominated(&info));
        let mut g = self.inner.lock().expect("queue");
        if g.in_flight.contains(&info.key) {
            return;
        }
        let Some(e) = g.unlink(&info.key) else {
            drop(g);
            return self.add(info);
        };
        let qp = QueuedPod { info, ..e.qp };
        match e.place {
            // Keeps its place in line; a new priority re-sorts it.
            Place::Active(_, seq) => {
                let p = Reverse(qp.info.priority);
                g.place(qp, Place::Active(p, seq));
            }
            Place::Backoff(t, _) => g.backoff_until(qp, t),
            Place::Gated if gated(&qp.info) => g.place(qp, Place::Gated),
            Place::Gated | Place::Unschedulable(_) => g.requeue(qp, Instant::now()),
        }
        drop(g);
        self.notify.notify_one();
    }

    pub fn delete(&self, key: &str) {
        self.nominator.remove(key);
        self.inner.lock().expect("queue").unlink(key);
    }

    /// The next pod to schedule (highest priority, then oldest); None once closed.
    pub async fn pop(&self) -> Option<QueuedPod> {
        loop {
            let notified = self.notify.notified();
            {
                let mut g = self.inner.lock().expect("queue");
                if g.closed {
                    return None;
                }
                if let Some((_, key)) = g.active.pop_first()
                    && let Some(e) = g.pods.remove(&key)
                {
                    g.cycle += 1;
                    let mut qp = e.qp;
                    qp.attempts += 1;
                    qp.cycle = g.cycle;
                    qp.initial_attempt.get_or_insert_with(Instant::now);
                    g.in_flight.insert(key);
                    return Some(qp);
                }
            }
            notified.await;
        }
    }

    /// The scheduling attempt of `key` is over (bound, or re-queued).
    pub fn done(&self, key: &str) {
        self.inner.lock().expect("queue").in_flight.remove(key);
    }

    /// Re-queues a pod that failed: to backoffQ after an error or when a move request came
    /// in while it was being scheduled, else to the unschedulable pods.
    pub fn add_unschedulable(&self, mut qp: QueuedPod) {
        let now = Instant::now();
        qp.failed_at = Some(now);
        let mut g = self.inner.lock().expect("queue");
        g.in_flight.remove(&qp.info.key);
        if g.pods.contains_key(&qp.info.key) {
            return;
        }
        if qp.unschedulable_plugins.is_empty() || g.move_request_cycle >= qp.cycle {
            let until = now + backoff_between(qp.attempts, g.initial_backoff, g.max_backoff);
            g.backoff_until(qp, until);
        } else {
            g.place(qp, Place::Unschedulable(now));
        }
    }

    /// A cluster event: unschedulable pods one of whose rejecting plugins registered for it
    /// move to backoffQ or activeQ.
    pub fn move_all(&self, event: ClusterEvent) {
        let now = Instant::now();
        let mut g = self.inner.lock().expect("queue");
        g.move_request_cycle = g.cycle;
        if g.unschedulable.is_empty() {
            return;
        }
        let keys: Vec<String> = g
            .unschedulable
            .iter()
            .filter_map(|k| g.pods.get(k).map(|e| (k, e)))
            .filter(|(_, e)| {
                e.qp.unschedulable_plugins.is_empty()
                    || e.qp
                        .unschedulable_plugins
                        .iter()
                        .any(|p| self.events.get(p).is_none_or(|evs| evs.contains(&event)))
            })
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return;
        }
        for k in keys {
            if let Some(e) = g.unlink(&k) {
                g.requeue(e.qp, now);
            }
        }
        drop(g);
        self.notify.notify_one();
    }

    /// Moves finished backoffs to activeQ and pods unschedulable for 5 minutes back.
    pub fn flush(&self) {
        let now = Instant::now();
        let mut g = self.inner.lock().expect("queue");
        let mut moved = false;
        while let Some((&(t, s), _)) = g.backoff.first_key_value() {
            if t > now {
                break;
            }
            let key = g.backoff.get(&(t, s)).cloned().unwrap_or_default();
            if let Some(e) = g.unlink(&key) {
                g.activate(e.qp);
                moved = true;
            } else {
                g.backoff.remove(&(t, s));
            }
        }
        let stale: Vec<String> = g
            .unschedulable
            .iter()
            .filter(|k| {
                g.pods.get(*k).is_some_and(|e| {
                    matches!(e.place, Place::Unschedulable(t) if now.duration_since(t) >= MAX_UNSCHEDULABLE_DURATION)
                })
            })
            .cloned()
            .collect();
        for k in stale {
            if let Some(e) = g.unlink(&k) {
                g.requeue(e.qp, now);
                moved = true;
            }
        }
        drop(g);
        if moved {
            self.notify.notify_one();
        }
    }

    /// Runs [`flush`](Self::flush) every 100 ms (backoffs end on time) until shut down.
    pub async fn run_flusher(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => self.flush(),
            }
        }
    }

    pub fn close(&self) {
        self.inner.lock().expect("queue").closed = true;
        self.notify.notify_one();
    }

    /// (active, backoff, unschedulable, gated) counts.
    pub fn lens(&self) -> (usize, usize, usize, usize) {
        let g = self.inner.lock().expect("queue");
        let mut r = (0, 0, 0, 0);
        for e in g.pods.values() {
            match e.place {
                Place::Active(..) => r.0 += 1,
                Place::Backoff(..) => r.1 += 1,
                Place::Unschedulable(_) => r.2 += 1,
                Place::Gated => r.3 += 1,
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;

    fn pi(name: &str, prio: i32) -> Arc<PodInfo> {
        let mut p = pod(name);
        p.spec.as_mut().unwrap().priority = Some(prio);
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    fn queue() -> SchedulingQueue {
        let events = HashMap::from([("NodeResourcesFit".to_string(), vec![ClusterEvent::NodeAdd])]);
        SchedulingQueue::new(Arc::default(), events)
    }

    #[tokio::test]
    async fn priority_then_fifo() {
        let q = queue();
        q.add(pi("a", 0));
        q.add(pi("b", 10));
        q.add(pi("c", 0));
        let order: Vec<String> = vec![
            q.pop().await.unwrap().info.name.clone(),
            q.pop().await.unwrap().info.name.clone(),
            q.pop().await.unwrap().info.name.clone(),
        ];
        assert_eq!(order, vec!["b", "a", "c"]);
    }

    #[test]
    fn backoff_doubles_up_to_ten_seconds() {
        assert_eq!(backoff_duration(1), Duration::from_secs(1));
        assert_eq!(backoff_duration(2), Duration::from_secs(2));
        assert_eq!(backoff_duration(4), Duration::from_secs(8));
        assert_eq!(backoff_duration(5), Duration::from_secs(10));
        assert_eq!(backoff_duration(30), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn unschedulable_pods_move_on_registered_events_only() {
        let q = queue();
        q.add(pi("a", 0));
        let mut qp = q.pop().await.unwrap();
        qp.unschedulable_plugins.insert("NodeResourcesFit".into());
        q.add_unschedulable(qp);
        assert_eq!(q.lens(), (0, 0, 1, 0));
        q.move_all(ClusterEvent::AssignedPodAdd);
        assert_eq!(q.lens(), (0, 0, 1, 0));
        q.move_all(ClusterEvent::NodeAdd);
        // Still backing off (1 s after the failure).
        assert_eq!(q.lens(), (0, 1, 0, 0));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        q.flush();
        assert_eq!(q.lens(), (1, 0, 0, 0));
    }

    #[tokio::test]
    async fn a_move_during_the_attempt_sends_the_pod_to_backoff() {
        let q = queue();
        q.add(pi("a", 0));
        let mut qp = q.pop().await.unwrap();
        q.move_all(ClusterEvent::NodeAdd);
        qp.unschedulable_plugins.insert("NodeResourcesFit".into());
        q.add_unschedulable(qp);
        assert_eq!(q.lens(), (0, 1, 0, 0));
    }

    #[tokio::test]
    async fn gated_pods_wait_for_their_gates_to_go() {
        let q = queue();
        let mut p = pod("g");
        p.spec.as_mut().unwrap().scheduling_gates =
            Some(vec![k8s_openapi::api::core::v1::PodSchedulingGate {
                name: "x".into(),
            }]);
        q.add(Arc::new(PodInfo::new(Arc::new(p.clone()))));
        assert_eq!(q.lens(), (0, 0, 0, 1));
        p.spec.as_mut().unwrap().scheduling_gates = None;
        q.update(Arc::new(PodInfo::new(Arc::new(p))));
        assert_eq!(q.lens(), (1, 0, 0, 0));
    }
}
