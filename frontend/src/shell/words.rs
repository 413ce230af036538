//! Field splitting for `process_words`: how expanded text becomes separate words.
//!
//! Only the results of unquoted `$` expansions and plain characters split on white space;
//! quoted strings and escaped characters always stay inside the current word.

use super::chars::is_space;

/// Collects words as the lexer emits text (BuildKit's `wordsStruct`).
#[derive(Debug, Default)]
pub(super) struct Words {
    word: String,
    words: Vec<String>,
    /// Set once anything (even an empty quoted string) has been added to the current word.
    in_word: bool,
}

impl Words {
    /// A character that splits the word when it is white space.
    pub(super) fn add_char(&mut self, ch: char) {
        if is_space(ch) {
            // An empty word that was only "started" (by `""`) is not emitted and stays open,
            // exactly as BuildKit does: `"" a` gives one word, `a`.
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    /// A character that never splits (it was escaped).
    pub(super) fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    /// Unquoted expansion output: split on white space.
    pub(super) fn add_str(&mut self, text: &str) {
        text.chars().for_each(|ch| self.add_char(ch));
    }

    /// Quoted text: kept whole.
    pub(super) fn add_raw_str(&mut self, text: &str) {
        self.word.push_str(text);
        self.in_word = true;
    }

    /// The words so far, the current one included if it is not empty.
    pub(super) fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_plain_text_but_not_raw_text() {
        let mut w = Words::default();
        w.add_str("  ab c ");
        w.add_raw_str(" d ");
        w.add_char('e');
        assert_eq!(w.finish(), ["ab", "c", " d e"]);
    }

    #[test]
    fn empty_quoted_string_makes_no_word() {
        let mut w = Words::default();
        w.add_raw_str("");
        w.add_char(' ');
        w.add_char('a');
        assert_eq!(w.finish(), ["a"]);
        assert!(Words::default().finish().is_empty());
    }
}
