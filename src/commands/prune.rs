//! `kiln prune`: removes what no tagged image (nor kept build cache) needs. The policy and
//! the removal live in `kiln_solver::gc`; this parses the flags, asks, and reports.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use kiln_solver::gc::PruneOptions;

use crate::cli::PruneArgs;
use crate::commands::du::{existing_store, warn};
use crate::commands::print_stdout;
use crate::units::human_size;

pub(crate) fn run(args: &PruneArgs) -> Result<ExitCode> {
    let keep_storage = args
        .keep_storage
        .as_deref()
        .map(parse_size)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--keep-storage: {e}"))?;
    let until = parse_filters(&args.filters).map_err(|e| anyhow::anyhow!("--filter: {e}"))?;
    let store = existing_store(&args.store)?;
    if !args.force && !confirm(args)? {
        return Ok(ExitCode::FAILURE);
    }
    let opts = PruneOptions {
        all: args.all,
        keep_storage,
        until,
        cache_mounts: args.cache_mounts,
        ..PruneOptions::default()
    };
    let report = kiln_solver::gc::prune(&store, &opts, || {
        warn("waiting for running builds to finish (they hold the store lock)");
    })
    .with_context(|| format!("pruning the store at {}", store.root().display()))?;
    // Step cgroups, runc bundles and sandbox temp dirs dead kiln processes left outside it.
    let outside = kiln_solver::reclaim::outside_store();
    for w in &report.warnings {
        warn(w);
    }
    let mut out = String::new();
    for (what, n) in [
        ("build cache entries", report.cache_entries),
        ("blobs", report.blobs),
        ("snapshots", report.snapshots),
        ("cache mounts", report.cache_mounts),
        ("temp files", report.temps + outside),
    ] {
        out.push_str(&format!("Deleted {what}: {n}\n"));
    }
    out.push_str(&format!(
        "Kept build cache entries: {}\n\nTotal reclaimed space: {} ({} bytes)\n",
        report.kept_cache,
        human_size(report.freed),
        report.freed
    ));
    print_stdout(&out)?;
    if report.errors.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for e in &report.errors {
        crate::stderr::line(&format!("error: {e}"));
    }
    Ok(ExitCode::FAILURE)
}

/// Asks on the terminal; refuses when there is none to ask on.
fn confirm(args: &PruneArgs) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("kiln prune asks for confirmation, but standard input is not a terminal: pass -f");
    }
    let mut what = vec!["blobs no tagged image or build cache entry needs"];
    if args.all {
        what.push("all build cache tagged images do not need");
    } else if args.keep_storage.is_some() {
        what.push("the oldest build cache beyond --keep-storage");
    }
    what.push("snapshots of removed layers");
    if args.cache_mounts {
        what.push("every RUN --mount=type=cache directory");
    }
    // The question goes where the answer comes from: the user.
    crate::stderr::write(&format!(
        "WARNING! This will remove:\n  - {}\nAre you sure you want to continue? [y/N] ",
        what.join("\n  - ")
    ));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// `--filter until=DURATION` (the only filter); the last one given wins.
fn parse_filters(filters: &[String]) -> Result<Option<Duration>, String> {
    let mut until = None;
    for f in filters {
        match f.split_once('=') {
            Some(("until", value)) => until = Some(parse_duration(value)?),
            _ => {
                return Err(format!(
                    "{f:?}: the only filter is until=DURATION (e.g. until=24h)"
                ));
            }
        }
    }
    Ok(until)
}

/// A size: a number (decimals allowed) and a unit. kB, MB, GB, TB are powers of 1000 (as
/// `kiln du` prints them); KiB, MiB, GiB, TiB powers of 1024; no unit or B means bytes.
/// Case does not matter.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 500MB, 1.5GiB)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000_u64.pow(2),
        "g" | "gb" => 1000_u64.pow(3),
        "t" | "tb" => 1000_u64.pow(4),
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use B, kB, MB, GB, TB or KiB, MiB, GiB, TiB"
            ));
        }
    };
    #[allow(clippy::cast_precision_loss)]
    let bytes = value * multiplier as f64;
    #[allow(clippy::cast_precision_loss)]
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{text:?} is too large"));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes.round() as u64)
}

/// A duration as Go writes them, plus days and weeks: `90s`, `15m`, `24h`, `1h30m`, `7d`,
/// `1.5h`, `2w`. Units: ms, s, m, h, d, w.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (e.g. 24h, 90m, 7d, 1h30m)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?}: a number needs a unit (ms, s, m, h, d, w)"))?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            _ => {
                return Err(format!(
                    "unknown unit {unit:?} in {text:?}: use ms, s, m, h, d or w"
                ));
            }
        };
        total += value * seconds;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1234"), Ok(1234));
        assert_eq!(parse_size("12b"), Ok(12));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("500mb"), Ok(500_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2k"), Ok(2000));
        assert_eq!(parse_size("2KiB"), Ok(2048));
        assert_eq!(parse_size(" 3 TB "), Ok(3_000_000_000_000));
        assert_eq!(parse_size("1Ti"), Ok(1 << 40));
        for bad in [
            "",
            "MB",
            "-1MB",
            "1.2.3GB",
            "10XB",
            "1e30GB",
            "99999999999999999999TB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_size("10XB").unwrap_err().contains("\"xb\""));
    }

    #[test]
    fn durations() {
        let secs = |s: u64| Ok(Duration::from_secs(s));
        assert_eq!(parse_duration("24h"), secs(86_400));
        assert_eq!(parse_duration("90m"), secs(5400));
        assert_eq!(parse_duration("1h30m"), secs(5400));
        assert_eq!(parse_duration("45s"), secs(45));
        assert_eq!(parse_duration("7d"), secs(604_800));
        assert_eq!(parse_duration("2w"), secs(1_209_600));
        assert_eq!(parse_duration("1.5h"), secs(5400));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), secs(0));
        for bad in ["", "24", "h", "1y", "1h30", "-1h", "1..5h", "1 h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn filters() {
        assert_eq!(parse_filters(&[]), Ok(None));
        assert_eq!(
            parse_filters(&["until=24h".into()]),
            Ok(Some(Duration::from_secs(86_400)))
        );
        let err = parse_filters(&["label=x".into()]).unwrap_err();
        assert!(err.contains("until=DURATION"), "{err}");
        assert!(parse_filters(&["until=soon".into()]).is_err());
    }
}
