//! Leader election on a coordination/v1 Lease (client-go `tools/leaderelection` with the
//! `leases` resource lock): acquire when the lease is free or its holder has not renewed it
//! within `leaseDurationSeconds` of our own observation (never trusting the holder's clock),
//! renew every retry period, give up leadership after failing to renew for the renew deadline,
//! and release the lease on shutdown so a standby takes over at once.

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Upstream `--leader-elect-*` flags (defaults 15 s, 10 s, 2 s).
#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    pub fn new(namespace: &str, name: &str, identity: String) -> Self {
        LeaderElectionConfig {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// `<hostname>_<uuid-like suffix>`, as upstream's identities.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let nanos = Timestamp::now().as_nanosecond();
    format!("{host}_{:x}{:x}", std::process::id(), nanos & 0xffff_ffff)
}

struct Observed {
    holder: String,
    renew: Option<Timestamp>,
    at: Instant,
}

pub struct LeaderElector {
    api: Api<Lease>,
    cfg: LeaderElectionConfig,
    observed: Option<Observed>,
}

impl LeaderElector {
    pub fn new(client: Client, cfg: LeaderElectionConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: None,
        }
    }

    fn spec(&self, prev: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
        let mine = prev.and_then(|p| p.holder_identity.as_deref()) == Some(&self.cfg.identity);
        let transitions = prev.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration.as_secs() as i32),
            acquire_time: if mine {
                prev.and_then(|p| p.acquire_time.clone())
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if mine || prev.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..Default::default()
        }
    }

    /// One attempt to acquire or renew; true when we hold the lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> bool {
        let now = Timestamp::now();
        let current = match self.api.get_opt(&self.cfg.name).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(lease = %self.cfg.name, error = %e, "reading the leader lease failed");
                return false;
            }
        };
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(None, now)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.observe(&self.cfg.identity.clone(), Some(now));
                    true
                }
                Err(_) => false,
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let renew = spec.renew_time.as_ref().map(|t| t.0);
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|o| o.holder != holder || o.renew != renew);
        if changed {
            self.observe(&holder, renew);
        }
        let duration = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.max(1) as u64))
            .unwrap_or(self.cfg.lease_duration);
        let expired = self
            .observed
            .as_ref()
            .is_some_and(|o| o.at.elapsed() > duration);
        if !holder.is_empty() && holder != self.cfg.identity && !expired {
            return false;
        }
        lease.spec = Some(self.spec(Some(&spec), now));
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.observe(&self.cfg.identity.clone(), Some(now));
                true
            }
            Err(_) => false,
        }
    }

    fn observe(&mut self, holder: &str, renew: Option<Timestamp>) {
        self.observed = Some(Observed {
            holder: holder.to_string(),
            renew,
            at: Instant::now(),
        });
    }

    /// Gives the lease up (holder cleared, 1 s duration) if we still hold it.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await else {
            return;
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(&self.cfg.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        lease.spec = Some(spec);
        let _ = self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await;
    }

    /// Waits to become leader, runs `lead` while leading, and returns when shut down (Ok) or
    /// when leadership is lost (Err, upstream exits the process then).
    pub async fn run<F, Fut>(mut self, shutdown: CancellationToken, lead: F) -> anyhow::Result<()>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        tracing::info!(lease = %format!("{}/{}", self.cfg.namespace, self.cfg.name), identity = %self.cfg.identity, "attempting to acquire leader lease");
        loop {
            if self.try_acquire_or_renew().await {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.cfg.retry_period) => {}
            }
        }
        tracing::info!(lease = %self.cfg.name, identity = %self.cfg.identity, "successfully acquired lease");
        let leading = shutdown.child_token();
        let task = tokio::spawn(lead(leading.clone()));
        tokio::pin!(task);
        let mut last_renew = Instant::now();
        let result = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                r = &mut task => {
                    break match r {
                        Ok(r) => r,
                        Err(e) => Err(anyhow::anyhow!("leader task panicked: {e}")),
                    };
                }
                _ = tokio::time::sleep(self.cfg.retry_period) => {
                    if self.try_acquire_or_renew().await {
                        last_renew = Instant::now();
                    } else if last_renew.elapsed() > self.cfg.renew_deadline {
                        leading.cancel();
                        break Err(anyhow::anyhow!("leaderelection lost: {}", self.cfg.name));
                    }
                }
            }
        };
        leading.cancel();
        if result.is_ok() {
            self.release().await;
        }
        result
    }
}
