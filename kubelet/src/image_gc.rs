//! Image garbage collection (upstream `pkg/kubelet/images/image_gc_manager.go`): every five
//! minutes, when the image filesystem is fuller than `--image-gc-high-threshold` percent, images
//! no container uses (and that the runtime has not pinned, like the sandbox image) are removed,
//! least recently used first, until usage is back under `--image-gc-low-threshold`.

use crate::cri::Runtime;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const GC_PERIOD: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub size: u64,
    pub in_use: bool,
    pub pinned: bool,
    /// When the kubelet last saw a container use it (or first saw the image).
    pub last_used: Instant,
}

/// Bytes to free so usage drops to `low` percent, if usage is at or over `high` percent.
pub fn bytes_to_free(capacity: u64, available: u64, high: u8, low: u8) -> Option<u64> {
    if capacity == 0 {
        return None;
    }
    let used = capacity.saturating_sub(available);
    let usage = used.saturating_mul(100) / capacity;
    if usage < u64::from(high) {
        return None;
    }
    let target_available = capacity.saturating_mul(100 - u64::from(low)) / 100;
    Some(target_available.saturating_sub(available))
}

/// The images to remove, least recently used first, until `need` bytes are freed.
pub fn select(candidates: &[Candidate], need: u64) -> Vec<String> {
    let mut eligible: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !c.in_use && !c.pinned)
        .collect();
    eligible.sort_by_key(|c| c.last_used);
    let mut freed = 0;
    let mut out = Vec::new();
    for c in eligible {
        if freed >= need {
            break;
        }
        freed += c.size;
        out.push(c.id.clone());
    }
    out
}

fn fs_capacity(mountpoint: &str) -> Option<(u64, u64)> {
    let s = nix::sys::statvfs::statvfs(mountpoint).ok()?;
    let frag = s.fragment_size() as u64;
    Some((s.blocks() as u64 * frag, s.blocks_available() as u64 * frag))
}

/// Runs image GC every [`GC_PERIOD`] until shut down.
pub async fn run(runtime: Runtime, high: u8, low: u8, shutdown: CancellationToken) {
    let mut last_used: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    let mut next_gc = Instant::now() + GC_PERIOD;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (Ok(images), Ok(containers)) =
            (runtime.list_images().await, runtime.list_containers().await)
        else {
            continue;
        };
        let used: HashSet<String> = containers.iter().map(|c| c.image_ref.clone()).collect();
        let now = Instant::now();
        for img in &images {
            let e = last_used.entry(img.id.clone()).or_insert(now);
            if used.contains(&img.id) {
                *e = now;
            }
        }
        last_used.retain(|id, _| images.iter().any(|i| &i.id == id));
        if now < next_gc {
            continue;
        }
        next_gc = now + GC_PERIOD;
        let Ok(info) = runtime.image_fs_info().await else {
            continue;
        };
        let Some(mount) = info
            .image_filesystems
            .first()
            .and_then(|f| f.fs_id.as_ref())
            .map(|f| f.mountpoint.clone())
        else {
            continue;
        };
        let Some((capacity, available)) = fs_capacity(&mount) else {
            continue;
        };
        let Some(need) = bytes_to_free(capacity, available, high, low) else {
            continue;
        };
        let candidates: Vec<Candidate> = images
            .iter()
            .map(|i| Candidate {
                id: i.id.clone(),
                size: i.size,
                in_use: used.contains(&i.id),
                pinned: i.pinned,
                last_used: last_used.get(&i.id).copied().unwrap_or(now),
            })
            .collect();
        let chosen = select(&candidates, need);
        tracing::info!(
            need_bytes = need,
            images = chosen.len(),
            "image filesystem over the high threshold; removing unused images"
        );
        for id in chosen {
            if let Err(e) = runtime.remove_image(&id).await {
                tracing::warn!(image = %id, error = %e, "removing image");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frees_only_over_the_high_threshold() {
        assert_eq!(bytes_to_free(1000, 200, 85, 80), None, "80 % used");
        assert_eq!(
            bytes_to_free(1000, 100, 85, 80),
            Some(100),
            "90 % used: free to 80 %"
        );
        assert_eq!(bytes_to_free(0, 0, 85, 80), None);
    }

    #[test]
    fn removes_unused_unpinned_images_least_recently_used_first() {
        let t = Instant::now();
        let c = |id: &str, size, in_use, pinned, age: u64| Candidate {
            id: id.into(),
            size,
            in_use,
            pinned,
            last_used: t - Duration::from_secs(age),
        };
        let cands = vec![
            c("recent", 50, false, false, 10),
            c("old", 30, false, false, 100),
            c("used", 500, true, false, 1000),
            c("pause", 1, false, true, 1000),
            c("older", 40, false, false, 200),
        ];
        assert_eq!(select(&cands, 60), vec!["older", "old"]);
        assert_eq!(select(&cands, 1000), vec!["older", "old", "recent"]);
        assert!(select(&cands, 0).is_empty());
    }
}
