//! Resource quantities: parsing, comparison and canonical formatting
//! (mirrors apimachinery/pkg/api/resource/quantity.go and suffix.go).
//!
//! Values are held exactly as a count of nano-units (10^-9); anything finer is rounded up,
//! as upstream does for quantities with more than nine decimal places.

use std::cmp::Ordering;

/// The suffix family a quantity was written with; canonical output keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    /// The value in units of 10^-9.
    pub nanos: i128,
    pub format: Format,
}

pub const FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const NANO: i128 = 1_000_000_000;

fn pow10(e: u32) -> Option<i128> {
    10i128.checked_pow(e)
}

/// Parses a quantity string (`ParseQuantity`).
pub fn parse(s: &str) -> Result<Quantity, String> {
    if s.is_empty() {
        return Err(FORMAT_ERROR.to_string());
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut negative = false;
    if bytes[0] == b'+' || bytes[0] == b'-' {
        negative = bytes[0] == b'-';
        i = 1;
    }
    let num_start = i;
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
        i += 1;
    }
    let number = &s[num_start..i];
    let suffix = &s[i..];
    if number.is_empty()
        || number.matches('.').count() > 1
        || !number.bytes().any(|b| b.is_ascii_digit())
    {
        return Err(FORMAT_ERROR.to_string());
    }
    let suffix_ok = {
        let letters_end = suffix
            .find(|c: char| !"eEinumkKMGTP".contains(c))
            .unwrap_or(suffix.len());
        let rest = &suffix[letters_end..];
        let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
        rest.bytes().all(|b| b.is_ascii_digit())
    };
    if !suffix_ok {
        return Err(FORMAT_ERROR.to_string());
    }
    let (base2, exp, format) =
        interpret_suffix(suffix).ok_or_else(|| "unable to parse quantity's suffix".to_string())?;
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mantissa: i128 = if digits.is_empty() {
        0
    } else if digits.len() > 36 {
        return Err("quantity is too large".to_string());
    } else {
        digits
            .parse::<i128>()
            .map_err(|_| FORMAT_ERROR.to_string())?
    };
    // value = mantissa * 10^(exp10 - frac_len) * 2^exp2, expressed in nanos.
    let frac_len = frac_part.len() as i64;
    let (exp10, exp2) = if base2 { (0i64, exp) } else { (exp, 0i64) };
    let scale10 = exp10 - frac_len + 9;
    let mut value = mantissa;
    let too_large = || "quantity is too large".to_string();
    if exp2 > 0 {
        value = value
            .checked_mul(1i128 << exp2.min(100))
            .ok_or_else(too_large)?;
    }
    if scale10 >= 0 {
        let m = pow10(u32::try_from(scale10).map_err(|_| too_large())?).ok_or_else(too_large)?;
        if value != 0 {
            value = value.checked_mul(m).ok_or_else(too_large)?;
        }
    } else {
        let shift = u32::try_from(-scale10).unwrap_or(u32::MAX);
        value = match pow10(shift) {
            Some(d) => div_ceil(value, d),
            None => i128::from(value != 0),
        };
    }
    Ok(Quantity {
        nanos: if negative { -value } else { value },
        format,
    })
}

fn div_ceil(v: i128, d: i128) -> i128 {
    let q = v / d;
    if v % d != 0 { q + 1 } else { q }
}

/// Returns (is binary, exponent, format) for a suffix.
fn interpret_suffix(suffix: &str) -> Option<(bool, i64, Format)> {
    let dec = |e| Some((false, e, Format::DecimalSI));
    let bin = |e| Some((true, e, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            let e: i64 = rest.parse().ok()?;
            Some((false, e, Format::DecimalExponent))
        }
    }
}

impl Quantity {
    /// Rounds up (away from zero) to milli precision, as `SetDefaults_ResourceList` does.
    pub fn round_up_milli(self) -> Quantity {
        let step = 1_000_000;
        let r = self.nanos % step;
        let nanos = if r == 0 {
            self.nanos
        } else if self.nanos > 0 {
            self.nanos - r + step
        } else {
            self.nanos - r - step
        };
        Quantity { nanos, ..self }
    }

    /// `Value()`: the integer value rounded up.
    pub fn value(&self) -> i128 {
        if self.nanos >= 0 {
            div_ceil(self.nanos, NANO)
        } else {
            self.nanos / NANO
        }
    }

    /// `MilliValue()`.
    pub fn milli_value(&self) -> i128 {
        if self.nanos >= 0 {
            div_ceil(self.nanos, 1_000_000)
        } else {
            self.nanos / 1_000_000
        }
    }

    pub fn cmp_value(&self, other: &Quantity) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }

    /// The canonical string (`Quantity.String()`).
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let mut format = self.format;
        if format == Format::BinarySI
            && (abs < 1024 * NANO as u128 || !abs.is_multiple_of(NANO as u128))
        {
            format = Format::DecimalSI;
        }
        if format == Format::BinarySI {
            let mut n = abs / NANO as u128;
            let mut exp = 0;
            while exp < 6 && n.is_multiple_of(1024) {
                n /= 1024;
                exp += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
            return format!("{sign}{n}{suffix}");
        }
        let mut m = abs;
        let mut e: i32 = -9;
        while m.is_multiple_of(10) {
            m /= 10;
            e += 1;
        }
        let r = e.rem_euclid(3);
        m *= 10u128.pow(r as u32);
        e -= r;
        let suffix = match format {
            Format::DecimalExponent => {
                if e == 0 {
                    String::new()
                } else {
                    format!("e{e}")
                }
            }
            _ => match e {
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
            },
        };
        format!("{sign}{m}{suffix}")
    }
}

/// Canonicalizes a quantity string, leaving unparseable input untouched.
pub fn canonicalize(s: &str) -> String {
    parse(s)
        .map(|q| q.canonical())
        .unwrap_or_else(|_| s.to_string())
}

/// Canonicalizes a resource-list entry: rounded up to milli precision first.
pub fn canonicalize_resource(s: &str) -> String {
    parse(s)
        .map(|q| q.round_up_milli().canonical())
        .unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_match_upstream() {
        for (input, want) in [
            ("0.5", "500m"),
            ("100m", "100m"),
            ("1000m", "1"),
            ("1500", "1500"),
            ("1.5k", "1500"),
            ("1000", "1k"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("129M", "129M"),
            ("123Mi", "123Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Ki", "512"),
            ("1Gi", "1Gi"),
            ("0", "0"),
            ("-2", "-2"),
        ] {
            assert_eq!(canonicalize(input), want, "{input}");
        }
        assert_eq!(canonicalize_resource("0.0001"), "1m");
        assert_eq!(canonicalize_resource("100n"), "1m");
    }

    #[test]
    fn parse_errors_and_compare() {
        assert_eq!(parse("abc").unwrap_err(), FORMAT_ERROR);
        assert!(parse("1Qi").is_err());
        assert!(parse("").is_err());
        let a = parse("1Gi").unwrap();
        let b = parse("1073741824").unwrap();
        assert_eq!(a.cmp_value(&b), Ordering::Equal);
        assert_eq!(parse("500m").unwrap().value(), 1);
        assert_eq!(parse("1.5").unwrap().milli_value(), 1500);
    }
}
