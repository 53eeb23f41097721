//! Human-readable ages: `duration.HumanDuration` (apimachinery/pkg/util/duration/duration.go)
//! and the printers' `translateTimestampSince` / `translateMicroTimestampSince` helpers.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) as a Unix second.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// A timestamp, or `None` when it is absent or Go's zero time (`IsZero()`).
pub(crate) fn non_zero(t: Option<Timestamp>) -> Option<Timestamp> {
    t.filter(|t| t.as_second() != GO_ZERO_TIME_UNIX || t.subsec_nanosecond() != 0)
}

pub(crate) fn time(t: Option<&Time>) -> Option<Timestamp> {
    non_zero(t.map(|t| t.0))
}

pub(crate) fn micro_time(t: Option<&MicroTime>) -> Option<Timestamp> {
    non_zero(t.map(|t| t.0))
}

/// `duration.HumanDuration` for a non-negative duration.
pub fn human_duration(d: std::time::Duration) -> String {
    human_seconds(d.as_secs())
}

/// `duration.HumanDuration` for a signed duration: `<invalid>` below -1s, `0s` for -1s.
pub fn human_duration_signed(d: SignedDuration) -> String {
    // Go: int(d.Seconds()) truncates toward zero, like as_secs().
    let seconds = d.as_secs();
    if seconds < -1 {
        "<invalid>".to_string()
    } else if seconds < 0 {
        "0s".to_string()
    } else {
        human_seconds(seconds.unsigned_abs())
    }
}

fn human_seconds(seconds: u64) -> String {
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        format!("{hours}h{m}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        format!("{}d{h}h", hours / 24)
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        format!("{}y{dy}d", hours / 24 / 365)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// Elapsed time since `t` as upstream prints ages: `<unknown>` for an unset (or zero) time.
pub fn translate_timestamp_since(t: Option<&Time>, now: Timestamp) -> String {
    since(time(t), now)
}

/// Like [`translate_timestamp_since`] for a `MicroTime`.
pub fn translate_micro_timestamp_since(t: Option<&MicroTime>, now: Timestamp) -> String {
    since(micro_time(t), now)
}

pub(crate) fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        None => "<unknown>".to_string(),
        Some(t) => human_duration_signed(now.duration_since(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn h(secs: u64) -> String {
        human_duration(Duration::from_secs(secs))
    }

    #[test]
    fn human_duration_matches_upstream_table() {
        assert_eq!(h(0), "0s");
        assert_eq!(h(5), "5s");
        assert_eq!(h(119), "119s");
        assert_eq!(h(120), "2m");
        assert_eq!(h(125), "2m5s");
        assert_eq!(h(9 * 60 + 59), "9m59s");
        assert_eq!(h(10 * 60 + 30), "10m");
        assert_eq!(h(3 * 3600 - 1), "179m");
        assert_eq!(h(3 * 3600), "3h");
        assert_eq!(h(3 * 3600 + 5 * 60), "3h5m");
        assert_eq!(h(8 * 3600 + 59 * 60), "8h");
        assert_eq!(h(47 * 3600), "47h");
        assert_eq!(h(48 * 3600), "2d");
        assert_eq!(h(53 * 3600), "2d5h");
        assert_eq!(h(8 * 24 * 3600), "8d");
        assert_eq!(h(729 * 24 * 3600), "729d");
        assert_eq!(h(730 * 24 * 3600), "2y");
        assert_eq!(h(731 * 24 * 3600), "2y1d");
        assert_eq!(h(8 * 365 * 24 * 3600), "8y");
        assert_eq!(h(10 * 365 * 24 * 3600 + 99 * 24 * 3600), "10y");
        // Sub-second precision is truncated.
        assert_eq!(human_duration(Duration::from_millis(1999)), "1s");
    }

    #[test]
    fn negative_durations() {
        assert_eq!(
            human_duration_signed(SignedDuration::from_millis(-1500)),
            "0s"
        );
        assert_eq!(human_duration_signed(SignedDuration::from_secs(-1)), "0s");
        assert_eq!(
            human_duration_signed(SignedDuration::from_secs(-2)),
            "<invalid>"
        );
        assert_eq!(human_duration_signed(SignedDuration::from_secs(300)), "5m");
    }

    #[test]
    fn translate_unset_and_zero_times() {
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        assert_eq!(translate_timestamp_since(None, now), "<unknown>");
        let zero = Time(Timestamp::from_second(GO_ZERO_TIME_UNIX).unwrap());
        assert_eq!(translate_timestamp_since(Some(&zero), now), "<unknown>");
        let t = Time("2024-05-01T11:55:00Z".parse().unwrap());
        assert_eq!(translate_timestamp_since(Some(&t), now), "5m");
        let future = Time("2024-05-01T12:00:30Z".parse().unwrap());
        assert_eq!(translate_timestamp_since(Some(&future), now), "<invalid>");
    }
}
