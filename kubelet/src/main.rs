use clap::{CommandFactory, FromArgMatches};
use kubelet::Config;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let matches = Config::command().get_matches();
    let mut config = Config::from_arg_matches(&matches)?;
    config.apply_file(&matches)?;
    component_base::logging::init(config.v);
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        signal.cancel();
    });
    kubelet::run(config, shutdown).await
}
