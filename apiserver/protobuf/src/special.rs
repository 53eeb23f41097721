//! JSON forms of the Go types with custom marshalling: metav1.Time / MicroTime (RFC 3339, see
//! `apis/meta/v1/time.go`, `micro_time.go`) and metav1.Duration (Go `time.Duration` strings,
//! see `apis/meta/v1/duration.go` and Go's `time/format.go`).

use crate::error::ProtoError;

/// Seconds since the epoch -> `2006-01-02T15:04:05Z` (metav1.Time drops sub-second parts).
pub(crate) fn format_time(seconds: i64) -> Result<String, ProtoError> {
    let ts = jiff::Timestamp::from_second(seconds)
        .map_err(|e| ProtoError::malformed(format!("time out of range: {e}")))?;
    Ok(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Seconds and nanoseconds -> `2006-01-02T15:04:05.000000Z`.
pub(crate) fn format_micro_time(seconds: i64, nanos: i32) -> Result<String, ProtoError> {
    let ts = jiff::Timestamp::new(seconds, nanos)
        .map_err(|e| ProtoError::malformed(format!("time out of range: {e}")))?;
    Ok(ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

/// Parses an RFC 3339 timestamp into (seconds, nanoseconds).
pub(crate) fn parse_time(s: &str) -> Result<(i64, i32), ProtoError> {
    let ts: jiff::Timestamp = s
        .parse()
        .map_err(|e| ProtoError::invalid(format!("invalid time {s:?}: {e}")))?;
    Ok((ts.as_second(), ts.subsec_nanosecond()))
}

/// Formats nanoseconds like Go's `time.Duration.String`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(crate) fn format_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if u == 0 {
        return "0s".to_string();
    }
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        out.push_str(&fraction(u, prec));
        out.push_str(unit);
        return out;
    }
    let secs = u / 1_000_000_000;
    let frac = u % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&fraction(s * 1_000_000_000 + frac, 9));
    out.push('s');
    out
}

/// `value / 10^prec` printed with its fractional digits, trailing zeros removed.
fn fraction(value: u64, prec: u32) -> String {
    let div = 10u64.pow(prec);
    let (int, frac) = (value / div, value % div);
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// Parses a Go duration string (`1h30m`, `1.5s`, `-300ms`, `0`) into nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, ProtoError> {
    let bad = || ProtoError::invalid(format!("time: invalid duration {s:?}"));
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int: u128 = if int_len > 0 {
            rest[..int_len].parse().map_err(|_| bad())?
        } else {
            0
        };
        rest = &rest[int_len..];
        let mut frac_digits = "";
        if let Some(after) = rest.strip_prefix('.') {
            let n = after.bytes().take_while(u8::is_ascii_digit).count();
            frac_digits = &after[..n];
            rest = &after[n..];
        }
        if int_len == 0 && frac_digits.is_empty() {
            return Err(bad());
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let mut value = int.checked_mul(unit).ok_or_else(bad)?;
        if !frac_digits.is_empty() {
            let digits = &frac_digits[..frac_digits.len().min(30)];
            let frac: u128 = digits.parse().map_err(|_| bad())?;
            value += frac * unit / 10u128.pow(digits.len() as u32);
        }
        total = total.checked_add(value).ok_or_else(bad)?;
        if total > i64::MAX as u128 + u128::from(neg) {
            return Err(bad());
        }
    }
    let total = total as i128;
    Ok((if neg { -total } else { total }) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_like_go() {
        for (ns, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (3_300_000_000, "3.3s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (5_430_000_000_000, "1h30m30s"),
            (-1_500_000_000, "-1.5s"),
        ] {
            assert_eq!(format_duration(ns), want);
            assert_eq!(parse_duration(want).unwrap(), ns, "{want}");
        }
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration("300us").unwrap(), 300_000);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("9999999999h").is_err());
    }

    #[test]
    fn times_format_rfc3339() {
        assert_eq!(format_time(1_704_164_645).unwrap(), "2024-01-02T03:04:05Z");
        assert_eq!(
            format_micro_time(1_704_164_645, 123_456_789).unwrap(),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            parse_time("2024-01-02T04:04:05+01:00").unwrap(),
            (1_704_164_645, 0)
        );
        assert_eq!(
            parse_time("2024-01-02T03:04:05.5Z").unwrap(),
            (1_704_164_645, 500_000_000)
        );
        assert!(parse_time("yesterday").is_err());
    }
}
