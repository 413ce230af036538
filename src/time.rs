//! `SOURCE_DATE_EPOCH`, and the image-config times kiln-llb formats.

/// The build's `SOURCE_DATE_EPOCH`: a `--build-arg SOURCE_DATE_EPOCH=…` (how buildx passes
/// it; the last one wins), else the environment's. An error names a malformed value.
pub(crate) fn source_date_epoch(build_args: &[String]) -> anyhow::Result<Option<i64>> {
    let from_args = build_args
        .iter()
        .rev()
        .find_map(|a| match a.split_once('=') {
            Some(("SOURCE_DATE_EPOCH", v)) => Some(Some(v.to_owned())),
            // A bare `--build-arg SOURCE_DATE_EPOCH` takes the environment's value.
            None if a == "SOURCE_DATE_EPOCH" => Some(std::env::var("SOURCE_DATE_EPOCH").ok()),
            _ => None,
        });
    let value = match from_args {
        Some(v) => v,
        None => std::env::var("SOURCE_DATE_EPOCH").ok(),
    };
    parse_epoch(value.as_deref())
}

fn parse_epoch(value: Option<&str>) -> anyhow::Result<Option<i64>> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => v.parse::<i64>().map(Some).map_err(|_| {
            anyhow::anyhow!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds since 1970")
        }),
        _ => Ok(None),
    }
}

pub(crate) use kiln_llb::time::{now, rfc3339};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_arg_epoch_wins_and_bad_values_are_named() {
        let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            source_date_epoch(&args(&[
                "A=1",
                "SOURCE_DATE_EPOCH=5",
                "SOURCE_DATE_EPOCH=0"
            ]))
            .unwrap(),
            Some(0)
        );
        assert_eq!(parse_epoch(Some(" 42 ")).unwrap(), Some(42));
        assert_eq!(parse_epoch(Some("")).unwrap(), None);
        let err = parse_epoch(Some("soon")).unwrap_err().to_string();
        assert!(err.contains("\"soon\""), "{err}");
    }
}
