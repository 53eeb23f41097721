//! emptyDir (upstream `pkg/volume/emptydir/empty_dir.go`, `empty_dir_linux.go`) and the
//! host mount helpers the manager needs: 0777 directories, tmpfs for `medium: Memory` (sized
//! like upstream's `calculateEmptyDirMemorySize`), the mount table, and teardown that unmounts
//! first and never deletes across a filesystem boundary.

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates the directory (and parents) and makes its permission bits 0777 whatever the
/// umask (upstream `setupDir`).
pub fn ensure_dir(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let meta = fs::metadata(dir).map_err(|e| format!("stat {}: {e}", dir.display()))?;
    if meta.permissions().mode() & 0o777 != 0o777 {
        let mode = (meta.permissions().mode() & 0o7000) | 0o777;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Mounts a tmpfs on `dir` (`size=` bytes when known).
pub async fn mount_tmpfs(dir: &Path, size: Option<i128>) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("mount");
    cmd.arg("-t").arg("tmpfs");
    if let Some(size) = size.filter(|s| *s > 0) {
        cmd.arg("-o").arg(format!("size={size}"));
    }
    cmd.arg("tmpfs").arg(dir);
    run(cmd, "mount", dir).await
}

async fn run(mut cmd: tokio::process::Command, what: &str, dir: &Path) -> Result<(), String> {
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("{what} {}: {e}", dir.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed for {}: {}: {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The mount points of this mount namespace (`/proc/self/mountinfo`, field 5, unescaped).
pub fn mount_points() -> Result<Vec<PathBuf>, String> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    Ok(parse_mountinfo(&text))
}

pub fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|mp| PathBuf::from(unescape_octal(mp)))
        .collect()
}

/// `\040` -> ' ' and friends, as the kernel escapes mount points.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn is_mount_point(dir: &Path) -> Result<bool, String> {
    let canon = fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(mount_points()?.contains(&canon))
}

/// Mount points at or below `dir`, deepest first.
fn mounts_below(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let canon = fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut v: Vec<PathBuf> = mount_points()?
        .into_iter()
        .filter(|mp| mp.starts_with(&canon))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    Ok(v)
}

/// Unmounts everything mounted at or below `dir` (stacked mounts included).
pub async fn unmount_all_below(dir: &Path) -> Result<(), String> {
    for _ in 0..8 {
        let mounts = mounts_below(dir)?;
        if mounts.is_empty() {
            return Ok(());
        }
        for mp in mounts {
            let mut cmd = tokio::process::Command::new("umount");
            cmd.arg(&mp);
            if let Err(e) = run(cmd, "unmount", &mp).await {
                // Another pass may have removed it already; only a remaining mount counts.
                if mount_points()?.contains(&mp) {
                    return Err(e);
                }
            }
        }
    }
    match mounts_below(dir)?.first() {
        None => Ok(()),
        Some(mp) => Err(format!("{} is still mounted", mp.display())),
    }
}

/// `rm -r` that refuses to descend into another filesystem (a mount left behind) and does
/// not follow symlinks (upstream `RemoveAllOneFilesystem`).
pub fn remove_all_one_filesystem(dir: &Path) -> Result<(), String> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    remove_rec(dir, meta.dev())
}

fn remove_rec(p: &Path, dev: u64) -> Result<(), String> {
    let err = |e: io::Error| format!("removing {}: {e}", p.display());
    let meta = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err(e)),
    };
    if !meta.is_dir() {
        return match fs::remove_file(p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(err(e)),
            _ => Ok(()),
        };
    }
    if meta.dev() != dev {
        return Err(format!(
            "cannot remove {}: it is on another filesystem (still mounted?)",
            p.display()
        ));
    }
    for entry in fs::read_dir(p).map_err(err)? {
        remove_rec(&entry.map_err(err)?.path(), dev)?;
    }
    match fs::remove_dir(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(err(e)),
        _ => Ok(()),
    }
}

fn quantity_value(q: Option<&Quantity>) -> Option<i128> {
    q.and_then(|q| apiserver_apis::quantity::parse(&q.0).ok())
        .map(|q| q.value())
}

fn memory_limit(c: &Container) -> Option<i128> {
    quantity_value(c.resources.as_ref()?.limits.as_ref()?.get("memory"))
}

/// The pod's memory limit as its cgroup gets it: pod-level `resources.limits.memory`, else
/// the sum over app containers and sidecars, at least each plain init container's — and
/// none at all if any container has no memory limit.
pub fn pod_memory_limit(pod: &Pod) -> Option<i128> {
    let spec = pod.spec.as_ref()?;
    if let Some(l) = spec
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
    {
        return quantity_value(Some(l));
    }
    let mut sum: i128 = 0;
    for c in &spec.containers {
        sum += memory_limit(c)?;
    }
    let mut init_max: i128 = 0;
    for c in spec.init_containers.as_deref().unwrap_or_default() {
        let l = memory_limit(c)?;
        if c.restart_policy.as_deref() == Some("Always") {
            sum += l;
        } else {
            init_max = init_max.max(l);
        }
    }
    Some(sum.max(init_max))
}

/// Size of a memory-backed volume: node allocatable memory, lowered to the pod's memory limit
/// and then to the volume's `sizeLimit` when those are positive and smaller.
pub fn memory_size_limit(
    pod: &Pod,
    node_allocatable_memory: Option<&Quantity>,
    size_limit: Option<&Quantity>,
) -> Option<i128> {
    let mut size = quantity_value(node_allocatable_memory).filter(|v| *v > 0);
    for candidate in [pod_memory_limit(pod), quantity_value(size_limit)] {
        if let Some(v) = candidate.filter(|v| *v > 0)
            && size.is_none_or(|s| v <= s)
        {
            size = Some(v);
        }
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::test_support::{TempDir, pod_from_json};

    #[test]
    fn mountinfo_parsing_unescapes() {
        let text = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                    42 27 0:39 / /tmp/a\\040b rw - tmpfs tmpfs rw,size=1024k\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![PathBuf::from("/proc"), PathBuf::from("/tmp/a b")]
        );
    }

    #[test]
    fn memory_size_picks_smallest_positive() {
        let q = |s: &str| Quantity(s.to_string());
        let pod = pod_from_json(serde_json::json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"memory": "64Mi"}}},
            {"name": "b", "resources": {"limits": {"memory": "64Mi"}}}]}}));
        assert_eq!(
            memory_size_limit(&pod, Some(&q("1Gi")), None),
            Some(128 << 20)
        );
        assert_eq!(
            memory_size_limit(&pod, Some(&q("1Gi")), Some(&q("10Mi"))),
            Some(10 << 20)
        );
        // A sizeLimit above the pod limit does not raise it.
        assert_eq!(
            memory_size_limit(&pod, Some(&q("1Gi")), Some(&q("2Gi"))),
            Some(128 << 20)
        );
        let unlimited = pod_from_json(serde_json::json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"memory": "64Mi"}}}, {"name": "b"}]}}));
        assert_eq!(pod_memory_limit(&unlimited), None);
        assert_eq!(
            memory_size_limit(&unlimited, Some(&q("1Gi")), None),
            Some(1 << 30)
        );
        assert_eq!(memory_size_limit(&unlimited, None, None), None);
        let init = pod_from_json(serde_json::json!({"spec": {
            "initContainers": [{"name": "i", "resources": {"limits": {"memory": "1Gi"}}}],
            "containers": [{"name": "a", "resources": {"limits": {"memory": "64Mi"}}}]}}));
        assert_eq!(pod_memory_limit(&init), Some(1 << 30));
    }

    #[test]
    fn ensure_dir_sets_0777() {
        let tmp = TempDir::new();
        let d = tmp.path().join("a/b");
        ensure_dir(&d).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o777
        );
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
        ensure_dir(&d).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o777
        );
    }

    #[test]
    fn remove_all_does_not_follow_symlinks() {
        let tmp = TempDir::new();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("keep"), "x").unwrap();
        let victim = tmp.path().join("pod");
        fs::create_dir_all(victim.join("d")).unwrap();
        fs::write(victim.join("d/f"), "y").unwrap();
        std::os::unix::fs::symlink(&outside, victim.join("link")).unwrap();
        remove_all_one_filesystem(&victim).unwrap();
        assert!(!victim.exists());
        assert!(outside.join("keep").exists());
        remove_all_one_filesystem(&victim).unwrap();
    }
}
