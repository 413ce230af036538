//! Shell-word expansion: BuildKit's `frontend/dockerfile/shell` lexer, ported behaviour for
//! behaviour.
//!
//! It removes quotes, applies the Dockerfile escape character, expands `$VAR`, `${VAR}` and the
//! `${VAR<op>word}` forms BuildKit supports, and optionally splits the result into fields. It
//! knows nothing of instructions or ARG/ENV scoping: callers hand it one word and an [`Env`].
//! Where kiln departs from BuildKit (nesting limit, per-level word buffers) the code says so.

mod chars;
mod env;
mod error;
mod lexer;
mod pattern;
mod scanner;
mod words;

use std::collections::BTreeSet;

pub use env::{EmptyEnv, Env, EnvList};
pub use error::ShellError;

/// A word expander with BuildKit's `Lex` options; build one with [`Lexer::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character (`\`, or `` ` `` after an `escape` directive).
    pub escape: char,
    /// Keep quote characters in the output instead of removing them.
    pub raw_quotes: bool,
    /// Keep escape characters in the output instead of removing them.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written (`$X`, `${X:-w}`) instead of expanding.
    pub skip_unset_env: bool,
    /// Treat `'` and `"` as ordinary characters.
    pub skip_process_quotes: bool,
}

/// Everything one expansion produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded word.
    pub result: String,
    /// The expanded word split into fields (see [`Lexer::process_words`]).
    pub words: Vec<String>,
    /// Names referenced and set (even if empty).
    pub matched: BTreeSet<String>,
    /// Names referenced but unset.
    pub unmatched: BTreeSet<String>,
}

impl Default for Lexer {
    fn default() -> Self {
        Self::new('\\')
    }
}

impl Lexer {
    /// A lexer with the given escape character and every option off.
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
            skip_process_quotes: false,
        }
    }

    /// Expands `word` into one string (BuildKit's `ProcessWord`).
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ShellError> {
        lexer::expand(self, word, env).map(|e| e.result)
    }

    /// Expands `word` and splits it into fields (BuildKit's `ProcessWords`): text from unquoted
    /// expansions and plain characters splits on white space, quoted or escaped text does not.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        lexer::expand(self, word, env).map(|e| e.words)
    }

    /// Expands `word` and reports which variables it referenced, set or not (BuildKit's
    /// `ProcessWordWithMatches`, used for the `UndefinedVar` check and build-arg cache keys).
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> Result<Expansion, ShellError> {
        lexer::expand(self, word, env)
    }
}

#[cfg(test)]
mod tests;
