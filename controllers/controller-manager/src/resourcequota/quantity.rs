//! Just enough `resource.Quantity` arithmetic for quota usage (mirrors upstream
//! `apimachinery/pkg/api/resource`): parse to thousandths, add, print canonically (binary
//! suffixes for sums of binary-suffixed quantities, decimal otherwise, `m` below one).

/// A quantity in thousandths of a unit, and whether it was written with a binary suffix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Milli {
    pub value: i128,
    pub binary: bool,
}

pub fn parse(s: &str) -> Option<Milli> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(end);
    let (mult_num, mult_den, binary): (i128, i128, bool) = match suffix {
        "" => (1000, 1, false),
        "m" => (1, 1, false),
        "k" => (1_000_000, 1, false),
        "M" => (1_000_000_000, 1, false),
        "G" => (1_000_000_000_000, 1, false),
        "T" => (1_000_000_000_000_000, 1, false),
        "P" => (1_000_000_000_000_000_000, 1, false),
        "E" => (1_000_000_000_000_000_000_000, 1, false),
        "Ki" => (1000 << 10, 1, true),
        "Mi" => (1000 << 20, 1, true),
        "Gi" => (1000 << 30, 1, true),
        "Ti" => (1000 << 40, 1, true),
        "Pi" => (1000 << 50, 1, true),
        "Ei" => (1000 << 60, 1, true),
        "n" => (1, 1_000_000, false),
        "u" => (1, 1000, false),
        _ => return None,
    };
    let (neg, digits) = match num.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, num.trim_start_matches('+')),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let int: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_digits = frac.len().min(18) as u32;
    let frac: i128 = if frac.is_empty() {
        0
    } else {
        frac[..frac_digits as usize].parse().ok()?
    };
    let scale = 10i128.pow(frac_digits);
    // Round up to whole thousandths, as quota values never go below 1m.
    let num = (int * scale + frac) * mult_num;
    let den = scale * mult_den;
    let v = (num + den - 1) / den;
    Some(Milli {
        value: if neg { -v } else { v },
        binary,
    })
}

impl Milli {
    pub fn plus(self, o: Milli) -> Milli {
        Milli {
            value: self.value + o.value,
            binary: if self.value == 0 {
                o.binary
            } else {
                self.binary
            },
        }
    }

    /// The canonical string.
    pub fn format(&self) -> String {
        let v = self.value;
        if v == 0 {
            return "0".into();
        }
        if v % 1000 != 0 {
            return format!("{v}m");
        }
        let units = v / 1000;
        if self.binary {
            let suffixes = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
            let mut best: Option<(i128, &str)> = None;
            for (i, s) in suffixes.iter().enumerate() {
                let d = 1i128 << (10 * (i + 1));
                if units % d == 0 {
                    best = Some((units / d, s));
                }
            }
            if let Some((n, s)) = best {
                return format!("{n}{s}");
            }
        }
        let suffixes = ["k", "M", "G", "T", "P", "E"];
        let mut best: Option<(i128, &str)> = None;
        for (i, s) in suffixes.iter().enumerate() {
            let d = 1000i128.pow(i as u32 + 1);
            if units % d == 0 {
                best = Some((units / d, s));
            }
        }
        match best {
            Some((n, s)) => format!("{n}{s}"),
            None => units.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(v: &[&str]) -> String {
        v.iter()
            .map(|s| parse(s).unwrap())
            .fold(Milli::default(), Milli::plus)
            .format()
    }

    #[test]
    fn sums_print_canonically() {
        assert_eq!(sum(&["100m", "200m"]), "300m");
        assert_eq!(sum(&["500m", "1.5"]), "2");
        assert_eq!(sum(&["64Mi", "64Mi"]), "128Mi");
        assert_eq!(sum(&["1Gi", "512Mi"]), "1536Mi");
        assert_eq!(sum(&["1000"]), "1k");
        assert_eq!(sum(&["3"]), "3");
        assert!(parse("12x").is_none());
    }
}
