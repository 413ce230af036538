//! A character cursor over the word, standing in for Go's `text/scanner` as BuildKit uses it.
//!
//! It keeps byte offsets (for error positions) and can never split a UTF-8 character, since
//! it only ever steps by whole `char`s.

/// Go's `text/scanner` silently drops a byte-order mark at the very start of its input, so
/// BuildKit never sees one there; we drop it too.
const BOM: char = '\u{feff}';

/// Reads a word one `char` at a time.
#[derive(Debug, Clone)]
pub(super) struct Scanner<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// Starts at the beginning of `src`, past a leading byte-order mark.
    pub(super) fn new(src: &'a str) -> Self {
        let pos = if src.starts_with(BOM) {
            BOM.len_utf8()
        } else {
            0
        };
        Self { src, pos }
    }

    /// The next character, without consuming it; `None` at the end.
    pub(super) fn peek(&self) -> Option<char> {
        self.src
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
    }

    /// Consumes and returns the next character; `None` at the end (and forever after).
    pub(super) fn next_char(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    /// The byte offset of the next character.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }
}

/// `src` without a leading byte-order mark, as a fresh Go scanner would read it.
pub(super) fn skip_bom(src: &str) -> &str {
    src.strip_prefix(BOM).unwrap_or(src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_by_char_and_tracks_bytes() {
        let mut s = Scanner::new("a한b");
        assert_eq!(s.peek(), Some('a'));
        assert_eq!(s.next_char(), Some('a'));
        assert_eq!(s.pos(), 1);
        assert_eq!(s.next_char(), Some('한'));
        assert_eq!(s.pos(), 4);
        assert_eq!(s.next_char(), Some('b'));
        assert_eq!(s.next_char(), None);
        assert_eq!(s.next_char(), None);
        assert_eq!(s.peek(), None);
    }

    #[test]
    fn leading_bom_is_skipped_only_at_the_start() {
        let mut s = Scanner::new("\u{feff}x\u{feff}");
        assert_eq!(s.next_char(), Some('x'));
        assert_eq!(s.next_char(), Some('\u{feff}'));
        assert_eq!(skip_bom("\u{feff}\u{feff}"), "\u{feff}");
    }
}
