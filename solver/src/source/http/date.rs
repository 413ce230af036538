//! HTTP dates (`Last-Modified`), which give a downloaded file its mtime.

/// Seconds since the epoch of an HTTP date, in the three forms Go's `http.ParseTime` takes:
/// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT` and
/// `Sun Nov  6 08:49:37 1994`.
pub(super) fn parse_http_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let words: Vec<&str> = s.split_whitespace().collect();
    let (day, month, year, time) = match words.as_slice() {
        [_, day, month, year, time, "GMT"] if s.contains(',') => {
            (day.parse().ok()?, *month, year.parse().ok()?, *time)
        }
        [_, date, time, "GMT"] if s.contains(',') => {
            let mut parts = date.split('-');
            let day = parts.next()?.parse().ok()?;
            let month = parts.next()?;
            let yy: i64 = parts.next()?.parse().ok()?;
            // Go's two-digit years: 69–99 are 19xx, the rest 20xx.
            let year = if yy >= 69 { 1900 + yy } else { 2000 + yy };
            (day, month, year, *time)
        }
        [_, month, day, time, year] => (day.parse().ok()?, *month, year.parse().ok()?, *time),
        _ => return None,
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some()
        || !(1..=31).contains(&day)
        || !(0..24).contains(&h)
        || !(0..60).contains(&m)
        || !(0..61).contains(&sec)
    {
        return None;
    }
    Some(kiln_llb::time::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_in_all_three_forms() {
        let want = Some(784_111_777);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600)
        );
        for bad in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }
}
