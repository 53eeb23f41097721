//! OpenAPI string formats that custom resource validation checks (mirrors
//! apiextensions-apiserver pkg/apiserver/validation/formats.go and kube-openapi strfmt).

use base64::Engine;
use std::sync::LazyLock;

fn re(p: &str) -> regex::Regex {
    regex::Regex::new(p).unwrap_or_else(|_| regex::Regex::new("^$").expect("static regex"))
}

static UUID: LazyLock<regex::Regex> =
    LazyLock::new(|| re("(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"));
static UUID3: LazyLock<regex::Regex> =
    LazyLock::new(|| re("(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$"));
static UUID4: LazyLock<regex::Regex> = LazyLock::new(|| {
    re("(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
});
static UUID5: LazyLock<regex::Regex> = LazyLock::new(|| {
    re("(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
});
static HOSTNAME: LazyLock<regex::Regex> = LazyLock::new(|| {
    re(
        r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$",
    )
});
static EMAIL: LazyLock<regex::Regex> = LazyLock::new(|| re(r"^[^@\s]+@[^@\s]+$"));
static MAC: LazyLock<regex::Regex> = LazyLock::new(|| {
    re(r"^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$|^([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}$")
});
static HEXCOLOR: LazyLock<regex::Regex> =
    LazyLock::new(|| re(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"));
static RGBCOLOR: LazyLock<regex::Regex> = LazyLock::new(|| {
    re(
        r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])%?\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])%?\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])%?\s*\)$",
    )
});
static SSN: LazyLock<regex::Regex> = LazyLock::new(|| re(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$"));
static BSON: LazyLock<regex::Regex> = LazyLock::new(|| re(r"^[0-9a-fA-F]{24}$"));
static DURATION: LazyLock<regex::Regex> = LazyLock::new(|| {
    re(
        r"^([-+]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$|^0$|^[-+]?\d+\s*(ns|us|ms|s|m|h|d|w|nanoseconds?|microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?)$",
    )
});
static SHORT_NAME: LazyLock<regex::Regex> =
    LazyLock::new(|| re(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"));
static LONG_NAME: LazyLock<regex::Regex> =
    LazyLock::new(|| re(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"));

/// Whether `v` satisfies string format `format`. Formats upstream does not validate (unknown
/// ones, and `password`, `isbn*`, `creditcard`) always pass.
pub fn check_format(format: &str, v: &str) -> bool {
    match format.replace('-', "").as_str() {
        "datetime" => {
            v.parse::<jiff::Timestamp>().is_ok() || v.parse::<jiff::civil::DateTime>().is_ok()
        }
        "date" => v.len() == 10 && v.parse::<jiff::civil::Date>().is_ok(),
        "uuid" => UUID.is_match(v),
        "uuid3" => UUID3.is_match(v),
        "uuid4" => UUID4.is_match(v),
        "uuid5" => UUID5.is_match(v),
        "ipv4" => v.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => v.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(v),
        "hostname" => v.len() <= 255 && HOSTNAME.is_match(v),
        "email" => EMAIL.is_match(v),
        "uri" => v.contains(':') || v.starts_with('/'),
        "mac" => MAC.is_match(v),
        "hexcolor" => HEXCOLOR.is_match(v),
        "rgbcolor" => RGBCOLOR.is_match(v),
        "ssn" => SSN.is_match(v),
        "bsonobjectid" => BSON.is_match(v),
        "byte" => base64::engine::general_purpose::STANDARD.decode(v).is_ok(),
        "duration" => DURATION.is_match(v),
        "k8sshortname" => v.len() <= 63 && SHORT_NAME.is_match(v),
        "k8slongname" => v.len() <= 253 && LONG_NAME.is_match(v),
        _ => true,
    }
}

fn is_cidr(v: &str) -> bool {
    let Some((ip, bits)) = v.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::check_format;

    #[test]
    fn formats() {
        assert!(check_format("date-time", "2024-01-02T03:04:05Z"));
        assert!(!check_format("date-time", "soon"));
        assert!(check_format("date", "2024-01-02"));
        assert!(check_format("uuid", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(!check_format("ipv4", "1.2.3"));
        assert!(check_format("cidr", "10.0.0.0/8"));
        assert!(check_format("byte", "aGVsbG8="));
        assert!(!check_format("byte", "%%%"));
        assert!(check_format("duration", "1h30m"));
        assert!(!check_format("k8s-short-name", "Upper"));
        assert!(check_format("whatever-unknown", "x"));
    }
}
