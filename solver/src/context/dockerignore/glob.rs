//! The syntax check Docker runs on every pattern: Go's `filepath.Match(pattern, ".")` on Unix.
//!
//! Docker never matches with `filepath.Match`; it only asks it for its error, so a pattern is
//! rejected exactly when Go's glob grammar rejects it. Modern Go checks the whole pattern
//! whatever the name, so the check does not depend on a path and is done once, in `new()`.
//! Note what it does *not* check: a range's ends may be in any order (`[z-a]` passes here and
//! only fails later, in the regexp), and a `]` outside a class is an ordinary character.

/// Checks `pattern` against Go's glob grammar; the error says what is wrong.
pub(crate) fn check(pattern: &str) -> Result<(), &'static str> {
    let mut rest = pattern.as_bytes();
    while !rest.is_empty() {
        // Leading stars of a chunk never fail.
        while let Some((b'*', tail)) = rest.split_first() {
            rest = tail;
        }
        let end = chunk_end(rest);
        let (chunk, tail) = rest.split_at(end);
        check_chunk(chunk)?;
        rest = tail;
    }
    Ok(())
}

/// Where the chunk at the start of `pattern` stops: at the first `*` outside a `[...]` class.
fn chunk_end(pattern: &[u8]) -> usize {
    let mut in_class = false;
    let mut i = 0;
    while let Some(&byte) = pattern.get(i) {
        match byte {
            // An escape hides the next byte, even a `*` or `]`; a trailing `\` is
            // reported by `check_chunk`.
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_class = true,
            b']' => in_class = false,
            b'*' if !in_class => break,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Checks one star-free chunk the way `matchChunk` does while it walks the pattern.
fn check_chunk(mut chunk: &[u8]) -> Result<(), &'static str> {
    while let Some((&first, tail)) = chunk.split_first() {
        chunk = match first {
            b'[' => check_class(tail)?,
            b'\\' => match tail.split_first() {
                Some((_, after)) => after,
                None => return Err("trailing backslash"),
            },
            _ => tail,
        };
    }
    Ok(())
}

/// Checks a class body (after its `[`) and returns what follows its closing `]`.
fn check_class(body: &[u8]) -> Result<&[u8], &'static str> {
    let mut rest = match body.split_first() {
        Some((b'^', tail)) => tail,
        _ => body,
    };
    let mut ranges = 0;
    loop {
        // A `]` closes the class only once it holds something.
        if let Some((b']', tail)) = rest.split_first().filter(|_| ranges > 0) {
            return Ok(tail);
        }
        rest = class_char(rest)?;
        if let Some((b'-', tail)) = rest.split_first() {
            rest = class_char(tail)?;
        }
        ranges += 1;
    }
}

/// One (possibly escaped) character of a class, as Go's `getEsc`; the class must go on after it.
fn class_char(text: &[u8]) -> Result<&[u8], &'static str> {
    let text = match text.split_first() {
        None => return Err("unterminated character class"),
        Some((b'-', _)) => return Err("unexpected `-` in character class"),
        Some((b']', _)) => return Err("unexpected `]` in character class"),
        Some((b'\\', [])) => return Err("unterminated character class"),
        Some((b'\\', tail)) => tail,
        Some(_) => text,
    };
    let width = utf8_width(text).ok_or("invalid UTF-8 in character class")?;
    match text.get(width..) {
        Some(rest) if !rest.is_empty() => Ok(rest),
        _ => Err("unterminated character class"),
    }
}

/// Byte length of the UTF-8 character that starts `text`, if one does.
fn utf8_width(text: &[u8]) -> Option<usize> {
    (1..=4.min(text.len())).find(|&n| {
        text.get(..n)
            .is_some_and(|s| std::str::from_utf8(s).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_what_go_accepts() {
        for pattern in [
            "abc",
            "*",
            "a*b?c",
            "[a-c]",
            "[^a]",
            "[\\]a]",
            "[\\-]",
            "[x\\-]",
            "a]",
            "]",
            "[z-a]",
            "[Local-Only]",
            "[*]",
            "[a*]b*",
            "\\*",
            "a\\",
            "[☺]",
            "*[a-ζ]",
        ] {
            let got = check(pattern);
            if pattern == "a\\" {
                assert!(got.is_err(), "{pattern:?}");
            } else {
                assert_eq!(got, Ok(()), "{pattern:?}");
            }
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for pattern in [
            "[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "a*[", "*\\",
            "[\\", "[a\\", "x*[]*",
        ] {
            assert!(check(pattern).is_err(), "{pattern:?}");
        }
    }
}
