//! "Did you mean …?" for hints: the closest candidate by edit distance, when it is close
//! enough to be a likely typo.

/// The candidate closest to `word` (case-insensitive), if at most two edits away and not
/// identical; ties go to the first candidate.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase();
    if word.is_empty() {
        return None;
    }
    let mut best: Option<(usize, &'a str)> = None;
    for &c in candidates {
        let d = distance(&word, &c.to_lowercase());
        if d == 0 {
            return None;
        }
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    // Two edits on a two-letter word is a different word, not a typo.
    let limit = 2.min(word.chars().count().saturating_sub(1)).max(1);
    best.filter(|(d, _)| *d <= limit).map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_only() {
        assert_eq!(closest("form", &["chown", "from"]), Some("from"));
        assert_eq!(closest("RUNN", &["run", "cmd"]), Some("run"));
        assert_eq!(closest("boo", &["chown", "from"]), None);
        assert_eq!(closest("from", &["from"]), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
