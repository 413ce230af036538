//! Instruction flags (`--from=build`, `--link`, `--mount=…`), BuildKit's `BFlags`: each
//! instruction declares the flags it accepts, then the node's flag words are checked against
//! them. Bool flags take `--x`, `--x=true|false`; string flags need `=value`; string-slice
//! flags may repeat. A flag counts as used even when set to its default.

use std::collections::BTreeMap;

/// Expands one word (variables, quotes) at dispatch time; the error is the expander's message.
pub type Expander<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// What kind of value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--x`, `--x=true`, `--x=false`.
    Bool,
    /// `--x=value`, at most once.
    String,
    /// `--x=value`, any number of times.
    Strings,
}

#[derive(Debug, Clone)]
struct Flag {
    kind: FlagKind,
    value: String,
    values: Vec<String>,
}

/// Why the flag words of an instruction were rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError {
    /// BuildKit's message, e.g. `unknown flag: --boo`.
    pub message: String,
    /// The flag word as written, so the error can point at it (empty for setup errors).
    pub word: String,
    /// The closest accepted flag name, for an unknown flag.
    pub suggestion: Option<String>,
}

impl FlagError {
    fn new(message: String, word: &str) -> Self {
        FlagError {
            message,
            word: word.to_owned(),
            suggestion: None,
        }
    }
}

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The flags one instruction accepts, and the values its flag words gave them.
#[derive(Debug, Clone, Default)]
pub struct BFlags {
    args: Vec<String>,
    defs: BTreeMap<String, Flag>,
    used: Vec<String>,
    setup_error: Option<String>,
}

impl BFlags {
    /// Flags to be checked against `args`, the node's flag words in order.
    pub fn new(args: Vec<String>) -> Self {
        BFlags {
            args,
            ..BFlags::default()
        }
    }

    /// Declares a bool flag.
    pub fn add_bool(&mut self, name: &str, default: bool) {
        let value = if default { "true" } else { "false" };
        self.add(name, FlagKind::Bool, value);
    }

    /// Declares a string flag.
    pub fn add_string(&mut self, name: &str, default: &str) {
        self.add(name, FlagKind::String, default);
    }

    /// Declares a repeatable string flag.
    pub fn add_strings(&mut self, name: &str) {
        self.add(name, FlagKind::Strings, "");
    }

    // A second declaration is a programming error, reported by `parse` like BuildKit does,
    // so that declaring flags stays one line each.
    fn add(&mut self, name: &str, kind: FlagKind, default: &str) {
        if self.defs.contains_key(name) {
            self.setup_error = Some(format!("Duplicate flag defined: {name}"));
            return;
        }
        let flag = Flag {
            kind,
            value: default.to_owned(),
            values: Vec::new(),
        };
        self.defs.insert(name.to_owned(), flag);
    }

    /// The declared flag names, sorted.
    pub fn accepted(&self) -> Vec<String> {
        self.defs.keys().cloned().collect()
    }

    /// Checks the flag words, without expansion.
    pub fn parse(&mut self) -> Result<(), FlagError> {
        self.parse_with(None)
    }

    /// Checks the flag words; string values go through `expander` when one is given.
    pub fn parse_with(&mut self, expander: Option<Expander<'_>>) -> Result<(), FlagError> {
        if let Some(e) = &self.setup_error {
            return Err(FlagError::new(format!("error setting up flags: {e}"), ""));
        }
        let args = std::mem::take(&mut self.args);
        let result = args
            .iter()
            .take_while(|a| a.as_str() != "--")
            .try_for_each(|a| self.parse_one(a, expander));
        self.args = args;
        result
    }

    fn parse_one(&mut self, word: &str, expander: Option<Expander<'_>>) -> Result<(), FlagError> {
        let Some(body) = word.strip_prefix("--") else {
            return Err(FlagError::new(
                format!("arg should start with -- : {word}"),
                word,
            ));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let flag_name = &word[..2 + name.len()];
        let Some(flag) = self.defs.get_mut(name) else {
            let mut err = FlagError::new(format!("unknown flag: {flag_name}"), word);
            let names: Vec<&str> = self.defs.keys().map(String::as_str).collect();
            err.suggestion = super::suggest::closest(name, &names).map(str::to_owned);
            return Err(err);
        };
        let seen = self.used.iter().any(|u| u == name);
        if seen && flag.kind != FlagKind::Strings {
            return Err(FlagError::new(
                format!("duplicate flag specified: {flag_name}"),
                word,
            ));
        }
        if !seen {
            self.used.push(name.to_owned());
        }
        let missing = || FlagError::new(format!("missing a value on flag: {flag_name}"), word);
        match flag.kind {
            FlagKind::Bool => {
                // `--x=` is not `--x`: an explicit `=` needs a value.
                if value == Some("") {
                    return Err(missing());
                }
                let v = value.unwrap_or("");
                flag.value = match v.to_ascii_lowercase().as_str() {
                    "" | "true" => "true".to_owned(),
                    "false" => "false".to_owned(),
                    _ => {
                        return Err(FlagError::new(
                            format!("expecting boolean value for flag {flag_name}, not: {v}"),
                            word,
                        ));
                    }
                };
            }
            FlagKind::String | FlagKind::Strings => {
                let v = value.ok_or_else(missing)?;
                let v = match expander {
                    Some(expand) => expand(v).map_err(|e| FlagError::new(e, word))?,
                    None => v.to_owned(),
                };
                if flag.kind == FlagKind::String {
                    flag.value = v;
                } else {
                    flag.values.push(v);
                }
            }
        }
        Ok(())
    }

    /// A bool flag's value (false when undeclared).
    pub fn bool(&self, name: &str) -> bool {
        self.defs.get(name).is_some_and(|f| f.value == "true")
    }

    /// A string flag's value, or its default (empty when undeclared).
    pub fn string(&self, name: &str) -> &str {
        self.defs.get(name).map_or("", |f| f.value.as_str())
    }

    /// A string flag's value, `None` when empty (BuildKit treats `--x=` as unset).
    pub fn opt_string(&self, name: &str) -> Option<String> {
        Some(self.string(name))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// Every value of a repeatable flag, in order.
    pub fn strings(&self, name: &str) -> &[String] {
        self.defs.get(name).map_or(&[], |f| f.values.as_slice())
    }

    /// Whether the flag words set this flag.
    pub fn is_used(&self, name: &str) -> bool {
        self.used.iter().any(|u| u == name)
    }

    /// The names of the flags that were set, in order of first use.
    pub fn used(&self) -> &[String] {
        &self.used
    }

    /// The flag word that set `name` (its first occurrence), for pointing at it.
    pub fn word_for(&self, name: &str) -> Option<&str> {
        self.args.iter().map(String::as_str).find(|a| {
            a.strip_prefix("--")
                .is_some_and(|b| b.split_once('=').map_or(b, |(n, _)| n) == name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> BFlags {
        BFlags::new(args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn bool_forms() {
        for (arg, want) in [("--b", true), ("--b=true", true), ("--b=FALSE", false)] {
            let mut f = flags(&[arg]);
            f.add_bool("b", false);
            f.parse().unwrap();
            assert_eq!(f.bool("b"), want, "{arg}");
        }
        let mut f = flags(&["--b="]);
        f.add_bool("b", false);
        assert_eq!(
            f.parse().unwrap_err().message,
            "missing a value on flag: --b"
        );
        let mut f = flags(&["--b=yes"]);
        f.add_bool("b", false);
        assert_eq!(
            f.parse().unwrap_err().message,
            "expecting boolean value for flag --b, not: yes"
        );
    }

    #[test]
    fn string_needs_value_and_once() {
        let mut f = flags(&["--s"]);
        f.add_string("s", "x");
        assert_eq!(
            f.parse().unwrap_err().message,
            "missing a value on flag: --s"
        );
        let mut f = flags(&["--s=a", "--s=b"]);
        f.add_string("s", "");
        assert_eq!(
            f.parse().unwrap_err().message,
            "duplicate flag specified: --s"
        );
    }

    #[test]
    fn strings_repeat_and_expand() {
        let mut f = flags(&["--m=a", "--m=$B", "--", "--m=c"]);
        f.add_strings("m");
        let up = |s: &str| Ok(s.replace("$B", "bee"));
        f.parse_with(Some(&up)).unwrap();
        assert_eq!(f.strings("m"), ["a", "bee"]);
        assert_eq!(f.used(), ["m"]);
    }

    #[test]
    fn unknown_flag_suggests() {
        let mut f = flags(&["--form=x"]);
        f.add_string("from", "");
        f.add_string("chown", "");
        let e = f.parse().unwrap_err();
        assert_eq!(e.message, "unknown flag: --form");
        assert_eq!(e.suggestion.as_deref(), Some("from"));
        assert_eq!(e.word, "--form=x");
    }

    #[test]
    fn duplicate_definition_reported_at_parse() {
        let mut f = flags(&[]);
        f.add_bool("x", false);
        f.add_string("x", "");
        assert_eq!(
            f.parse().unwrap_err().message,
            "error setting up flags: Duplicate flag defined: x"
        );
    }
}
