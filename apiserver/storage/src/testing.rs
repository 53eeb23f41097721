//! Test support: a private etcd on free loopback ports in a temporary directory, stopped and
//! removed on drop. Used by the storage and server integration tests (never by the product).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct EtcdServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl EtcdServer {
    /// Starts etcd (`$ETCD_BIN` or `etcd` on PATH) and waits until it accepts connections.
    pub async fn start() -> std::io::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("etcd-test-{}-{}", std::process::id(), uuid_like()));
        std::fs::create_dir_all(&dir)?;
        let (port, peer) = (free_port()?, free_port()?);
        let bin = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let data = dir.join("data");
        let child = Command::new(bin)
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{port}"),
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{port}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer}"),
                "--log-level",
                "error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let s = EtcdServer { child, port, dir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(s);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(std::io::Error::other("etcd did not start within 10s"))
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn uuid_like() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
