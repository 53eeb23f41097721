//! kube-controller-manager's controllers against an in-process kube-apiserver (memory storage);
//! tests play the kubelet by writing pod status. One file per area.

mod batchsets;
mod network;
mod workloads;

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A test apiserver plus a controller manager running the given controllers.
pub struct Cluster {
    pub server: apiserver::TestServer,
    pub client: kube::Client,
    stop: CancellationToken,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts an apiserver and `kube-controller-manager --controllers=<controllers> <extra...>`.
pub async fn cluster(controllers: &str, extra: &[&str]) -> Cluster {
    let server = apiserver::TestServer::start(&[]).await.expect("apiserver");
    let client = kube::Client::try_from(kube::Config::new(server.url.parse().unwrap())).unwrap();
    let mut args = vec![
        "kube-controller-manager".to_string(),
        format!("--master={}", server.url),
        format!("--controllers={controllers}"),
        "--leader-elect=false".into(),
        "--secure-port=0".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let config = <controller_manager::Config as clap::Parser>::parse_from(args);
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        if let Err(e) = controller_manager::run(config, s).await {
            panic!("controller manager failed: {e:#}");
        }
    });
    Cluster {
        server,
        client,
        stop,
    }
}

/// Polls `check` every 100 ms until it returns Some, failing after `secs` seconds.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn unknown_controller_names_are_refused() {
    let config = <controller_manager::Config as clap::Parser>::parse_from([
        "kube-controller-manager",
        "--master=http://127.0.0.1:1",
        "--controllers=*,no-such-controller",
    ]);
    let err = controller_manager::run(config, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not in the list of known controllers"),
        "{err}"
    );
}

mod lifecycle;
