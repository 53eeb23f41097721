//! Object metadata helpers: system fields set on create, generated names, timestamps
//! (mirrors apiserver/pkg/registry/rest/meta.go and create.go).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use rand::Rng;

/// Now, truncated to seconds as upstream serializes metav1.Time.
pub fn now() -> Time {
    let ts = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

pub fn now_plus(seconds: i64) -> Time {
    let ts = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(ts.as_second() + seconds).unwrap_or(ts))
}

const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const MAX_NAME_LENGTH: usize = 63;
const RANDOM_LENGTH: usize = 5;
const MAX_GENERATED_NAME_LENGTH: usize = MAX_NAME_LENGTH - RANDOM_LENGTH;

/// `generateName` plus five random characters, as upstream's SimpleNameGenerator.
pub fn generate_name(base: &str) -> String {
    let mut cut = base.len().min(MAX_GENERATED_NAME_LENGTH);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    let base = &base[..cut];
    let mut rng = rand::rng();
    let suffix: String = (0..RANDOM_LENGTH)
        .map(|_| ALPHANUMS[rng.random_range(0..ALPHANUMS.len())] as char)
        .collect();
    format!("{base}{suffix}")
}

/// Sets the fields the server owns on create (`FillObjectMetaSystemFields`).
pub fn fill_system_fields(meta: &mut ObjectMeta) {
    meta.uid = Some(uuid::Uuid::new_v4().to_string());
    meta.creation_timestamp = Some(now());
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    meta.self_link = None;
    meta.resource_version = None;
}

pub fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}
