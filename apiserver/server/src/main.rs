//! kube-apiserver binary: parses upstream's flags and runs the server until SIGINT/SIGTERM.

use apiserver::Config;
use clap::Parser;
use tokio_util::sync::CancellationToken;

// Every request allocates and frees many small objects (JSON values, field sets); mimalloc
// does that with about half of glibc malloc's CPU (measured with hack/bench/apiserver.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    apiserver::init_tracing(config.v);
    let shutdown = CancellationToken::new();
    let s = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        s.cancel();
    });
    apiserver::run(config, shutdown).await
}
