//! Resource quantities (`500m`, `1Gi`, `2e3`) compared by value, as the API server stores them.
//!
//! The server parses every quantity field with apimachinery's `resource.Quantity` and writes it
//! back in canonical form (`2000m` → `2`, `1024Mi` → `1Gi`, `1.5Gi` → `1536Mi`, `1000Mi` stays),
//! so the text meshboot sent and the text it reads back may differ while the value is the same.
//! Parsing keeps a value down to nano units, rounding a finer non-zero value away from zero
//! (`0.9n` is stored as `1n`), and silently caps a binary-suffixed value at 2⁶³−1 (`8Ei`).
//! Comparing the values after those two rules is comparing what the server would store.

use serde_json::Value;

/// The largest value a binary-suffixed quantity keeps (apimachinery caps it at `MaxInt64`).
const BINARY_CAP: i128 = i64::MAX as i128;

/// Nano units per unit.
const NANO: i128 = 1_000_000_000;

/// The value of a quantity in nano units, as the API server would store it; `None` when the
/// text is not a quantity (or too large to compare here).
///
/// ```
/// use mesh_core::cluster::quantity_nanos;
/// assert_eq!(quantity_nanos("2000m"), quantity_nanos("2"));
/// assert_eq!(quantity_nanos("1024Mi"), quantity_nanos("1Gi"));
/// assert_ne!(quantity_nanos("1000Mi"), quantity_nanos("1Gi"));
/// assert_eq!(quantity_nanos("0.9n"), Some(1));
/// assert_eq!(quantity_nanos("1K"), None); // kilo is a lower-case k
/// ```
pub fn quantity_nanos(text: &str) -> Option<i128> {
    let text = text.trim();
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, suffix) = rest.split_at(number_len);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
        return None;
    }
    let (base2, exponent) = interpret_suffix(suffix)?;
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let frac_len = i32::try_from(frac_part.len()).ok()?;
    // value = mantissa · base^exponent / 10^frac_len; in nano units, ×10⁹.
    let (numerator, ten_exponent) = if base2 {
        let factor = 1i128.checked_shl(u32::try_from(exponent).ok()?)?;
        (mantissa.checked_mul(factor)?, 9 - frac_len)
    } else {
        (mantissa, exponent.checked_add(9)?.checked_sub(frac_len)?)
    };
    let mut nanos = scale_ceil(numerator, ten_exponent)?;
    if base2 {
        nanos = nanos.min(BINARY_CAP.checked_mul(NANO)?);
    }
    Some(if negative { -nanos } else { nanos })
}

/// True when `desired` and `live` hold the same quantity (a JSON number counts as its decimal
/// text, as the server accepts it); `None` when either is not a quantity, so the caller can
/// fall back to comparing them as they are.
///
/// ```
/// use mesh_core::cluster::same_quantity;
/// use serde_json::json;
/// assert_eq!(same_quantity(&json!("2000m"), &json!("2")), Some(true));
/// assert_eq!(same_quantity(&json!(2), &json!("2")), Some(true));
/// assert_eq!(same_quantity(&json!("100m"), &json!("1")), Some(false));
/// assert_eq!(same_quantity(&json!({"a": 1}), &json!("1")), None);
/// ```
pub fn same_quantity(desired: &Value, live: &Value) -> Option<bool> {
    let nanos = |v: &Value| match v {
        Value::String(s) => quantity_nanos(s),
        Value::Number(n) => quantity_nanos(&n.to_string()),
        _ => None,
    };
    Some(nanos(desired)? == nanos(live)?)
}

/// `(binary, exponent)`: binary suffixes are powers of 2, the others powers of 10.
fn interpret_suffix(suffix: &str) -> Option<(bool, i32)> {
    Some(match suffix {
        "Ki" => (true, 10),
        "Mi" => (true, 20),
        "Gi" => (true, 30),
        "Ti" => (true, 40),
        "Pi" => (true, 50),
        "Ei" => (true, 60),
        "n" => (false, -9),
        "u" => (false, -6),
        "m" => (false, -3),
        "" => (false, 0),
        "k" => (false, 3),
        "M" => (false, 6),
        "G" => (false, 9),
        "T" => (false, 12),
        "P" => (false, 15),
        "E" => (false, 18),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            if exponent.is_empty() {
                return None;
            }
            (false, exponent.parse().ok()?)
        }
    })
}

/// `ceil(numerator · 10^exponent)` for a non-negative numerator; `None` on overflow.
fn scale_ceil(numerator: i128, exponent: i32) -> Option<i128> {
    if numerator == 0 {
        return Some(0);
    }
    if exponent >= 0 {
        return numerator.checked_mul(10i128.checked_pow(u32::try_from(exponent).ok()?)?);
    }
    let Some(divisor) = 10i128.checked_pow(exponent.unsigned_abs()) else {
        // Finer than any i128 can hold: a non-zero value rounds up to the smallest unit.
        return Some(1);
    };
    Some((numerator + divisor - 1) / divisor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values a real API server (apimachinery `resource.Quantity`) stores for the text sent,
    /// from `quantity.go`'s documentation and `quantity_test.go`'s canonicalisation table.
    #[test]
    fn the_server_stores_these_texts_as_these_canonical_values() {
        for (sent, stored) in [
            ("2000m", "2"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("1.5", "1500m"),
            ("0.9n", "1n"),
            ("1e3", "1k"),
            ("1E6", "1M"),
            ("0.5Ki", "512"),
            ("100000000000u", "100k"),
            ("+3", "3"),
            ("-0.1", "-100m"),
            ("8Ei", "9223372036854775807"),
            ("0.000000001", "1n"),
            ("0.0000000001", "1n"),
            ("1.", "1"),
            (".5", "500m"),
            ("007", "7"),
            ("0", "0m"),
        ] {
            assert_eq!(
                quantity_nanos(sent),
                quantity_nanos(stored),
                "{sent} is stored as {stored}"
            );
            assert!(quantity_nanos(sent).is_some(), "{sent}");
        }
    }

    #[test]
    fn different_values_stay_different() {
        for (a, b) in [
            ("1000Mi", "1Gi"),
            ("1k", "1Ki"),
            ("100m", "1"),
            ("1", "-1"),
            ("1n", "2n"),
        ] {
            assert_ne!(quantity_nanos(a), quantity_nanos(b), "{a} vs {b}");
        }
    }

    #[test]
    fn malformed_texts_are_not_quantities() {
        for text in ["", "K", "1K", "1.2.3", "1Gb", "abc", "1e", "1ee3", "-", "."] {
            assert_eq!(quantity_nanos(text), None, "{text:?}");
        }
    }

    #[test]
    fn numbers_compare_as_their_text() {
        use serde_json::json;
        assert_eq!(same_quantity(&json!(0.5), &json!("500m")), Some(true));
        assert_eq!(same_quantity(&json!(1), &json!("1000m")), Some(true));
        assert_eq!(same_quantity(&json!(true), &json!("1")), None);
    }
}
