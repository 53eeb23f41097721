//! Building the API client: `--kubeconfig` (and `--master` overriding its server), else
//! `$KUBECONFIG`/`~/.kube/config`, else the in-cluster service account (as client-go's
//! `BuildConfigFromFlags`).

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::Path;
use std::time::Duration;

/// Client settings shared by the components' flag sets.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub master: Option<String>,
    /// Identifies the component in the apiserver's logs (upstream sets the binary name).
    pub user_agent: String,
}

pub async fn config(opts: &ClientOptions) -> anyhow::Result<kube::Config> {
    let mut cfg = match (&opts.kubeconfig, &opts.master) {
        (Some(path), _) => from_file(path).await?,
        // client-go's BuildConfigFromFlags: --master alone is enough.
        (None, Some(master)) => kube::Config::new(master.parse().context("--master is not a URL")?),
        (None, None) => kube::Config::infer()
            .await
            .context("no --kubeconfig given and none could be inferred")?,
    };
    if let Some(master) = &opts.master {
        cfg.cluster_url = master.parse().context("--master is not a URL")?;
    }
    // Watches are long-lived; the per-request read timeout must not cut them.
    cfg.read_timeout = Some(Duration::from_secs(330));
    cfg.connect_timeout = Some(Duration::from_secs(10));
    Ok(cfg)
}

async fn from_file(path: &Path) -> anyhow::Result<kube::Config> {
    let kc = Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", path.display()))
}

pub async fn client(opts: &ClientOptions) -> anyhow::Result<kube::Client> {
    let cfg = config(opts).await?;
    let ua = opts.user_agent.clone();
    let mut cfg = cfg;
    if !ua.is_empty() {
        cfg.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_str(&ua).context("user agent")?,
        ));
    }
    kube::Client::try_from(cfg).context("building the API client")
}
