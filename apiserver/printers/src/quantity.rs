//! Canonical `resource.Quantity` strings as `Quantity.String()` prints them (mirrors
//! apimachinery/pkg/api/resource/quantity.go `CanonicalizeBytes` and amount.go), so that
//! "1000m" prints as "1", "2048Mi" as "2Gi" and "0.5Gi" as "512Mi".

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// Canonical form of a quantity string; input that does not parse is returned unchanged.
pub fn canonical_quantity(q: &Quantity) -> String {
    canonical(&q.0).unwrap_or_else(|| q.0.clone())
}

/// `Quantity.String()` for an optional quantity: Go prints a nil `*Quantity` as `<nil>`.
pub(crate) fn opt_quantity(q: Option<&Quantity>) -> String {
    q.map_or_else(|| "<nil>".to_string(), canonical_quantity)
}

/// `Quantity.String()` for a map lookup: a missing entry is the zero quantity, "0".
pub(crate) fn quantity_or_zero(q: Option<&Quantity>) -> String {
    q.map_or_else(|| "0".to_string(), canonical_quantity)
}

/// Parsed value: `mantissa * 10^scale`, with the format implied by the suffix.
fn parse(s: &str) -> Option<(i128, i32, Format)> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(num_end);
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let (format, exp10, pow1024) = parse_suffix(suffix)?;
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 36 {
        return None;
    }
    let mut mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    for _ in 0..pow1024 {
        mantissa = mantissa.checked_mul(1024)?;
    }
    let mut scale = exp10.checked_sub(i32::try_from(frac_part.len()).ok()?)?;
    // Values finer than nano are rounded up (away from zero) to the nano scale.
    if scale < -9 {
        let div = pow10(u32::try_from(-9 - scale).ok()?)?;
        let rounded = mantissa / div + i128::from(mantissa % div != 0);
        mantissa = rounded;
        scale = -9;
    }
    if negative {
        mantissa = -mantissa;
    }
    Some((mantissa, scale, format))
}

fn parse_suffix(suffix: &str) -> Option<(Format, i32, u32)> {
    let decimal = |e| Some((Format::DecimalSI, e, 0));
    let binary = |p| Some((Format::BinarySI, 0, p));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        _ => {
            let exp = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'))?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((Format::DecimalExponent, exp.parse().ok()?, 0))
        }
    }
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

fn canonical(s: &str) -> Option<String> {
    let (mantissa, scale, format) = parse(s)?;
    if mantissa == 0 {
        return Some("0".to_string());
    }
    let format = match format {
        // BinarySI only for integers of magnitude >= 1024; anything else would need rounding.
        Format::BinarySI => match integer_value(mantissa, scale) {
            Some(v) if v.abs() >= 1024 => Format::BinarySI,
            _ => Format::DecimalSI,
        },
        f => f,
    };
    if format == Format::BinarySI {
        let mut value = integer_value(mantissa, scale)?;
        let mut exp = 0;
        while value % 1024 == 0 {
            value /= 1024;
            exp += 1;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].get(exp)?;
        return Some(format!("{value}{suffix}"));
    }
    // Strip factors of ten, then lower the exponent to a multiple of three.
    let (mut m, mut e) = (mantissa, scale);
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    let r = e.rem_euclid(3);
    m = m.checked_mul(pow10(u32::try_from(r).ok()?)?)?;
    e -= r;
    let suffix = if format == Format::DecimalExponent {
        if e == 0 {
            String::new()
        } else {
            format!("e{e}")
        }
    } else {
        match e {
            -9 => "n".into(),
            -6 => "u".into(),
            -3 => "m".into(),
            0 => String::new(),
            3 => "k".into(),
            6 => "M".into(),
            9 => "G".into(),
            12 => "T".into(),
            15 => "P".into(),
            18 => "E".into(),
            _ => format!("e{e}"),
        }
    };
    Some(format!("{m}{suffix}"))
}

/// `mantissa * 10^scale` when it is an integer.
fn integer_value(mantissa: i128, scale: i32) -> Option<i128> {
    if scale >= 0 {
        mantissa.checked_mul(pow10(scale.unsigned_abs())?)
    } else {
        let div = pow10(scale.unsigned_abs())?;
        (mantissa % div == 0).then(|| mantissa / div)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        canonical_quantity(&Quantity(s.to_string()))
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(c("0"), "0");
        assert_eq!(c("0Gi"), "0");
        assert_eq!(c("1Gi"), "1Gi");
        assert_eq!(c("2048Mi"), "2Gi");
        assert_eq!(c("1536Mi"), "1536Mi");
        assert_eq!(c("0.5Gi"), "512Mi");
        assert_eq!(c("1.5Ki"), "1536");
        assert_eq!(c("100Ki"), "100Ki");
        assert_eq!(c("1000m"), "1");
        assert_eq!(c("1500m"), "1500m");
        assert_eq!(c("1.5"), "1500m");
        assert_eq!(c("100m"), "100m");
        assert_eq!(c("10000"), "10k");
        assert_eq!(c("1e3"), "1e3");
        assert_eq!(c("1.5e3"), "1500");
        assert_eq!(c("5G"), "5G");
        assert_eq!(c("1000M"), "1G");
        assert_eq!(c("0.1n"), "1n");
        assert_eq!(c("-100m"), "-100m");
        assert_eq!(c("512"), "512");
        assert_eq!(c("garbage"), "garbage");
    }
}
