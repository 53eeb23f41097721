//! Build script: finds the unpacked sources of the `k8s-pb` and `k8s-openapi` crates.
//!
//! Order of attempts: an explicit environment override, then the exact version pinned in the
//! workspace `Cargo.lock` looked up under `$CARGO_HOME/registry/src/*/`, then `cargo metadata
//! --offline`. Both crates are regular dependencies of this package, so cargo has always
//! downloaded them before it runs this script.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One crate whose sources the build script needs.
pub struct Wanted {
    pub name: &'static str,
    /// Version prefix accepted when the lock file cannot be read, e.g. "0.9.".
    pub version_prefix: &'static str,
    /// Environment variable that may point at the crate root directly.
    pub env_override: &'static str,
}

/// Returns the root directory (the one holding `Cargo.toml` and `src/`) of the wanted crate.
pub fn crate_root(wanted: &Wanted, manifest_dir: &Path) -> Result<PathBuf, String> {
    println!("cargo:rerun-if-env-changed={}", wanted.env_override);
    let mut tried = Vec::new();

    if let Some(dir) = std::env::var_os(wanted.env_override) {
        let dir = PathBuf::from(dir);
        if dir.join("src").is_dir() {
            return Ok(dir);
        }
        tried.push(format!(
            "${} = {} (no src/ directory)",
            wanted.env_override,
            dir.display()
        ));
    }

    let lock_version = find_lock_file(manifest_dir).and_then(|lock| {
        println!("cargo:rerun-if-changed={}", lock.display());
        let text = std::fs::read_to_string(&lock).ok()?;
        locked_version(&text, wanted.name, wanted.version_prefix)
    });
    match &lock_version {
        Some(version) => {
            let dir_name = format!("{}-{}", wanted.name, version);
            for registry in registry_src_dirs() {
                let candidate = registry.join(&dir_name);
                if candidate.join("src").is_dir() {
                    return Ok(candidate);
                }
                tried.push(format!("{} (missing)", candidate.display()));
            }
        }
        None => tried.push(format!(
            "Cargo.lock entry for {} {}x (not found)",
            wanted.name, wanted.version_prefix
        )),
    }

    match from_cargo_metadata(wanted, manifest_dir) {
        Ok(dir) => return Ok(dir),
        Err(e) => tried.push(format!("cargo metadata --offline: {e}")),
    }

    Err(format!(
        "apiserver-protobuf build script: cannot find the sources of crate `{}` ({}x).\n\
         Run `cargo fetch` first, or set {} to the crate's root directory.\nTried:\n  {}",
        wanted.name,
        wanted.version_prefix,
        wanted.env_override,
        tried.join("\n  ")
    ))
}

fn find_lock_file(manifest_dir: &Path) -> Option<PathBuf> {
    manifest_dir
        .ancestors()
        .map(|dir| dir.join("Cargo.lock"))
        .find(|path| path.is_file())
}

/// Reads the `version` of the `[[package]]` named `name` from a Cargo.lock text.
fn locked_version(lock: &str, name: &str, prefix: &str) -> Option<String> {
    let mut best: Option<String> = None;
    for block in lock.split("[[package]]") {
        let mut pkg_name = None;
        let mut version = None;
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("name = ") {
                pkg_name = Some(v.trim_matches('"'));
            } else if let Some(v) = line.strip_prefix("version = ") {
                version = Some(v.trim_matches('"'));
            }
        }
        if let (Some(n), Some(v)) = (pkg_name, version)
            && n == name
            && v.starts_with(prefix)
        {
            best = Some(v.to_string());
        }
    }
    best
}

fn cargo_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Some(PathBuf::from(home));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo"))
}

fn registry_src_dirs() -> Vec<PathBuf> {
    let Some(home) = cargo_home() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(home.join("registry").join("src")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    dirs
}

fn from_cargo_metadata(wanted: &Wanted, manifest_dir: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut args = vec![
        "metadata".to_string(),
        "--format-version".into(),
        "1".into(),
    ];
    if let Ok(target) = std::env::var("TARGET") {
        args.extend(["--filter-platform".to_string(), target]);
    }
    // Offline first; cargo may need to download crates the workspace has not fetched yet.
    let mut last_error = String::new();
    for offline in [true, false] {
        let mut cmd = Command::new(&cargo);
        cmd.args(&args).current_dir(manifest_dir);
        if offline {
            cmd.arg("--offline");
        }
        let output = cmd.output().map_err(|e| e.to_string())?;
        if output.status.success() {
            return package_root(wanted, &output.stdout);
        }
        last_error = String::from_utf8_lossy(&output.stderr).trim().to_string();
    }
    Err(last_error)
}

fn package_root(wanted: &Wanted, stdout: &[u8]) -> Result<PathBuf, String> {
    let meta: serde_json::Value = serde_json::from_slice(stdout).map_err(|e| e.to_string())?;
    let packages = meta["packages"].as_array().ok_or("no packages in output")?;
    for pkg in packages {
        let name = pkg["name"].as_str().unwrap_or_default();
        let version = pkg["version"].as_str().unwrap_or_default();
        if name == wanted.name && version.starts_with(wanted.version_prefix) {
            let manifest = pkg["manifest_path"].as_str().ok_or("no manifest_path")?;
            if let Some(root) = Path::new(manifest).parent() {
                return Ok(root.to_path_buf());
            }
        }
    }
    Err("package not listed".to_string())
}
