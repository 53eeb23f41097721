//! ImageLocality: prefers nodes that already have the pod's images, weighted by image size
//! and by how widely the image is spread over the cluster (mirrors upstream
//! `plugins/imagelocality/image_locality.go`).

use crate::framework::*;
use std::sync::Arc;

pub const NAME: &str = "ImageLocality";
const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;
const STATE_KEY: &str = "PreScoreImageLocality";

pub struct ImageLocality;

#[derive(Clone)]
struct PreScoreState {
    /// (normalized image name, nodes having it)
    images: Vec<(String, usize)>,
    total_nodes: usize,
}

/// Adds `:latest` to an image without a tag or digest.
pub fn normalized_image_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

fn pod_images(pod: &PodInfo) -> Vec<String> {
    let Some(spec) = pod.pod.spec.as_ref() else {
        return vec![];
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .filter_map(|c| c.image.as_deref())
        .map(normalized_image_name)
        .collect()
}

fn calculate_priority(sum: i64, num_containers: usize) -> i64 {
    let max = MAX_CONTAINER_THRESHOLD * num_containers as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max.max(MIN_THRESHOLD));
    if max <= MIN_THRESHOLD {
        return 0;
    }
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_score(self: Arc<Self>) -> Option<Arc<dyn PreScorePlugin>> {
        Some(self)
    }
    fn score(self: Arc<Self>) -> Option<Arc<dyn ScorePlugin>> {
        Some(self)
    }
}

impl PreScorePlugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &[Arc<NodeInfo>],
        lister: &dyn SharedLister,
    ) -> Status {
        let images = pod_images(pod)
            .into_iter()
            .map(|i| {
                let n = lister.image_num_nodes(&i);
                (i, n)
            })
            .collect();
        state.write(
            STATE_KEY,
            PreScoreState {
                images,
                total_nodes: lister.node_infos().len(),
            },
        );
        Status::success()
    }
}

impl ScorePlugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(s) = state.read::<PreScoreState>(STATE_KEY) else {
            return (
                0,
                Status::error("reading PreScoreImageLocality from cycle state"),
            );
        };
        if node.images.is_empty() || s.total_nodes == 0 {
            return (calculate_priority(0, s.images.len()), Status::success());
        }
        let sum: i64 = s
            .images
            .iter()
            .filter_map(|(img, spread)| {
                node.images
                    .get(img)
                    .map(|size| (*size as f64 * (*spread as f64 / s.total_nodes as f64)) as i64)
            })
            .sum();
        (calculate_priority(sum, s.images.len()), Status::success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;

    #[test]
    fn image_names_and_priority() {
        assert_eq!(normalized_image_name("nginx"), "nginx:latest");
        assert_eq!(
            normalized_image_name("reg:5000/nginx"),
            "reg:5000/nginx:latest"
        );
        assert_eq!(normalized_image_name("nginx:1.25"), "nginx:1.25");
        assert_eq!(calculate_priority(0, 1), 0);
        assert_eq!(calculate_priority(1000 * MB, 1), 100);
        assert_eq!(calculate_priority(2000 * MB, 1), 100);
    }

    #[test]
    fn nodes_with_the_image_score_higher() {
        let with = NodeInfo::new(Arc::new(node_with_image("a", "big:1", 500 * MB)));
        let without = NodeInfo::new(Arc::new(node("b")));
        let lister = TestLister::new(vec![with.clone(), without.clone()]);
        let mut p = pod("p");
        p.spec.as_mut().unwrap().containers[0].image = Some("big:1".into());
        let pi = PodInfo::new(Arc::new(p));
        let mut st = CycleState::new();
        ImageLocality.pre_score(&mut st, &pi, &[], &lister);
        // 500 MiB spread over 1 of 2 nodes = 250 MiB -> (250-23)/(1000-23).
        assert_eq!(
            ImageLocality.score(&st, &pi, &with).0,
            100 * (250 - 23) / (1000 - 23)
        );
        assert_eq!(ImageLocality.score(&st, &pi, &without).0, 0);
    }
}
