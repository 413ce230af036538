//! `created_by` strings exactly as BuildKit writes them (Go's `%q` and `%v` renderings).

use crate::parser::go_quote;

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub(crate) fn quoted_list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", q.join(" "))
}

/// Go's `%v` of a `[]string`: `[a b]`.
pub(crate) fn plain_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Go's `%v` of a `map[nat.Port]struct{}`: `map[443/tcp:{} 80/tcp:{}]` (keys sorted).
pub(crate) fn port_map<'a>(ports: impl Iterator<Item = &'a String>) -> String {
    let mut keys: Vec<&String> = ports.collect();
    keys.sort();
    keys.dedup();
    let items: Vec<String> = keys.iter().map(|k| format!("{k}:{{}}")).collect();
    format!("map[{}]", items.join(" "))
}

/// Go's `time.Duration.String()`.
pub(crate) fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_owned();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let body = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", frac(u, 1_000))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u, 1_000_000))
    } else {
        let total_secs = u / 1_000_000_000;
        let sub = u % 1_000_000_000;
        let (h, m, s) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
        let secs = frac(s * 1_000_000_000 + sub, 1_000_000_000);
        match (h, m) {
            (0, 0) => format!("{secs}s"),
            (0, m) => format!("{m}m{secs}s"),
            (h, m) => format!("{h}h{m}m{secs}s"),
        }
    };
    if neg { format!("-{body}") } else { body }
}

/// `v / unit` with the fraction written without trailing zeros (`1.5`, `2`).
fn frac(v: u64, unit: u64) -> String {
    let whole = v / unit;
    let rest = v % unit;
    if rest == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Go's `%q` of an int: a quoted rune (`'\x03'`, `'A'`).
pub(crate) fn go_quote_rune(v: i64) -> String {
    match u32::try_from(v).ok().and_then(char::from_u32) {
        Some(c) => {
            let q = go_quote(&c.to_string());
            let inner = &q[1..q.len() - 1];
            let inner = if inner == "\\\"" {
                "\""
            } else if c == '\'' {
                "\\'"
            } else {
                inner
            };
            format!("'{inner}'")
        }
        None => "'\u{fffd}'".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(go_duration(5_000_000_000), "5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(100_000_000), "100ms");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500), "1.5µs");
    }

    #[test]
    fn go_renderings() {
        assert_eq!(
            quoted_list(&["/bin/sh".into(), "-c".into()]),
            r#"["/bin/sh" "-c"]"#
        );
        assert_eq!(plain_list(&["/a".into(), "/b".into()]), "[/a /b]");
        let ports = ["80/tcp".to_owned(), "443/tcp".to_owned()];
        assert_eq!(port_map(ports.iter()), "map[443/tcp:{} 80/tcp:{}]");
        assert_eq!(go_quote_rune(3), r"'\x03'");
        assert_eq!(go_quote_rune(65), "'A'");
    }
}
