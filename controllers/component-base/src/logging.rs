//! Tracing setup shared by the components: `--v` maps to a level as klog's verbosity does
//! (0 info, 2-4 debug, 5+ trace); `RUST_LOG` overrides it.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (idempotent: later calls are ignored, which tests rely on).
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 | 1 => "info",
        2..=4 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},hyper=warn,hyper_util=warn,h2=warn,tonic=warn,tower=warn,rustls=warn,kube_client=warn,kube_runtime=warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .try_init();
}
