//! Resource quantities as the API server stores them (apimachinery's `resource.Quantity`): every
//! quantity-typed field of a built-in kind is parsed and written back in canonical form, so
//! `cpu: 2000m` is stored as `"2"`, `memory: 1024Mi` as `"1Gi"` and `1000Mi` stays `"1000Mi"`.
//! Written from the documented behaviour and the upstream tests' values, not from its code.
//!
//! The rules, in short:
//! - a quantity is a signed decimal number with an optional suffix: decimal SI (`n u m k M G T P
//!   E`, none), binary SI (`Ki Mi Gi Ti Pi Ei`) or a decimal exponent (`e3`, `E-6`); it remembers
//!   which kind of suffix it had;
//! - the value keeps nano precision, rounding a finer non-zero remainder away from zero
//!   (`0.9n` → `1n`); binary values are capped at 2^63−1;
//! - the canonical form has no fraction and the largest suffix of its kind that keeps the value
//!   exact (`1.5` → `1500m`, `1536Mi` stays, `1024Mi` → `1Gi`); a binary value under 1024 or with
//!   a fraction is written with decimal suffixes (`0.5Gi` → `512Mi`, `1.5Ki` → `1536`);
//! - an input the parser's fast path judges canonical is stored as written, which keeps a few
//!   spellings a strict canonicaliser would change (`+1`, `1E3`, `100.035k`).
//!
//! ```
//! use mesh_tests::quantity::canonical;
//!
//! assert_eq!(canonical("2000m").as_deref(), Ok("2"));
//! assert_eq!(canonical("1024Mi").as_deref(), Ok("1Gi"));
//! assert_eq!(canonical("1000Mi").as_deref(), Ok("1000Mi"));
//! assert_eq!(canonical("0.5").as_deref(), Ok("500m"));
//! assert_eq!(canonical("1e3").as_deref(), Ok("1e3"));
//! assert!(canonical("1.1.M").is_err());
//! ```

use serde_json::{Value, json};

/// Why a string is not a quantity: apimachinery's three parse errors, worded as it words them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string does not have the shape of a quantity.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    /// The number part cannot be read.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// The suffix is not one of the known ones.
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// The pieces of a quantity string: sign, integer digits (leading zeros stripped, "0" when none),
/// fraction digits, suffix.
struct Parts<'a> {
    negative: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

fn split(s: &str) -> Result<Parts<'_>, QuantityError> {
    let b = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    match b.first() {
        Some(b'-') => {
            negative = true;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    while pos < b.len() && b[pos] == b'0' {
        pos += 1;
    }
    if pos == b.len() {
        return Ok(Parts {
            negative,
            num: "0",
            denom: "",
            suffix: "",
        });
    }
    let start = pos;
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = if pos == start { "0" } else { &s[start..pos] };
    let mut denom = "";
    if pos < b.len() && b[pos] == b'.' {
        pos += 1;
        let d = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[d..pos];
    }
    let suffix_start = pos;
    while pos < b.len() && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < b.len() && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos != b.len() {
        return Err(QuantityError::Format);
    }
    Ok(Parts {
        negative,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// (base, exponent, format) of a suffix.
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = |e| Some((10, e, Format::DecimalSi));
    let binary = |e| Some((2, e, Format::BinarySi));
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
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            let e: i32 = s[1..].parse().ok()?;
            Some((10, e, Format::DecimalExponent))
        }
        _ => None,
    }
}

/// A parsed value: `mantissa × 10^exponent`, non-negative mantissa, sign apart.
#[derive(Debug, Clone, Copy)]
struct Amount {
    negative: bool,
    mantissa: u128,
    exponent: i32,
}

impl Amount {
    fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// Moves trailing decimal zeros of the mantissa into the exponent.
    fn normalized(mut self) -> Self {
        if self.mantissa == 0 {
            self.exponent = 0;
            return self;
        }
        while self.mantissa.is_multiple_of(10) {
            self.mantissa /= 10;
            self.exponent += 1;
        }
        self
    }

    /// The absolute value as an integer, when it is one and fits.
    fn as_integer(&self) -> Option<u128> {
        let n = self.normalized();
        if n.exponent < 0 {
            return None;
        }
        10u128
            .checked_pow(u32::try_from(n.exponent).ok()?)
            .and_then(|p| n.mantissa.checked_mul(p))
    }

    /// Whether |value| < `limit`.
    fn below(&self, limit: u128) -> bool {
        let n = self.normalized();
        if n.exponent >= 0 {
            return n.as_integer().is_some_and(|v| v < limit);
        }
        match pow10(n.exponent.unsigned_abs()).and_then(|p| p.checked_mul(limit)) {
            Some(scaled) => n.mantissa < scaled,
            // The scaled limit is beyond u128: no mantissa reaches it.
            None => true,
        }
    }

    /// Whether |value| > `limit`.
    fn exceeds(&self, limit: u128) -> bool {
        let n = self.normalized();
        if n.exponent >= 0 {
            return n.as_integer().is_none_or(|v| v > limit);
        }
        match pow10(n.exponent.unsigned_abs()).and_then(|p| p.checked_mul(limit)) {
            Some(scaled) => n.mantissa > scaled,
            None => false,
        }
    }

    fn below_1024(&self) -> bool {
        self.below(1024)
    }
}

fn pow10(e: u32) -> Option<u128> {
    10u128.checked_pow(e)
}

/// Parses a quantity; `None` in the second place when the value is too large for this emulator
/// (beyond 10^38 in its digits), which real configurations never reach.
fn parse(s: &str) -> Result<Option<(Amount, Format)>, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::Format);
    }
    let p = split(s)?;
    let (base, exp, mut format) = interpret(p.suffix).ok_or(QuantityError::Suffix)?;
    let digits = format!("{}{}", p.num, p.denom);
    let Ok(mut mantissa) = digits.parse::<u128>() else {
        return Ok(None);
    };
    let denom_len = i32::try_from(p.denom.len()).map_err(|_| QuantityError::Numeric)?;
    let mut exponent = -denom_len;
    if base == 10 {
        exponent += exp;
    } else {
        let Some(m) = mantissa.checked_mul(1u128 << exp) else {
            return Ok(None);
        };
        mantissa = m;
    }
    // Nano precision, rounding a finer non-zero remainder away from zero.
    if mantissa != 0 && exponent < -9 {
        let shift = (-9 - exponent).unsigned_abs();
        mantissa = match pow10(shift) {
            Some(d) => mantissa.div_ceil(d),
            None => 1,
        };
        exponent = -9;
    }
    let mut amount = Amount {
        negative: p.negative,
        mantissa,
        exponent,
    };
    if format == Format::BinarySi {
        const MAX: u128 = i64::MAX as u128;
        if amount.exceeds(MAX) {
            amount = Amount {
                negative: amount.negative,
                mantissa: MAX,
                exponent: 0,
            };
        }
        // A binary value strictly between 0 and 1 is written with decimal suffixes.
        if !amount.is_zero() && amount.below(1) {
            format = Format::DecimalSi;
        }
    }
    Ok(Some((amount, format)))
}

/// Whether the API server keeps the input string as it is: it does when the fast path of its
/// parser reads the number exactly and the spelling already looks canonical.
fn kept_verbatim(s: &str) -> bool {
    if s == "0" {
        return true;
    }
    let Ok(p) = split(s) else { return false };
    let Some((_, exp, format)) = interpret(p.suffix) else {
        return false;
    };
    let digits = format!("{}{}", p.num, p.denom);
    let denom_len = p.denom.len() as i64;
    match format {
        Format::DecimalSi | Format::DecimalExponent => {
            let precision = 18 - (p.num.len() + p.denom.len()) as i64;
            let scale = i64::from(exp) - denom_len;
            precision >= 0
                && scale >= -9
                && scale % 3 == 0
                && !digits.ends_with("000")
                && !digits.starts_with('0')
        }
        Format::BinarySi => {
            // Integer-only fast path with an estimated precision budget, as upstream.
            let precision = 15 - p.num.len() as i64 - i64::from(exp * 3 / 10) - 1;
            if !p.denom.is_empty() || precision < 0 {
                return false;
            }
            let Ok(v) = p.num.parse::<i64>() else {
                return false;
            };
            v.checked_mul(1i64 << exp).is_some() && v & 0x07 != 0
        }
    }
}

fn decimal_suffix(exponent: i32, format: Format) -> String {
    if format == Format::DecimalSi {
        let s = match exponent {
            -9 => Some("n"),
            -6 => Some("u"),
            -3 => Some("m"),
            0 => Some(""),
            3 => Some("k"),
            6 => Some("M"),
            9 => Some("G"),
            12 => Some("T"),
            15 => Some("P"),
            18 => Some("E"),
            _ => None,
        };
        if let Some(s) = s {
            return s.to_string();
        }
    }
    if exponent == 0 {
        String::new()
    } else {
        format!("e{exponent}")
    }
}

fn render(amount: Amount, format: Format) -> String {
    if amount.is_zero() {
        return "0".into();
    }
    let sign = if amount.negative { "-" } else { "" };
    if format == Format::BinarySi
        && !amount.below_1024()
        && let Some(mut v) = amount.as_integer()
    {
        let mut e = 0;
        while e < 6 && v.is_multiple_of(1024) {
            v /= 1024;
            e += 1;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][e];
        return format!("{sign}{v}{suffix}");
    }
    let format = if format == Format::BinarySi {
        Format::DecimalSi
    } else {
        format
    };
    let n = amount.normalized();
    let mut mantissa = n.mantissa;
    let mut exponent = n.exponent;
    while exponent.rem_euclid(3) != 0 {
        mantissa = mantissa.saturating_mul(10);
        exponent -= 1;
    }
    format!("{sign}{mantissa}{}", decimal_suffix(exponent, format))
}

/// The canonical form the API server stores for quantity `s`.
pub fn canonical(s: &str) -> Result<String, QuantityError> {
    if kept_verbatim(s) {
        // Still reject what the parser rejects.
        parse(s)?;
        return Ok(s.to_string());
    }
    match parse(s)? {
        Some((amount, format)) => Ok(render(amount, format)),
        None => Ok(s.to_string()),
    }
}

/// The canonical form of a JSON quantity value (a string, or a number as YAML and JSON allow),
/// as the server's JSON decoder reads it (surrounding whitespace is ignored).
pub fn canonical_value(v: &Value) -> Result<Option<Value>, QuantityError> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => return Ok(None),
        _ => return Err(QuantityError::Format),
    };
    Ok(Some(json!(canonical(&text)?)))
}

/// Where a built-in kind holds quantities, relative to the object.
fn pod_spec_paths(group: &str, plural: &str) -> Option<&'static [&'static str]> {
    match (group, plural) {
        ("", "pods") => Some(&["spec"]),
        ("apps", "deployments" | "replicasets" | "daemonsets" | "statefulsets")
        | ("batch", "jobs")
        | ("", "replicationcontrollers") => Some(&["spec", "template", "spec"]),
        ("batch", "cronjobs") => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

fn at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, k| cur.get_mut(*k))
}

fn each_item(v: Option<&mut Value>) -> impl Iterator<Item = &mut Value> {
    v.and_then(Value::as_array_mut).into_iter().flatten()
}

/// Canonicalizes every value of a quantity map (`limits`, `requests`, `capacity`).
fn quantity_map(map: Option<&mut Value>, field: &str) -> Result<(), (String, QuantityError)> {
    if let Some(m) = map.and_then(Value::as_object_mut) {
        for (k, v) in m.iter_mut() {
            if let Some(c) = canonical_value(v).map_err(|e| (format!("{field}.{k}"), e))? {
                *v = c;
            }
        }
    }
    Ok(())
}

fn one_quantity(v: Option<&mut Value>, field: &str) -> Result<(), (String, QuantityError)> {
    if let Some(v) = v
        && let Some(c) = canonical_value(v).map_err(|e| (field.to_string(), e))?
    {
        *v = c;
    }
    Ok(())
}

fn requirements(r: Option<&mut Value>, field: &str) -> Result<(), (String, QuantityError)> {
    if let Some(r) = r {
        quantity_map(r.get_mut("limits"), &format!("{field}.limits"))?;
        quantity_map(r.get_mut("requests"), &format!("{field}.requests"))?;
    }
    Ok(())
}

/// A `resourceFieldRef`'s divisor is a non-optional quantity: absent, it is stored as "0".
fn resource_field_ref(r: Option<&mut Value>, field: &str) -> Result<(), (String, QuantityError)> {
    if let Some(r) = r.filter(|r| r.is_object()) {
        match r.get_mut("divisor") {
            Some(d) if !d.is_null() => one_quantity(Some(d), &format!("{field}.divisor"))?,
            _ => r["divisor"] = json!("0"),
        }
    }
    Ok(())
}

fn pod_spec(spec: &mut Value) -> Result<(), (String, QuantityError)> {
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in each_item(spec.get_mut(list)) {
            requirements(c.get_mut("resources"), "resources")?;
            for e in each_item(c.get_mut("env")) {
                resource_field_ref(
                    at(e, &["valueFrom", "resourceFieldRef"]),
                    "valueFrom.resourceFieldRef",
                )?;
            }
        }
    }
    requirements(spec.get_mut("resources"), "resources")?;
    quantity_map(spec.get_mut("overhead"), "overhead")?;
    for v in each_item(spec.get_mut("volumes")) {
        one_quantity(at(v, &["emptyDir", "sizeLimit"]), "emptyDir.sizeLimit")?;
        for item in each_item(at(v, &["downwardAPI", "items"])) {
            resource_field_ref(item.get_mut("resourceFieldRef"), "resourceFieldRef")?;
        }
        for source in each_item(at(v, &["projected", "sources"])) {
            for item in each_item(at(source, &["downwardAPI", "items"])) {
                resource_field_ref(item.get_mut("resourceFieldRef"), "resourceFieldRef")?;
            }
        }
        requirements(
            at(
                v,
                &["ephemeral", "volumeClaimTemplate", "spec", "resources"],
            ),
            "ephemeral.volumeClaimTemplate.spec.resources",
        )?;
    }
    Ok(())
}

fn metric_targets(list: Option<&mut Value>, target: &str) -> Result<(), (String, QuantityError)> {
    for m in each_item(list) {
        for source in [
            "object",
            "pods",
            "resource",
            "containerResource",
            "external",
        ] {
            if let Some(t) = at(m, &[source, target]) {
                for f in ["value", "averageValue"] {
                    one_quantity(t.get_mut(f), &format!("{source}.{target}.{f}"))?;
                }
            }
        }
    }
    Ok(())
}

/// Puts every quantity of a built-in object into canonical form, as the API server does on
/// every create, update, patch and apply. Custom resources are left alone (their schemas hold
/// plain strings). Returns the field and error of the first unreadable quantity.
pub fn canonicalize(
    group: &str,
    plural: &str,
    obj: &mut Value,
) -> Result<(), (String, QuantityError)> {
    if let Some(path) = pod_spec_paths(group, plural)
        && let Some(spec) = at(obj, path)
    {
        pod_spec(spec)?;
    }
    match (group, plural) {
        ("apps", "statefulsets") => {
            for t in each_item(at(obj, &["spec", "volumeClaimTemplates"])) {
                requirements(at(t, &["spec", "resources"]), "spec.resources")?;
            }
        }
        ("autoscaling", "horizontalpodautoscalers") => {
            metric_targets(at(obj, &["spec", "metrics"]), "target")?;
            metric_targets(at(obj, &["status", "currentMetrics"]), "current")?;
        }
        ("", "nodes") => {
            quantity_map(at(obj, &["status", "capacity"]), "status.capacity")?;
            quantity_map(at(obj, &["status", "allocatable"]), "status.allocatable")?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        canonical(s).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn values_a_real_api_server_stores() {
        // The pairs issue 8 measured on real API servers.
        assert_eq!(c("2000m"), "2");
        assert_eq!(c("1024Mi"), "1Gi");
        assert_eq!(c("1000Mi"), "1000Mi");
        // apimachinery's own tests (TestQuantityString, TestQuantityParseEmit).
        for (input, stored) in [
            ("0.5", "500m"),
            ("1e3", "1e3"),
            ("1.5", "1500m"),
            ("1000M", "1G"),
            ("1.08", "1080m"),
            ("1080000000n", "1080m"),
            ("0.001T", "1G"),
            ("1000u", "1m"),
            ("307200Ki", "300Mi"),
            ("1025024Mi", "1001Gi"),
            ("1024Gi", "1Ti"),
            ("5000m", "5"),
            (".001e12", "1e9"),
            ("0.001e0", "1e-3"),
            ("1000e-12", "1e-9"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("00", "0"),
            ("0Mi", "0"),
        ] {
            assert_eq!(c(input), stored, "{input}");
        }
    }

    #[test]
    fn canonical_inputs_are_kept_as_written() {
        for s in [
            "1Gi", "300Mi", "6Ki", "1025", "500m", "80m", "3k", "1e9", "80e-3", "300e6", "1n",
            "1080u", "100", "0", "1Ki", "1234567M",
        ] {
            assert_eq!(c(s), s);
        }
        // The fast path keeps these spellings although a canonicaliser would change them.
        assert_eq!(c("+1"), "+1");
        assert_eq!(c("1E3"), "1E3");
        assert_eq!(c("100.035k"), "100.035k");
        assert_eq!(
            c("1.5k"),
            "1500",
            "a scale that is no multiple of 3 is rewritten"
        );
    }

    #[test]
    fn binary_values_switch_to_decimal_below_1024_or_with_a_fraction() {
        assert_eq!(c("0.5Gi"), "512Mi");
        assert_eq!(c("0.5Mi"), "512Ki");
        assert_eq!(c("1.5Ki"), "1536");
        assert_eq!(c("1.0001Ki"), "1024102400u");
        assert_eq!(c("0.5Ki"), "512");
        assert_eq!(c("8Ki"), "8Ki");
        assert_eq!(c("9Ei"), "9223372036854775807", "capped at 2^63-1");
    }

    #[test]
    fn decimal_values_round_to_nano_away_from_zero() {
        assert_eq!(c("3.001n"), "4n");
        assert_eq!(c("0.9n"), "1n");
        assert_eq!(c("0.00000012345"), "124n");
        assert_eq!(c("1.1E-9"), "2e-9");
        assert_eq!(c("-1.5"), "-1500m");
        assert_eq!(c("1000"), "1k");
        assert_eq!(c("12E"), "12E");
        assert_eq!(c("1.2e3"), "1200");
        assert_eq!(c("1.3E+6"), "1300e3");
        assert_eq!(c("1.0"), "1");
        assert_eq!(c("1."), "1.", "the fast path keeps it");
    }

    #[test]
    fn malformed_quantities_are_the_parsers_errors() {
        for s in ["1.1.M", "1+1.0M", "aoeu", "", " 1", "0.1am"] {
            assert_eq!(canonical(s), Err(QuantityError::Format), "{s:?}");
        }
        for s in ["0.1mi", ".5i", "1i", "1K", "-3.01e-"] {
            assert_eq!(canonical(s), Err(QuantityError::Suffix), "{s:?}");
        }
    }

    #[test]
    fn json_numbers_and_padding_are_read_as_the_decoder_reads_them() {
        assert_eq!(canonical_value(&json!(2)), Ok(Some(json!("2"))));
        assert_eq!(canonical_value(&json!(0.5)), Ok(Some(json!("500m"))));
        assert_eq!(canonical_value(&json!(" 1 ")), Ok(Some(json!("1"))));
        assert_eq!(canonical_value(&json!(true)), Err(QuantityError::Format));
    }

    #[test]
    fn only_quantity_fields_of_built_in_kinds_change() {
        let mut dep = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "istio-proxy", "resources": {"requests": {"cpu": "2000m", "memory": "1024Mi"}, "limits": {"cpu": 2}},
                            "env": [{"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                                    {"name": "LIMIT", "value": "2000m"}]}],
            "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1024Mi"}}]}}}});
        canonicalize("apps", "deployments", &mut dep).unwrap_or_else(|e| panic!("{e:?}"));
        let c0 = &dep["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c0["resources"],
            json!({"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "2"}})
        );
        assert_eq!(
            c0["env"][0]["valueFrom"]["resourceFieldRef"]["divisor"],
            "0"
        );
        assert_eq!(c0["env"][1]["value"], "2000m", "plain strings stay");
        assert_eq!(
            dep["spec"]["template"]["spec"]["volumes"][0]["emptyDir"]["sizeLimit"],
            "1Gi"
        );

        let mut cr = json!({"spec": {"resources": {"requests": {"cpu": "2000m"}}}});
        canonicalize("networking.istio.io", "gateways", &mut cr)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(cr["spec"]["resources"]["requests"]["cpu"], "2000m");

        let mut hpa = json!({"spec": {"metrics": [{"type": "Pods", "pods": {"target": {"type": "AverageValue", "averageValue": "1000m"}}}]}});
        canonicalize("autoscaling", "horizontalpodautoscalers", &mut hpa)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"],
            "1"
        );

        let mut bad = json!({"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "lots"}}}]}});
        assert_eq!(
            canonicalize("", "pods", &mut bad),
            Err(("resources.limits.cpu".into(), QuantityError::Format))
        );
    }
}
