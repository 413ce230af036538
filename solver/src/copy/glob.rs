//! Go's `filepath.Match` for one path component, which is how BuildKit matches each part of
//! a wildcard COPY source (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes).
//!
//! A malformed pattern matches nothing: BuildKit drops `filepath.Match`'s error.

/// Whether `name` (one path component) matches `pattern` (one component).
pub(super) fn matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name).unwrap_or(false)
}

/// `None` for a malformed pattern.
fn match_from(pattern: &[char], name: &[char]) -> Option<bool> {
    let Some((&first, rest)) = pattern.split_first() else {
        return Some(name.is_empty());
    };
    match first {
        '*' => {
            let rest = trim_stars(rest);
            for skip in 0..=name.len() {
                if match_from(rest, name.get(skip..)?)? {
                    return Some(true);
                }
            }
            Some(false)
        }
        '?' => match name.split_first() {
            Some((_, tail)) => match_from(rest, tail),
            None => check_syntax(rest).map(|()| false),
        },
        '[' => {
            let (hit, used) = class(pattern, name.first().copied())?;
            match (hit, name.split_first()) {
                (true, Some((_, tail))) => match_from(pattern.get(used..)?, tail),
                _ => check_syntax(pattern.get(used..)?).map(|()| false),
            }
        }
        '\\' => {
            let (&literal, rest) = rest.split_first()?;
            literal_then(literal, rest, name)
        }
        literal => literal_then(literal, rest, name),
    }
}

fn literal_then(literal: char, rest: &[char], name: &[char]) -> Option<bool> {
    match name.split_first() {
        Some((&c, tail)) if c == literal => match_from(rest, tail),
        _ => check_syntax(rest).map(|()| false),
    }
}

fn trim_stars(mut pattern: &[char]) -> &[char] {
    while let Some(rest) = pattern.strip_prefix(&['*']) {
        pattern = rest;
    }
    pattern
}

/// Go reports a malformed remainder even when the name already failed to match.
fn check_syntax(mut pattern: &[char]) -> Option<()> {
    while let Some((&first, rest)) = pattern.split_first() {
        pattern = match first {
            '\\' => rest.get(1..)?,
            '[' => pattern.get(class(pattern, None)?.1..)?,
            _ => rest,
        };
    }
    Some(())
}

/// Matches the class starting at `pattern[0] == '['` against `c`; returns the verdict and
/// how many pattern characters the class used, or `None` when it is malformed.
fn class(pattern: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let mut at = 1;
    let negated = pattern.get(at) == Some(&'^');
    if negated {
        at += 1;
    }
    let mut hit = false;
    let mut ranges = 0;
    loop {
        if pattern.get(at) == Some(&']') && ranges > 0 {
            at += 1;
            break;
        }
        let low = class_char(pattern, &mut at)?;
        let mut high = low;
        if pattern.get(at) == Some(&'-') {
            at += 1;
            high = class_char(pattern, &mut at)?;
        }
        if c.is_some_and(|c| low <= c && c <= high) {
            hit = true;
        }
        ranges += 1;
    }
    Some((c.is_some() && hit != negated, at))
}

fn class_char(pattern: &[char], at: &mut usize) -> Option<char> {
    let mut c = *pattern.get(*at)?;
    if c == '-' || c == ']' {
        return None;
    }
    if c == '\\' {
        *at += 1;
        c = *pattern.get(*at)?;
    }
    *at += 1;
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn go_match_table() {
        // Cases from Go's own filepath.Match tests that fit in one component.
        let cases = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*b*c*d*e*", "axbxcxdxe", true),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[]a]", "]", false),
            ("[-]", "-", false),
            ("[x-]", "x", false),
            ("\\", "a", false),
            ("[a-b-c]", "a", false),
            ("[", "a", false),
            ("*x", "xxx", true),
            (".*", ".hidden", true),
            ("*", ".hidden", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(matches(pattern, name), want, "{pattern:?} vs {name:?}");
        }
    }
}
