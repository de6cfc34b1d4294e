//! Durations as people write them in `mesh.yaml` and on the command line (`720h`, `30d`,
//! `1h30m`, `90s`, `500ms`, or a plain number of seconds), and as meshboot prints them back
//! (`29d 23h`). One parser for every field and flag, so `readerToken.ttl`, `--timeout` and
//! `--expiring-within` read the same way.
//!
//! ```
//! use std::time::Duration;
//! use mesh_core::duration::{human, parse};
//! assert_eq!(parse("720h"), Ok(Duration::from_secs(720 * 3600)));
//! assert_eq!(parse("30d"), parse("720h"));
//! assert_eq!(human(Duration::from_secs(29 * 86_400 + 23 * 3600 + 59)), "29d 23h");
//! ```

use std::time::Duration;

/// Parses `90`, `90s`, `2m`, `1m30s`, `500ms`, `720h`, `30d` (a day is 24 h, as in
/// `--expiring-within 30d`). Units may be combined, largest first or not; no spaces, no sign,
/// no fractions. The error says what was written and how to write it.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(mesh_core::duration::parse("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(mesh_core::duration::parse("500ms"), Ok(Duration::from_millis(500)));
/// assert!(mesh_core::duration::parse("2 hours").is_err());
/// ```
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let bad = || format!("{text:?} is not a duration: use e.g. 720h, 30d, 1h30m, 90s");
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = |per: u64| value.checked_mul(per).map(Duration::from_secs);
        let part = match &rest[..unit_len] {
            "ms" => Some(Duration::from_millis(value)),
            "s" => seconds(1),
            "m" => seconds(60),
            "h" => seconds(3600),
            "d" => seconds(86_400),
            _ => return Err(bad()),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("{text:?} is too long a duration"))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A duration for people, to the two largest units: `29d 23h`, `5h 2m`, `10m`, `45s`, `0s`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(mesh_core::duration::human(Duration::from_secs(3600 * 240)), "10d");
/// assert_eq!(mesh_core::duration::human(Duration::from_secs(125)), "2m 5s");
/// ```
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, name) in units {
        if rest >= size {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            // The second unit is the next one down, even when it is zero: "2d" not "2d 5m".
            break;
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.is_empty() {
        return "0s".into();
    }
    parts.join(" ")
}

/// The same duration written back the way [`parse`] reads it, in Go's units (hours at most,
/// as `readerToken` examples write them): for messages that quote a setting.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(mesh_core::duration::exact(Duration::from_secs(5400)), "1h30m");
/// assert_eq!(mesh_core::duration::exact(Duration::from_secs(86_400 * 30)), "720h");
/// ```
pub fn exact(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (size, name) in [(3600, "h"), (60, "m"), (1, "s")] {
        if secs >= size {
            out.push_str(&format!("{}{name}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_kubectl_and_go_write_plus_days() {
        assert_eq!(parse("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("720h"), Ok(Duration::from_secs(2_592_000)));
        assert_eq!(parse("1d12h"), Ok(Duration::from_secs(129_600)));
        for bad in ["", "m", "2 minutes", "1.5h", "-1h", "10y", "h10"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse("99999999999999999999d").is_err());
    }

    #[test]
    fn prints_two_units_for_people_and_all_for_settings() {
        assert_eq!(human(Duration::from_secs(0)), "0s");
        assert_eq!(human(Duration::from_secs(59)), "59s");
        assert_eq!(human(Duration::from_secs(2 * 86_400 + 300)), "2d");
        assert_eq!(human(Duration::from_secs(86_400 + 3600 * 5 + 7)), "1d 5h");
        assert_eq!(exact(Duration::from_secs(86_400 + 61)), "24h1m1s");
        assert_eq!(
            parse(&exact(Duration::from_secs(987_654))),
            Ok(Duration::from_secs(987_654))
        );
    }
}
