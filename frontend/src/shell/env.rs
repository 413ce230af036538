//! Where expansion looks variables up: the [`Env`] trait and its ready-made sources.
//!
//! The lexer only ever asks "is NAME set, and to what?"; how a stage keeps its ARG/ENV scope is
//! none of its business, so scoping code hands in whatever map or list it already has.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// A source of variables for expansion: `None` means unset, `Some("")` set but empty.
pub trait Env {
    /// Looks `name` up exactly as written in the word (case-sensitive, as on Linux).
    fn get(&self, name: &str) -> Option<String>;
}

/// An environment in which nothing is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmptyEnv;

impl Env for EmptyEnv {
    fn get(&self, _name: &str) -> Option<String> {
        None
    }
}

impl<S: BuildHasher> Env for HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

/// A list of `KEY=value` entries, as an image config's `Env` stores them.
///
/// Like BuildKit's `EnvsFromSlice`, the last definition of a key wins and an entry without `=`
/// (`"foo"`) sets `foo` to the empty string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList(pub Vec<String>);

impl Env for EnvList {
    fn get(&self, name: &str) -> Option<String> {
        self.0.iter().rev().find_map(|entry| {
            let (key, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
            (key == name).then(|| value.to_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> EnvList {
        EnvList(entries.iter().map(|e| (*e).to_owned()).collect())
    }

    #[test]
    fn env_list_last_definition_wins() {
        let env = list(&["foo=bar", "car=hat", "car=bike"]);
        assert_eq!(env.get("car").as_deref(), Some("bike"));
        assert_eq!(env.get("foo").as_deref(), Some("bar"));
        assert_eq!(env.get("nope"), None);
    }

    #[test]
    fn env_list_entry_without_equals_is_set_and_empty() {
        assert_eq!(list(&["foo"]).get("foo").as_deref(), Some(""));
        assert_eq!(list(&["foo="]).get("foo").as_deref(), Some(""));
        assert_eq!(list(&["a=b=c"]).get("a").as_deref(), Some("b=c"));
    }

    #[test]
    fn maps_and_empty_env() {
        let mut h = HashMap::new();
        h.insert("A".to_owned(), String::new());
        assert_eq!(Env::get(&h, "A").as_deref(), Some(""));
        assert_eq!(Env::get(&h, "a"), None);
        let b: BTreeMap<String, String> = [("K".to_owned(), "v".to_owned())].into();
        assert_eq!(Env::get(&b, "K").as_deref(), Some("v"));
        assert_eq!(EmptyEnv.get("K"), None);
    }
}
