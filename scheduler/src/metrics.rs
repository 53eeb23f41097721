//! The scheduler's Prometheus metrics (a subset of upstream `pkg/scheduler/metrics`):
//! `scheduler_schedule_attempts_total{result,profile}` and `scheduler_pending_pods{queue}`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub result: String,
    pub profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Default)]
pub struct Metrics {
    pub attempts: Family<AttemptLabels, Counter>,
    pub pending: Family<QueueLabels, Gauge>,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        registry.register(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result ('scheduled', 'unschedulable' or 'error').",
            m.attempts.clone(),
        );
        registry.register(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type ('active', 'backoff', 'unschedulable' or 'gated').",
            m.pending.clone(),
        );
        m
    }

    pub fn attempt(&self, result: &str, profile: &str) {
        self.attempts
            .get_or_create(&AttemptLabels {
                result: result.to_string(),
                profile: profile.to_string(),
            })
            .inc();
    }

    pub fn set_pending(
        &self,
        (active, backoff, unschedulable, gated): (usize, usize, usize, usize),
    ) {
        for (q, n) in [
            ("active", active),
            ("backoff", backoff),
            ("unschedulable", unschedulable),
            ("gated", gated),
        ] {
            self.pending
                .get_or_create(&QueueLabels {
                    queue: q.to_string(),
                })
                .set(n as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_in_text_format() {
        let mut r = Registry::default();
        let m = Metrics::register(&mut r);
        m.attempt("scheduled", "default-scheduler");
        m.attempt("scheduled", "default-scheduler");
        m.set_pending((3, 1, 0, 0));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        assert!(
            out.contains("scheduler_schedule_attempts_total{result=\"scheduled\",profile=\"default-scheduler\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("scheduler_pending_pods{queue=\"active\"} 3"),
            "{out}"
        );
    }
}
