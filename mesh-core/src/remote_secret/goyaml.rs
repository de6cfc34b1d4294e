//! The few pieces of go-yaml v2 (what `sigs.k8s.io/yaml`, and so istioctl and client-go, print
//! with) needed to reproduce istioctl's remote-secret output byte for byte: how a string scalar
//! is styled, and in which order map keys come.
//!
//! Not covered: go-yaml folds plain scalars that contain spaces once a line passes 80 columns;
//! no value meshboot prints contains a space (names are DNS labels, servers URLs, tokens and CA
//! data base64).

use std::cmp::Ordering;

/// How go-yaml v2 writes `value` as a scalar in block context (a map value or key), without
/// the indentation of a literal block (see [`literal_block`]).
pub(crate) fn scalar(value: &str) -> String {
    if !resolves_to_string(value) || is_base60_float(value) {
        return double_quoted(value);
    }
    if has_special_characters(value) {
        return double_quoted(value);
    }
    if plain_allowed(value) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// A literal block scalar (`|`, `|-`, `|+`) for a multi-line value: the indicator line's
/// suffix, then the content lines, each indented by `indent` spaces (empty lines stay empty).
pub(crate) fn literal_block(value: &str, indent: usize) -> String {
    let trailing_breaks = value.len() - value.trim_end_matches('\n').len();
    let chomp = match trailing_breaks {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let indicator = if value.starts_with(' ') || value.starts_with('\n') {
        "2"
    } else {
        ""
    };
    let mut out = format!("|{indicator}{chomp}\n");
    let pad = " ".repeat(indent);
    let body = value.strip_suffix('\n').unwrap_or(value);
    for line in body.split('\n') {
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// go-yaml v2's map-key order (`keyList.Less`), ported as is: at the first difference two
/// letters compare as characters; a letter against a non-letter puts the non-letter first
/// (the letter first right after a digit); otherwise runs of digits compare as numbers.
pub(crate) fn key_order(a: &str, b: &str) -> Ordering {
    let less = |a: &str, b: &str| -> bool {
        let ar: Vec<char> = a.chars().collect();
        let br: Vec<char> = b.chars().collect();
        let mut digits = false;
        for i in 0..ar.len().min(br.len()) {
            if ar[i] == br[i] {
                digits = ar[i].is_ascii_digit();
                continue;
            }
            let al = ar[i].is_alphabetic();
            let bl = br[i].is_alphabetic();
            if al && bl {
                return ar[i] < br[i];
            }
            if al || bl {
                return if digits { al } else { bl };
            }
            let (mut an, mut bn) = (0i64, 0i64);
            if ar[i] == '0' || br[i] == '0' {
                for j in (0..i).rev() {
                    if !ar[j].is_ascii_digit() {
                        break;
                    }
                    if ar[j] != '0' {
                        an = 1;
                        bn = 1;
                        break;
                    }
                }
            }
            let mut ai = i;
            while ai < ar.len() && ar[ai].is_ascii_digit() {
                an = an
                    .wrapping_mul(10)
                    .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
                ai += 1;
            }
            let mut bi = i;
            while bi < br.len() && br[bi].is_ascii_digit() {
                bn = bn
                    .wrapping_mul(10)
                    .wrapping_add(i64::from(br[bi] as u8 - b'0'));
                bi += 1;
            }
            if an != bn {
                return an < bn;
            }
            if ai != bi {
                return ai < bi;
            }
            return ar[i] < br[i];
        }
        ar.len() < br.len()
    };
    if less(a, b) {
        Ordering::Less
    } else if less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// go-yaml v2 `resolve("", s)` returns `!!str`: the text would read back as a string.
fn resolves_to_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    if SPECIAL.contains(&s) {
        return false;
    }
    let Some(first) = s.chars().next() else {
        return false;
    };
    match first {
        '.' => s.parse::<f64>().is_err() || s.contains(|c: char| c.is_alphabetic()),
        '0'..='9' | '+' | '-' => {
            if is_date(s) {
                return false;
            }
            let plain = s.replace('_', "");
            !(go_parse_int(&plain) || is_yaml_float(&plain) || is_binary(&plain))
        }
        _ => true,
    }
}

/// `strconv.ParseInt(s, 0, 64)` or `ParseUint` succeeds: optional sign, then `0x`/`0o`/`0b`
/// prefixed or leading-`0` octal or decimal digits.
fn go_parse_int(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (digits, radix) = if let Some(r) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        (r, 16)
    } else if let Some(r) = unsigned
        .strip_prefix("0o")
        .or_else(|| unsigned.strip_prefix("0O"))
    {
        (r, 8)
    } else if let Some(r) = unsigned
        .strip_prefix("0b")
        .or_else(|| unsigned.strip_prefix("0B"))
    {
        (r, 2)
    } else if unsigned.len() > 1 && unsigned.starts_with('0') {
        (&unsigned[1..], 8)
    } else {
        (unsigned, 10)
    };
    !digits.is_empty()
        && u128::from_str_radix(digits, radix).is_ok_and(|v| v <= u128::from(u64::MAX))
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == frac_start {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

fn is_binary(s: &str) -> bool {
    let digits = s
        .strip_prefix("0b")
        .or_else(|| s.strip_prefix("-0b"))
        .unwrap_or("");
    !digits.is_empty() && digits.chars().all(|c| c == '0' || c == '1')
}

/// A `YYYY-M-D` date go-yaml would read as a timestamp.
fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 {
        return false;
    }
    let num = |p: &str, max_len: usize| -> Option<u32> {
        if p.is_empty() || p.len() > max_len || !p.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let (Some(year), Some(month), Some(day)) =
        (num(parts[0], 4), num(parts[1], 2), num(parts[2], 2))
    else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$` (YAML 1.1 sexagesimal).
fn is_base60_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (main, frac) = match body.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (body, None),
    };
    if frac.is_some_and(|f| !f.chars().all(|c| c.is_ascii_digit() || c == '_')) {
        return false;
    }
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    if !head.starts_with(|c: char| c.is_ascii_digit())
        || !head.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let mut count = 0;
    for part in parts {
        count += 1;
        let ok = match part.as_bytes() {
            [d] => d.is_ascii_digit(),
            [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    count > 0
}

/// Characters the emitter cannot write unquoted or single-quoted.
fn has_special_characters(s: &str) -> bool {
    s.chars().any(|c| {
        let printable = matches!(c, '\t' | '\n' | '\u{20}'..='\u{7e}' | '\u{85}')
            || ('\u{a0}'..='\u{d7ff}').contains(&c)
            || (('\u{e000}'..='\u{fffd}').contains(&c) && c != '\u{feff}')
            || ('\u{10000}'..='\u{10ffff}').contains(&c);
        !printable || c == '\u{feff}' || c == '\t' || c == '\n' || c == '\r'
    })
}

/// The emitter's analysis (`yaml_emitter_analyze_scalar`): may this string be written plain as
/// a block-context value?
fn plain_allowed(s: &str) -> bool {
    const INDICATORS: &[char] = &[
        '#', ',', '[', ']', '{', '}', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`',
    ];
    if s.starts_with("---") || s.starts_with("...") {
        let rest = &s[3..];
        if rest.is_empty() || rest.starts_with([' ', '\t', '\n']) {
            return false;
        }
    }
    if s.starts_with(' ') || s.ends_with(' ') {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_space = chars.get(i + 1).is_none_or(|n| *n == ' ');
        let preceded_by_space = i > 0 && chars[i - 1] == ' ';
        if i == 0 {
            if INDICATORS.contains(&c) {
                return false;
            }
            if (c == '?' || c == ':' || c == '-') && followed_by_space {
                return false;
            }
        } else {
            if c == ':' && followed_by_space {
                return false;
            }
            if c == '#' && preceded_by_space {
                return false;
            }
        }
    }
    true
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{feff}' => {
                let v = c as u32;
                if v <= 0xff {
                    out.push_str(&format!("\\x{v:02X}"));
                } else {
                    out.push_str(&format!("\\u{v:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_read_back_as_other_types_are_double_quoted() {
        for s in [
            "true",
            "false",
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "null",
            "~",
            "",
            "123",
            "0x1f",
            "0o17",
            "017",
            "1e3",
            "1_000",
            "-5",
            "+.inf",
            ".5",
            "2024-1-2",
            "2024-02-29",
            "1:30",
            "0b101",
            "<<",
        ] {
            assert_eq!(scalar(s), format!("\"{s}\""), "{s:?}");
        }
    }

    #[test]
    fn ordinary_strings_stay_plain() {
        for s in [
            "cluster1",
            "istio-system",
            "https://10.0.0.1:6443",
            "gateway",
            "54643f96-eca0-11e9-bb97-42010a80000a",
            "Y2FEYXRh",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_",
            "<token>",
            "2024-13-01",
            "2023-02-29",
            "1e",
            "a:b",
            "1.2.3",
        ] {
            assert_eq!(scalar(s), s, "{s:?}");
        }
    }

    #[test]
    fn indicators_force_single_quotes() {
        assert_eq!(scalar("*star"), "'*star'");
        assert_eq!(scalar("- item"), "'- item'");
        assert_eq!(scalar("a: b"), "'a: b'");
        assert_eq!(scalar("it's #1"), "'it''s #1'");
        assert_eq!(scalar("it's#1"), "it's#1");
        assert_eq!(scalar("x #y"), "'x #y'");
        assert_eq!(scalar(" lead"), "' lead'");
        assert_eq!(scalar("'q"), "'''q'");
    }

    #[test]
    fn literal_blocks_chomp_like_go_yaml() {
        assert_eq!(literal_block("a\nb\n", 4), "|\n    a\n    b\n");
        assert_eq!(literal_block("a\nb", 2), "|-\n  a\n  b\n");
        assert_eq!(literal_block("a\n\nb\n", 2), "|\n  a\n\n  b\n");
        assert_eq!(literal_block("a\n\n", 2), "|+\n  a\n\n");
    }

    #[test]
    fn keys_sort_like_go_yaml() {
        let mut keys = vec![
            "users",
            "current-context",
            "contexts",
            "kind",
            "apiVersion",
            "clusters",
        ];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(
            keys,
            [
                "apiVersion",
                "clusters",
                "contexts",
                "current-context",
                "kind",
                "users"
            ]
        );
        let mut n = vec!["c10", "c9", "c1"];
        n.sort_by(|a, b| key_order(a, b));
        assert_eq!(n, ["c1", "c9", "c10"]);
        assert_eq!(key_order("name", "namespace"), Ordering::Less);
        assert_eq!(key_order("a-b", "ab"), Ordering::Less);
        assert_eq!(key_order("a9", "a:"), Ordering::Greater);
    }
}
