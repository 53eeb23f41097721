//! Pulling images for containers by their pull policy, with upstream's back-off and its
//! waiting reasons and events (upstream `pkg/kubelet/images/image_manager.go`, `types.go`).

use crate::backoff::Backoff;
use crate::cri::Runtime;
use crate::pod_status::Waiting;
use k8s_openapi::api::core::v1::Container;
use std::time::Instant;

/// An event the caller records on the pod: (warning, reason, message).
pub type Note = (bool, &'static str, String);

/// Upstream's defaulting when the API did not set it: Always for `:latest` or no tag.
pub fn pull_policy(c: &Container) -> String {
    if let Some(p) = &c.image_pull_policy {
        return p.clone();
    }
    let image = c.image.as_deref().unwrap_or("");
    if image.contains('@') {
        return "IfNotPresent".into();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always".into(),
        Some(_) => "IfNotPresent".into(),
    }
}

/// Makes sure the container's image is present; returns the image reference to run.
pub async fn ensure_image(
    runtime: &Runtime,
    c: &Container,
    backoff: &mut Backoff,
    notes: &mut Vec<Note>,
) -> Result<String, Waiting> {
    let image = c.image.clone().unwrap_or_default();
    if image.is_empty() {
        return Err(Waiting {
            reason: "InvalidImageName".into(),
            message: "Failed to apply default image tag \"\": couldn't parse image name \"\": invalid reference format".into(),
        });
    }
    let policy = pull_policy(c);
    let present = match runtime.image_status(&image).await {
        Ok(i) => i,
        Err(e) => {
            return Err(Waiting {
                reason: "ErrImageInspect".into(),
                message: format!("Failed to inspect image \"{image}\": {e}"),
            });
        }
    };
    if policy != "Always" {
        if let Some(img) = present {
            notes.push((
                false,
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            ));
            return Ok(img.id);
        }
        if policy == "Never" {
            let message =
                format!("Container image \"{image}\" is not present with pull policy of Never");
            notes.push((true, "ErrImageNeverPull", message.clone()));
            return Err(Waiting {
                reason: "ErrImageNeverPull".into(),
                message,
            });
        }
    }
    let key = format!("image:{image}");
    if let Some(last) = backoff.in_backoff(&key, Instant::now()) {
        notes.push((
            false,
            "BackOff",
            format!("Back-off pulling image \"{image}\""),
        ));
        return Err(Waiting {
            reason: "ImagePullBackOff".into(),
            message: format!("Back-off pulling image \"{image}\": ErrImagePull: {last}"),
        });
    }
    notes.push((false, "Pulling", format!("Pulling image \"{image}\"")));
    let started = Instant::now();
    match runtime.pull_image(&image, None).await {
        Ok(reference) => {
            backoff.reset(&key);
            let took = started.elapsed().as_secs_f64();
            let size = runtime
                .image_status(&reference)
                .await
                .ok()
                .flatten()
                .map(|i| i.size)
                .unwrap_or(0);
            notes.push((
                false,
                "Pulled",
                format!(
                    "Successfully pulled image \"{image}\" in {took:.3}s ({took:.3}s including waiting). Image size: {size} bytes."
                ),
            ));
            Ok(reference)
        }
        Err(e) => {
            let msg = e.to_string();
            let message = format!("failed to pull and unpack image \"{image}\": {msg}");
            let message = if msg.contains("failed to pull and unpack") {
                msg.clone()
            } else {
                message
            };
            backoff.next(&key, Instant::now(), message.clone());
            notes.push((
                true,
                "Failed",
                format!("Failed to pull image \"{image}\": {message}"),
            ));
            notes.push((true, "Failed", "Error: ErrImagePull".into()));
            Err(Waiting {
                reason: "ErrImagePull".into(),
                message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(image: &str) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            ..Default::default()
        }
    }

    #[test]
    fn default_pull_policy_follows_the_tag() {
        assert_eq!(pull_policy(&c("busybox")), "Always");
        assert_eq!(pull_policy(&c("busybox:latest")), "Always");
        assert_eq!(pull_policy(&c("busybox:1.36")), "IfNotPresent");
        assert_eq!(pull_policy(&c("localhost:5000/busybox")), "Always");
        assert_eq!(pull_policy(&c("busybox@sha256:abc")), "IfNotPresent");
    }
}
