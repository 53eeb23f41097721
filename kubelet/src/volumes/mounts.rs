//! A container's CRI mounts from its volumeMounts (upstream `makeMounts` in
//! `pkg/kubelet/kubelet_pods.go`, `ExpandContainerVolumeMounts`, the `$(VAR)` expansion of
//! `third_party/forked/golang/expansion`): subPath / subPathExpr (created inside the volume if
//! missing, refused if it resolves outside it), readOnly (forced for read-only plugins),
//! mountPropagation and recursiveReadOnly (containerd 1.6 cannot do recursive read-only).
//! The managed /etc/hosts mount is not added here.

use super::{MountedVolume, PodVolumes, VolumeError};
use crate::cri::v1::{Mount, MountPropagation};
use k8s_openapi::api::core::v1::{Container, Pod, VolumeMount};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Whether the runtime supports recursive read-only mounts (containerd 1.6 does not).
const RUNTIME_SUPPORTS_RRO: bool = false;

pub fn container_mounts(
    pod: &Pod,
    container: &Container,
    vols: &PodVolumes,
    env: &HashMap<String, String>,
) -> Result<Vec<Mount>, VolumeError> {
    let err = VolumeError::Mounts;
    let mut out = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let vol = vols.volumes.get(&m.name).ok_or_else(|| {
            err(format!(
                "cannot find volume {:?} to mount into container {:?}",
                m.name, container.name
            ))
        })?;
        let sub_path = match m.sub_path_expr.as_deref().filter(|s| !s.is_empty()) {
            Some(expr) => expand_sub_path_expr(expr, env).map_err(err)?,
            None => m.sub_path.clone().unwrap_or_default(),
        };
        let host_path = if sub_path.is_empty() {
            vol.host_path.clone()
        } else {
            if sub_path.starts_with('/') {
                return Err(err(format!(
                    "error SubPath `{sub_path}` must not be an absolute path"
                )));
            }
            if sub_path.split('/').any(|p| p == "..") {
                return Err(err(format!(
                    "unable to provision SubPath `{sub_path}`: must not contain '..'"
                )));
            }
            prepare_sub_path(vol, &sub_path, m, container).map_err(|e| {
                tracing::warn!(pod = ?pod.metadata.name, container = %container.name,
                    volume = %m.name, error = %e, "preparing subPath failed");
                err(e)
            })?
        };
        let container_path = if m.mount_path.starts_with('/') {
            m.mount_path.clone()
        } else {
            format!("/{}", m.mount_path)
        };
        let propagation = propagation(m.mount_propagation.as_deref()).map_err(err)?;
        let rro = resolve_recursive_read_only(m)
            .map_err(|e| err(format!("failed to resolve recursive read-only mode: {e}")))?;
        out.push(Mount {
            container_path,
            host_path: host_path.to_string_lossy().into_owned(),
            readonly: m.read_only == Some(true) || vol.read_only,
            recursive_read_only: rro,
            propagation: propagation as i32,
            ..Default::default()
        });
    }
    Ok(out)
}

/// Resolves `<volume>/<subPath>`, creating missing directories with the volume's mode;
/// refuses (with upstream's deliberately vague messages) anything resolving outside the volume.
fn prepare_sub_path(
    vol: &MountedVolume,
    sub_path: &str,
    m: &VolumeMount,
    c: &Container,
) -> Result<PathBuf, String> {
    let prepare_err = || {
        format!(
            "failed to prepare subPath for volumeMount {:?} of container {:?}",
            m.name, c.name
        )
    };
    let root = fs::canonicalize(&vol.host_path).map_err(|_| prepare_err())?;
    let joined = vol.host_path.join(sub_path);
    if fs::metadata(&joined).is_err() {
        let perm = fs::metadata(&root)
            .map_err(|_| prepare_err())?
            .permissions()
            .mode()
            & 0o7777;
        safe_make_dir(&root, sub_path, perm).map_err(|e| {
            tracing::debug!(error = %e, "subPath mkdir");
            format!(
                "failed to create subPath directory for volumeMount {:?} of container {:?}",
                m.name, c.name
            )
        })?;
    }
    let resolved = fs::canonicalize(&joined).map_err(|_| prepare_err())?;
    if !resolved.starts_with(&root) {
        return Err(prepare_err());
    }
    Ok(resolved)
}

/// Creates `sub_path` below `root` one element at a time, never following a symlink out of
/// `root` (upstream `SafeMakeDir`).
fn safe_make_dir(root: &Path, sub_path: &str, perm: u32) -> io::Result<()> {
    let mut cur = root.to_path_buf();
    for part in sub_path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let next = cur.join(part);
        match fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() || meta.is_dir() => {
                let real = fs::canonicalize(&next)?;
                if !real.starts_with(root) || !real.is_dir() {
                    return Err(io::Error::other(format!(
                        "{} is outside the volume or not a directory",
                        next.display()
                    )));
                }
                cur = real;
            }
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} is not a directory",
                    next.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&next)?;
                fs::set_permissions(&next, fs::Permissions::from_mode(perm))?;
                cur = next;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `$(VAR)` expansion of subPathExpr; unset or empty variables are an error listing them.
pub fn expand_sub_path_expr(expr: &str, env: &HashMap<String, String>) -> Result<String, String> {
    let mut missing = BTreeSet::new();
    let out = expand(expr, |name| match env.get(name) {
        Some(v) if !v.is_empty() => v.clone(),
        _ => {
            missing.insert(name.to_string());
            String::new()
        }
    });
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "missing value for {}",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ))
    }
}

/// Kubernetes' `$(VAR)` syntax: `$$` is a literal `$`, an unterminated `$(` stays as is, and
/// `$` before anything else is kept.
fn expand(input: &str, mut mapping: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    out.push_str(&mapping(&body[..end]));
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn propagation(mode: Option<&str>) -> Result<MountPropagation, String> {
    match mode {
        None | Some("None") => Ok(MountPropagation::PropagationPrivate),
        Some("HostToContainer") => Ok(MountPropagation::PropagationHostToContainer),
        Some("Bidirectional") => Ok(MountPropagation::PropagationBidirectional),
        Some(other) => Err(format!("invalid MountPropagation mode: {other:?}")),
    }
}

fn resolve_recursive_read_only(m: &VolumeMount) -> Result<bool, String> {
    let mode = match m.recursive_read_only.as_deref() {
        None | Some("Disabled") => return Ok(false),
        Some(mode) => mode,
    };
    if m.read_only != Some(true) {
        return Err(format!(
            "volume {:?} requested recursive read-only mode, but it is not read-only",
            m.name
        ));
    }
    if let Some(p) = m.mount_propagation.as_deref().filter(|p| *p != "None") {
        return Err(format!(
            "volume {:?} requested recursive read-only mode, but it is not compatible with propagation {p:?}",
            m.name
        ));
    }
    match mode {
        "IfPossible" => Ok(RUNTIME_SUPPORTS_RRO),
        "Enabled" if RUNTIME_SUPPORTS_RRO => Ok(true),
        "Enabled" => Err(format!(
            "volume {:?} requested recursive read-only mode, but it is not supported by the runtime",
            m.name
        )),
        other => Err(format!("unknown recursive read-only mode {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::test_support::{TempDir, pod_from_json};
    use serde_json::json;

    fn vols(tmp: &TempDir) -> PodVolumes {
        let scratch = tmp.path().join("scratch");
        let config = tmp.path().join("config");
        fs::create_dir_all(&scratch).unwrap();
        fs::set_permissions(&scratch, fs::Permissions::from_mode(0o777)).unwrap();
        fs::create_dir_all(&config).unwrap();
        fs::write(config.join("key"), "v").unwrap();
        // Idempotent: several runs share one directory.
        let _ = std::os::unix::fs::symlink("/etc", scratch.join("escape"));
        let mut v = PodVolumes::default();
        v.volumes.insert(
            "scratch".into(),
            MountedVolume {
                host_path: scratch,
                read_only: false,
            },
        );
        v.volumes.insert(
            "config".into(),
            MountedVolume {
                host_path: config,
                read_only: true,
            },
        );
        v
    }

    fn container(mounts: serde_json::Value) -> Container {
        serde_json::from_value(json!({"name": "app", "volumeMounts": mounts})).unwrap()
    }

    fn run(
        tmp: &TempDir,
        mounts: serde_json::Value,
        env: &[(&str, &str)],
    ) -> Result<Vec<Mount>, VolumeError> {
        let pod = pod_from_json(json!({"metadata": {"name": "p"}}));
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        container_mounts(&pod, &container(mounts), &vols(tmp), &env)
    }

    #[test]
    fn read_only_propagation_and_paths() {
        let tmp = TempDir::new();
        let m = run(
            &tmp,
            json!([
                {"name": "scratch", "mountPath": "/data"},
                {"name": "scratch", "mountPath": "rel", "readOnly": true,
                 "mountPropagation": "HostToContainer"},
                {"name": "config", "mountPath": "/etc/cfg", "mountPropagation": "Bidirectional"}
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].container_path, "/data");
        assert_eq!(m[0].host_path, tmp.path().join("scratch").to_string_lossy());
        assert!(!m[0].readonly);
        assert_eq!(
            m[0].propagation,
            MountPropagation::PropagationPrivate as i32
        );
        assert_eq!(m[1].container_path, "/rel");
        assert!(m[1].readonly);
        assert_eq!(
            m[1].propagation,
            MountPropagation::PropagationHostToContainer as i32
        );
        // configMap-like volumes are always read-only.
        assert!(m[2].readonly);
        assert_eq!(
            m[2].propagation,
            MountPropagation::PropagationBidirectional as i32
        );
        let e = run(
            &tmp,
            json!([{"name": "scratch", "mountPath": "/x", "mountPropagation": "Weird"}]),
            &[],
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "invalid MountPropagation mode: \"Weird\""
        );
    }

    #[test]
    fn missing_volume() {
        let tmp = TempDir::new();
        let e = run(&tmp, json!([{"name": "nope", "mountPath": "/x"}]), &[]).unwrap_err();
        assert_eq!(
            e,
            VolumeError::Mounts(
                "cannot find volume \"nope\" to mount into container \"app\"".into()
            )
        );
    }

    #[test]
    fn sub_path_is_created_inside_the_volume() {
        let tmp = TempDir::new();
        let m = run(
            &tmp,
            json!([
                {"name": "scratch", "mountPath": "/a", "subPath": "one/two"},
                {"name": "config", "mountPath": "/k", "subPath": "key"}
            ]),
            &[],
        )
        .unwrap();
        let created = tmp.path().join("scratch/one/two");
        assert!(created.is_dir());
        assert_eq!(
            fs::metadata(&created).unwrap().permissions().mode() & 0o777,
            0o777
        );
        assert_eq!(
            m[0].host_path,
            fs::canonicalize(&created).unwrap().to_string_lossy()
        );
        assert_eq!(
            m[1].host_path,
            fs::canonicalize(tmp.path().join("config/key"))
                .unwrap()
                .to_string_lossy()
        );

        let msg = |sub: serde_json::Value| {
            run(
                &tmp,
                json!([{"name": "scratch", "mountPath": "/a", "subPath": sub}]),
                &[],
            )
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            msg(json!("/abs")),
            "error SubPath `/abs` must not be an absolute path"
        );
        assert_eq!(
            msg(json!("a/../b")),
            "unable to provision SubPath `a/../b`: must not contain '..'"
        );
        assert_eq!(
            msg(json!("escape")),
            "failed to prepare subPath for volumeMount \"scratch\" of container \"app\""
        );
        assert_eq!(
            msg(json!("escape/newdir")),
            "failed to create subPath directory for volumeMount \"scratch\" of container \"app\""
        );
        assert!(!Path::new("/etc/newdir").exists());
    }

    #[test]
    fn sub_path_expr_expands_env() {
        let tmp = TempDir::new();
        let m = run(
            &tmp,
            json!([{"name": "scratch", "mountPath": "/a", "subPathExpr": "logs/$(POD_NAME)"}]),
            &[("POD_NAME", "web-0")],
        )
        .unwrap();
        assert!(m[0].host_path.ends_with("scratch/logs/web-0"));
        let e = run(
            &tmp,
            json!([{"name": "scratch", "mountPath": "/a", "subPathExpr": "$(B)/$(A)/$(EMPTY)"}]),
            &[("EMPTY", "")],
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "missing value for A, B, EMPTY");
    }

    #[test]
    fn expansion_syntax() {
        let env: HashMap<String, String> = [("X".to_string(), "x".to_string())].into();
        let ex = |s: &str| expand_sub_path_expr(s, &env).unwrap();
        assert_eq!(ex("a$(X)b"), "axb");
        assert_eq!(ex("$$(X)"), "$(X)");
        assert_eq!(ex("$(X"), "$(X");
        assert_eq!(ex("a$b$"), "a$b$");
        assert_eq!(ex("$$$(X)"), "$x");
    }

    #[test]
    fn recursive_read_only() {
        let tmp = TempDir::new();
        let m = run(
            &tmp,
            json!([{"name": "scratch", "mountPath": "/a", "readOnly": true,
            "recursiveReadOnly": "IfPossible"}]),
            &[],
        )
        .unwrap();
        assert!(m[0].readonly);
        assert!(!m[0].recursive_read_only);
        let e = run(
            &tmp,
            json!([{"name": "scratch", "mountPath": "/a", "readOnly": true,
            "recursiveReadOnly": "Enabled"}]),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to resolve recursive read-only mode: volume \"scratch\" \
            requested recursive read-only mode, but it is not supported by the runtime"
        );
        let e = run(
            &tmp,
            json!([{"name": "scratch", "mountPath": "/a",
            "recursiveReadOnly": "IfPossible"}]),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().ends_with("but it is not read-only"), "{e}");
    }
}
