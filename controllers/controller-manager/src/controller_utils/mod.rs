//! Helpers shared by controllers (mirrors upstream pkg/controller/controller_utils.go and
//! apimachinery's rand.SafeEncodeString): pod-template hashing, controller ownerReferences,
//! label-selector conversion and API error classification. Generic: any controller may use it.

pub mod expectations;
pub mod pods;
pub mod ref_manager;

pub use expectations::Expectations;
pub use ref_manager::RefManager;

use apiserver_apimachinery::selector::LabelSelector as Selector;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use std::collections::BTreeMap;

/// Characters of apimachinery's `rand.SafeEncodeString`: no vowels (no bad words), no
/// look-alikes (0/o, 1/l, 3/e).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Maps every byte of `s` onto the safe alphabet (as `rand.SafeEncodeString`).
pub fn safe_encode_string(s: &str) -> String {
    s.bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// 32-bit FNV-1a.
pub fn fnv32a(parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for p in parts {
        for b in *p {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// The `pod-template-hash` of a template (upstream `controller.ComputeHash`): FNV-32a over the
/// template (here its JSON form, which is stable) and, when set, the collision count as a
/// little-endian u32; the decimal sum rendered with the safe alphabet.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let json = serde_json::to_vec(template).unwrap_or_default();
    let h = match collision_count {
        Some(c) => fnv32a(&[&json, &(c as u32).to_le_bytes()]),
        None => fnv32a(&[&json]),
    };
    safe_encode_string(&h.to_string())
}

/// The ownerReference with `controller: true`, if any.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|r| r.controller == Some(true))
}

/// A controller ownerReference (controller and blockOwnerDeletion set, as upstream
/// `metav1.NewControllerRef`).
pub fn new_controller_ref(
    api_version: &str,
    kind: &str,
    owner: &ObjectMeta,
) -> anyhow::Result<OwnerReference> {
    let (Some(name), Some(uid)) = (owner.name.clone(), owner.uid.clone()) else {
        anyhow::bail!("owner has no name or uid");
    };
    Ok(OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name,
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// A `metav1.LabelSelector` as a matcher (`LabelSelectorAsSelector`): `None` (nothing matches)
/// when absent or invalid; an empty selector matches everything.
pub fn selector_of(sel: Option<&LabelSelector>) -> Option<Selector> {
    Selector::from_meta(sel?).ok()
}

/// A set-based selector from a map (ReplicationController's `spec.selector`); `None` when empty
/// (an RC with no selector selects nothing here rather than everything).
pub fn selector_from_map(m: Option<&BTreeMap<String, String>>) -> Option<Selector> {
    let m = m.filter(|m| !m.is_empty())?;
    Selector::from_meta(&LabelSelector {
        match_labels: Some(m.clone()),
        match_expressions: None,
    })
    .ok()
}

/// Labels of an object (empty when none).
pub fn labels_of(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// The HTTP status of a kube API error, if it is one.
pub fn api_status(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

pub fn is_not_found(err: &kube::Error) -> bool {
    api_status(err) == Some(404)
}

pub fn is_already_exists(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}

/// Forbidden because the namespace is being deleted (upstream `NamespaceTerminatingCause`).
pub fn is_namespace_terminating(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 403
        && (s.message.contains("because it is being terminated")
            || s.message.contains("NamespaceTerminating")))
}

/// The message of an error as upstream prints it inside events and conditions.
pub fn error_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_encoding_uses_upstream_alphabet() {
        // '0' is byte 48: 48 % 27 = 21 -> '4'; '9' is 57: 57 % 27 = 3 -> 'f'.
        assert_eq!(safe_encode_string("09"), "4f");
        let h = safe_encode_string("1234567890");
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv32a(&[b""]), 0x811c9dc5);
        assert_eq!(fnv32a(&[b"a"]), 0xe40c292c);
        assert_eq!(fnv32a(&[b"foobar"]), 0xbf9cf968);
        assert_eq!(fnv32a(&[b"foo", b"bar"]), 0xbf9cf968);
    }

    #[test]
    fn hash_is_stable_and_follows_template_and_collisions() {
        let mut t = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "x".to_string())].into()),
                ..Default::default()
            }),
            spec: None,
        };
        let a = compute_hash(&t, None);
        assert_eq!(a, compute_hash(&t.clone(), None));
        assert_ne!(a, compute_hash(&t, Some(1)));
        t.metadata.as_mut().unwrap().labels = Some([("app".into(), "y".into())].into());
        assert_ne!(a, compute_hash(&t, None));
    }
}
