//! Cron schedules as the CronJob controller reads them (upstream uses `robfig/cron/v3`
//! `ParseStandard`): five fields (minute hour day-of-month month day-of-week) with lists,
//! ranges, steps, `*`/`?`, month and weekday names, the `@yearly`...`@hourly` descriptors,
//! `@every <duration>`, and a leading `TZ=`/`CRON_TZ=` zone. Next activation times are computed
//! in the schedule's IANA time zone with jiff.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

#[derive(Clone, Debug)]
pub struct Schedule {
    /// Bit sets of allowed values per field.
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Day-of-month or day-of-week was `*`/`?`: both must then match (else either).
    dom_star: bool,
    dow_star: bool,
    every: Option<std::time::Duration>,
    pub tz: Option<TimeZone>,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(s: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + offset);
    }
    s.parse::<u32>().map_err(|_| {
        format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax")
    })
}

/// Parses one field into a bit set; returns (bits, was_star).
fn field(
    expr: &str,
    min: u32,
    max: u32,
    names: &[&str],
    offset: u32,
) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in expr.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        let (mut lo, mut hi, mut is_star) = if range == "*" || range == "?" {
            (min, max, true)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, offset)?, value(b, names, offset)?, false)
        } else {
            let v = value(range, names, offset)?;
            (v, v, false)
        };
        let step = match step {
            None => 1,
            Some(s) => {
                let st = s
                    .parse::<u32>()
                    .map_err(|_| format!("failed to parse int from {s}"))?;
                if !is_star && lo == hi {
                    hi = max;
                }
                if st > 1 {
                    is_star = false;
                }
                st
            }
        };
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        if lo < min {
            return Err(format!(
                "beginning of range ({lo}) below minimum ({min}): {part}"
            ));
        }
        if hi > max {
            return Err(format!("end of range ({hi}) above maximum ({max}): {part}"));
        }
        if lo > hi {
            return Err(format!(
                "beginning of range ({lo}) beyond end of range ({hi}): {part}"
            ));
        }
        star |= is_star;
        while lo <= hi {
            bits |= 1 << lo;
            lo += step;
        }
    }
    Ok((bits, star))
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let mut spec = spec.trim();
        let mut tz = None;
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            let (zone, rest) = spec
                .split_once(' ')
                .ok_or("missing fields after the time zone")?;
            let name = zone.split_once('=').map(|z| z.1).unwrap_or("");
            tz = Some(
                TimeZone::get(name).map_err(|e| format!("provided bad location {name}: {e}"))?,
            );
            spec = rest.trim();
        }
        if spec.is_empty() {
            return Err("empty spec string".into());
        }
        if let Some(d) = spec.strip_prefix("@every ") {
            let dur = crate::parse_duration(d.trim())
                .map_err(|_| format!("failed to parse duration {spec}"))?;
            let every = dur.max(std::time::Duration::from_secs(1));
            let mut s = Schedule::parse("* * * * *")?;
            s.every = Some(every);
            s.tz = tz;
            return Ok(s);
        }
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
            s => s,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                f.len()
            ));
        }
        let (minute, _) = field(f[0], 0, 59, &[], 0)?;
        let (hour, _) = field(f[1], 0, 23, &[], 0)?;
        let (dom, dom_star) = field(f[2], 1, 31, &[], 0)?;
        let (month, _) = field(f[3], 1, 12, &MONTHS, 1)?;
        let (dow, dow_star) = field(f[4], 0, 6, &DAYS, 0)?;
        Ok(Schedule {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
            every: None,
            tz,
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        let dom = self.dom & (1 << d.day()) != 0;
        let dow = self.dow & (1 << d.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first activation strictly after `t`, in `default_tz` unless the schedule names its
    /// own zone; `None` if there is none within five years.
    pub fn next(&self, t: Timestamp, default_tz: &TimeZone) -> Option<Timestamp> {
        if let Some(every) = self.every {
            // Round to whole seconds, as robfig's ConstantDelaySchedule.
            let secs = t.as_second() + every.as_secs() as i64;
            return Timestamp::from_second(secs).ok();
        }
        let tz = self.tz.as_ref().unwrap_or(default_tz);
        let start = t.to_zoned(tz.clone()).datetime();
        let mut dt: DateTime = start.with().second(0).subsec_nanosecond(0).build().ok()?;
        dt = dt.checked_add(1.minute()).ok()?;
        let limit = start.year() + 5;
        while dt.year() <= limit {
            if self.month & (1 << dt.month()) == 0 {
                let first = Date::new(dt.year(), dt.month(), 1).ok()?;
                dt = first
                    .checked_add(1.month())
                    .ok()?
                    .to_datetime(jiff::civil::Time::midnight());
                continue;
            }
            if !self.day_matches(dt.date()) {
                dt = dt
                    .date()
                    .checked_add(1.day())
                    .ok()?
                    .to_datetime(jiff::civil::Time::midnight());
                continue;
            }
            if self.hour & (1 << dt.hour()) == 0 {
                dt = dt
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if self.minute & (1 << dt.minute()) == 0 {
                dt = dt.checked_add(1.minute()).ok()?;
                continue;
            }
            let z = tz.to_ambiguous_zoned(dt).compatible().ok()?;
            if z.timestamp() > t {
                return Some(z.timestamp());
            }
            dt = dt.checked_add(1.minute()).ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn every_minute_and_descriptors() {
        let utc = TimeZone::UTC;
        let s = Schedule::parse("* * * * *").unwrap();
        assert_eq!(
            s.next(ts("2024-01-01T10:00:30Z"), &utc),
            Some(ts("2024-01-01T10:01:00Z"))
        );
        assert_eq!(
            s.next(ts("2024-01-01T10:01:00Z"), &utc),
            Some(ts("2024-01-01T10:02:00Z"))
        );
        let h = Schedule::parse("@hourly").unwrap();
        assert_eq!(
            h.next(ts("2024-01-01T10:00:00Z"), &utc),
            Some(ts("2024-01-01T11:00:00Z"))
        );
        let y = Schedule::parse("@yearly").unwrap();
        assert_eq!(
            y.next(ts("2024-03-01T00:00:00Z"), &utc),
            Some(ts("2025-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn fields_steps_names_and_day_semantics() {
        let utc = TimeZone::UTC;
        let s = Schedule::parse("*/15 9-17 * * MON-FRI").unwrap();
        // 2024-01-06 is a Saturday.
        assert_eq!(
            s.next(ts("2024-01-06T12:00:00Z"), &utc),
            Some(ts("2024-01-08T09:00:00Z"))
        );
        assert_eq!(
            s.next(ts("2024-01-08T09:00:00Z"), &utc),
            Some(ts("2024-01-08T09:15:00Z"))
        );
        // Both day fields restricted: either matches (1st of month or a Sunday).
        let or = Schedule::parse("0 0 1 * 0").unwrap();
        assert_eq!(
            or.next(ts("2024-01-02T00:00:00Z"), &utc),
            Some(ts("2024-01-07T00:00:00Z"))
        );
        assert_eq!(
            Schedule::parse("0 0 31 2 *")
                .unwrap()
                .next(ts("2024-01-01T00:00:00Z"), &utc),
            None
        );
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 7",
            "@often",
            "*/0 * * * *",
            "5-1 * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn time_zones() {
        let s = Schedule::parse("TZ=America/New_York 0 9 * * *").unwrap();
        // 09:00 in New York in January is 14:00 UTC.
        assert_eq!(
            s.next(ts("2024-01-01T00:00:00Z"), &TimeZone::UTC),
            Some(ts("2024-01-01T14:00:00Z"))
        );
        let plain = Schedule::parse("0 9 * * *").unwrap();
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        assert_eq!(
            plain.next(ts("2024-01-01T00:00:00Z"), &tokyo),
            Some(ts("2024-01-02T00:00:00Z"))
        );
        assert!(Schedule::parse("TZ=Nowhere/City * * * * *").is_err());
    }
}
