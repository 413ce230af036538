//! Unit tests of the public API, one group per operator and per mode.

use std::collections::BTreeMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn std_env() -> BTreeMap<String, String> {
    env(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("NULL", ""),
        ("SP", " a  b "),
    ])
}

fn word(input: &str) -> Result<String, ShellError> {
    Lexer::new('\\').process_word(input, &std_env())
}

fn ok(input: &str) -> String {
    match word(input) {
        Ok(s) => s,
        Err(e) => panic!("{input:?} failed: {e}"),
    }
}

fn err(input: &str) -> ShellError {
    match word(input) {
        Ok(s) => panic!("{input:?} should fail, gave {s:?}"),
        Err(e) => e,
    }
}

#[test]
fn quote_removal() {
    assert_eq!(ok("he'll'o"), "hello");
    assert_eq!(ok(r#""hel'lo""#), "hel'lo");
    assert_eq!(ok(r#"'"hello"'"#), "\"hello\"");
    assert_eq!(ok(r"'a\tb'"), r"a\tb");
    assert_eq!(ok(r#""a\tb""#), r"a\tb");
    assert_eq!(ok(r#""a\"b\\c\$PWD""#), r#"a"b\c$PWD"#);
    assert_eq!(ok(r#""$PWD""#), "/home");
    assert_eq!(ok("'$PWD'"), "$PWD");
    assert_eq!(
        err("he'llo"),
        ShellError::UnterminatedSingleQuote { offset: 2 }
    );
    assert_eq!(
        err(r#"ab"cd\""#),
        ShellError::UnterminatedDoubleQuote { offset: 2 }
    );
}

#[test]
fn escapes() {
    assert_eq!(ok(r"abc\tdef"), "abctdef");
    assert_eq!(ok(r"he\'llo"), "he'llo");
    assert_eq!(ok(r"hello\"), "hello");
    assert_eq!(ok(r"hello\\"), r"hello\");
    assert_eq!(ok(r"he\$PWD"), "he$PWD");
    assert_eq!(ok(r"he\\$PWD"), r"he\/home");
    assert!(word(r"he\\'llo").is_err());
}

#[test]
fn backtick_escape() {
    let lex = Lexer::new('`');
    let e = std_env();
    assert_eq!(
        lex.process_word(r"C:\dir`$PWD", &e).ok().as_deref(),
        Some(r"C:\dir$PWD")
    );
    assert_eq!(
        lex.process_word(r#""a`"b""#, &e).ok().as_deref(),
        Some("a\"b")
    );
    assert_eq!(
        lex.process_word("trail`", &e).ok().as_deref(),
        Some("trail")
    );
    // In patterns `\` stays the glob escape whatever the escape token.
    let e = env(&[("V", "a*b")]);
    assert_eq!(lex.process_word(r"${V#a\*}", &e).ok().as_deref(), Some("b"));
}

#[test]
fn plain_variables() {
    assert_eq!(ok("he$PWD"), "he/home");
    assert_eq!(ok("he${PWD}x"), "he/homex");
    assert_eq!(ok("he$pwd."), "he.");
    assert_eq!(ok("$."), "$.");
    assert_eq!(ok("a$"), "a$");
    assert_eq!(ok("${hi}x"), "x");
    assert_eq!(ok("${aaa}}"), "}");
    assert_eq!(ok("$PWD_x"), "");
}

#[test]
fn positional_and_special_parameters() {
    for p in [
        "1", "9", "999", "001", "@", "*", "#", "?", "-", "$", "!", "0",
    ] {
        assert_eq!(ok(&format!("${p}")), "", "${p}");
        assert_eq!(ok(&format!("${{{p}}}a")), "a", "${{{p}}}");
        assert_eq!(ok(&format!("${{{p}:-b}}")), "b");
        assert_eq!(ok(&format!("${{{p}:+b}}")), "");
    }
    assert_eq!(ok("$@@@"), "@@");
    assert_eq!(ok("$999aaa"), "aaa");
    assert_eq!(ok("he$1x"), "hex");
}

#[test]
fn default_and_alternative() {
    assert_eq!(ok("${X:-000}"), "000");
    assert_eq!(ok("${PWD:-000}"), "/home");
    assert_eq!(ok("${NULL:-d}"), "d");
    assert_eq!(ok("${NULL-d}"), "");
    assert_eq!(ok("${X-d}"), "d");
    assert_eq!(ok("${X:-${Y:-yyy}}"), "yyy");
    assert_eq!(ok("${X:-$PWD}"), "/home");
    assert_eq!(ok("${PWD:+${SHELL}}"), "bash");
    assert_eq!(ok("${NULL:+x}"), "");
    assert_eq!(ok("${NULL+x}"), "x");
    assert_eq!(ok("${X+x}"), "");
    assert_eq!(ok(r"${X:-\$PWD:}"), "$PWD:");
    assert_eq!(ok(r"he${X:-\${PWD}z}xx"), "he${PWDz}xx");
    assert_eq!(ok("${X:-'}'}"), "}");
    assert_eq!(ok("${aaa:-bbb {foo}"), "bbb {foo");
}

#[test]
fn required_variables() {
    assert_eq!(ok("${PWD?}"), "/home");
    assert_eq!(ok("${NULL?}"), "");
    assert_eq!(
        err("a${X?}"),
        ShellError::Unset {
            name: "X".into(),
            message: "is not allowed to be unset".into(),
            offset: 1
        }
    );
    assert_eq!(
        err("${NULL:?}").to_string(),
        "NULL: is not allowed to be empty"
    );
    assert_eq!(err("${X:?}").to_string(), "X: is not allowed to be unset");
    assert_eq!(err("${X:?need $SHELL}").to_string(), "X: need bash");
    assert_eq!(err("${NULL:?need it}").to_string(), "NULL: need it");
}

#[test]
fn pattern_operators() {
    let e = env(&[("FOO", "xxyy"), ("P", "#*x"), ("S", "a/b/c")]);
    let w = |s: &str| Lexer::new('\\').process_word(s, &e);
    assert_eq!(w("${FOO#x}").ok().as_deref(), Some("xyy"));
    assert_eq!(w("${FOO##*x}").ok().as_deref(), Some("yy"));
    assert_eq!(w("${FOO#*x}").ok().as_deref(), Some("xyy"));
    assert_eq!(w("${FOO%y}").ok().as_deref(), Some("xxy"));
    assert_eq!(w("${FOO%%y*}").ok().as_deref(), Some("xx"));
    assert_eq!(w("${FOO%?}").ok().as_deref(), Some("xxy"));
    assert_eq!(w("${FOO#nomatch}").ok().as_deref(), Some("xxyy"));
    // The doubled operator is recognised after expansion, as in BuildKit.
    assert_eq!(w("${FOO#$P}").ok().as_deref(), Some("yy"));
    assert_eq!(w("${UNSET#x}").ok().as_deref(), Some(""));
    assert_eq!(w("${S/\\//-}").ok().as_deref(), Some("a-b/c"));
    assert_eq!(w("${S//\\//-}").ok().as_deref(), Some("a-b-c"));
    assert_eq!(w("${S//?/.}").ok().as_deref(), Some("....."));
    // The replacement keeps its escapes, as BuildKit's does.
    assert_eq!(w("${S/b*/\\}}").ok().as_deref(), Some("a/\\}"));
    assert_eq!(
        w(r"${FOO#\x}"),
        Err(ShellError::InvalidPattern {
            pattern: r"\x".into(),
            reason: r"invalid escape '\x'".into(),
            offset: 0
        })
    );
    assert_eq!(
        w(r"${FOO%a\x}").map_err(|e| e.to_string()),
        Err(r"invalid pattern (\xa) in substitution: invalid escape '\x'".to_owned())
    );
    assert_eq!(w("${FOO//ww}"), Err(ShellError::MissingSlash { offset: 0 }));
    assert_eq!(w("${FOO//}"), Err(ShellError::MissingSlash { offset: 0 }));
    assert_eq!(w("${FOO///}").ok().as_deref(), Some("xxyy"));
}

#[test]
fn invalid_forms() {
    assert_eq!(err("${}"), ShellError::BadSubstitution { offset: 2 });
    assert_eq!(err("he${:}"), ShellError::BadSubstitution { offset: 4 });
    assert_eq!(err("${{aaa}"), ShellError::BadSubstitution { offset: 2 });
    assert_eq!(
        err("${.}"),
        ShellError::UnsupportedModifier {
            modifier: ".".into(),
            offset: 2
        }
    );
    assert_eq!(
        err("${X:YYY}").to_string(),
        "unsupported modifier (:Y) in substitution"
    );
    assert_eq!(
        err("${FOO=a}").to_string(),
        "unsupported modifier (=) in substitution"
    );
    assert_eq!(
        err("${FOO:=a}").to_string(),
        "unsupported modifier (:=) in substitution"
    );
    for op in ["#", "##", "%", "%%"] {
        assert_eq!(
            err(&format!("${{FOO:{op}}}")).to_string(),
            format!("unsupported modifier (:{}) in substitution", &op[..1])
        );
    }
    // Go prints the end of the input as U+FFFD.
    assert_eq!(
        err("he${PWD"),
        ShellError::UnsupportedModifier {
            modifier: "\u{fffd}".into(),
            offset: 7
        }
    );
    assert_eq!(err("${"), ShellError::MissingBrace { offset: 0 });
    assert_eq!(err("x${aaa:-bbb"), ShellError::MissingBrace { offset: 1 });
    assert_eq!(
        err("${aaa:-bbb ${foo}"),
        ShellError::MissingBrace { offset: 0 }
    );
    // An inner error at the end of the input is reported as the outer missing brace.
    assert_eq!(err("${a:-'x"), ShellError::MissingBrace { offset: 0 });
    // An inner error elsewhere comes through as it is.
    assert_eq!(err("${a:-${}}"), ShellError::BadSubstitution { offset: 7 });
}

#[test]
fn unicode_words() {
    let e = env(&[("KOREAN", "한국어")]);
    let w = |s: &str| Lexer::new('\\').process_word(s, &e);
    assert_eq!(w("안녕$KOREAN").ok().as_deref(), Some("안녕한국어"));
    assert_eq!(w("안'녕'하세요").ok().as_deref(), Some("안녕하세요"));
    assert_eq!(w("${KOREAN#한}").ok().as_deref(), Some("국어"));
    assert_eq!(w("${KOREAN%어}").ok().as_deref(), Some("한국"));
    assert_eq!(w("${KOREAN/국/-}").ok().as_deref(), Some("한-어"));
    assert!(w("안'녕하세요").is_err());
    // A leading byte-order mark is dropped, as Go's scanner drops it.
    assert_eq!(w("\u{feff}a\u{feff}").ok().as_deref(), Some("a\u{feff}"));
}

#[test]
fn field_splitting() {
    let lex = Lexer::new('\\');
    let e = std_env();
    let words = |s: &str| lex.process_words(s, &e).ok();
    assert_eq!(
        words("a${SP}b"),
        Some(vec!["a".into(), "a".into(), "b".into(), "b".into()])
    );
    assert_eq!(words("a\"${SP}\"b"), Some(vec!["a a  b b".into()]));
    assert_eq!(
        words("hello there  "),
        Some(vec!["hello".into(), "there".into()])
    );
    assert_eq!(words(r"hello\ there"), Some(vec!["hello there".into()]));
    assert_eq!(
        words(r#"hello\" there"#),
        Some(vec!["hello\"".into(), "there".into()])
    );
    assert_eq!(words(r#""" a"#), Some(vec!["a".into()]));
    assert_eq!(words(""), Some(vec![]));
    // Nested words do not disturb the words before them.
    assert_eq!(words("a${X:-b}c d"), Some(vec!["abc".into(), "d".into()]));
    assert_eq!(
        words("a${X:-$SP}c"),
        Some(vec!["a".into(), "a".into(), "b".into(), "c".into()])
    );
    assert!(lex.process_words("a'b", &e).is_err());
}

#[test]
fn matches_and_unmatched() {
    let e = env(&[("FOO", "xxx"), ("BAR", "")]);
    let Ok(x) = Lexer::new('\\').process_word_with_matches("${FOO-a} $BAR ${BAZ:+c} ${BAZ}", &e)
    else {
        panic!("expansion failed");
    };
    assert_eq!(x.result, "xxx   ");
    assert_eq!(x.words, ["xxx"]);
    assert_eq!(x.matched.iter().collect::<Vec<_>>(), ["BAR", "FOO"]);
    assert_eq!(x.unmatched.iter().collect::<Vec<_>>(), ["BAZ"]);
}

#[test]
fn raw_quotes_mode() {
    let lex = Lexer {
        raw_quotes: true,
        ..Lexer::new('\\')
    };
    let e = std_env();
    assert_eq!(
        lex.process_word(r#"'a'"$PWD""#, &e).ok().as_deref(),
        Some(r#"'a'"/home""#)
    );
    assert_eq!(
        lex.process_word(r#""EOF""#, &e).ok().as_deref(),
        Some(r#""EOF""#)
    );
}

#[test]
fn raw_escapes_mode() {
    let lex = Lexer {
        raw_escapes: true,
        ..Lexer::new('\\')
    };
    let e = std_env();
    assert_eq!(
        lex.process_word(r"a\$PWD\\", &e).ok().as_deref(),
        Some(r"a\$PWD\\")
    );
    assert_eq!(
        lex.process_word(r"trail\", &e).ok().as_deref(),
        Some(r"trail\")
    );
    assert_eq!(
        lex.process_word(r#""\$PWD""#, &e).ok().as_deref(),
        Some(r"\$PWD")
    );
    // BuildKit writes a lone escape inside double quotes twice in this mode.
    assert_eq!(
        lex.process_word(r#""\t""#, &e).ok().as_deref(),
        Some(r"\\t")
    );
    // `-`/`+`/`?` words drop escapes even here, as BuildKit does.
    assert_eq!(lex.process_word(r"${X:-\a}", &e).ok().as_deref(), Some("a"));
}

#[test]
fn heredoc_word_modes() {
    // The parser looks for heredoc words with raw quotes and raw escapes.
    let lex = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        ..Lexer::new('\\')
    };
    let e = EmptyEnv;
    assert_eq!(
        lex.process_word(r#"<<"E\"OF""#, &e).ok().as_deref(),
        Some(r#"<<"E\"OF""#)
    );
    assert_eq!(
        lex.process_word(r"<<-'EOF'", &e).ok().as_deref(),
        Some("<<-'EOF'")
    );
    assert_eq!(
        lex.process_words(r"cat <<EOF >\ f", &e).ok(),
        Some(vec![
            "cat".to_owned(),
            "<<EOF".to_owned(),
            r">\ f".to_owned()
        ])
    );
}

#[test]
fn heredoc_markers_keep_their_blanks_in_one_word() {
    let lex = Lexer::new('\\');
    let e = EmptyEnv;
    let words = |s: &str| lex.process_words(s, &e).ok();
    assert_eq!(
        words("RUN <<  EOF  /foo"),
        Some(vec!["RUN".into(), "<<  EOF".into(), "/foo".into()])
    );
    assert_eq!(
        words("a << \t\rb"),
        Some(vec!["a".into(), "<< \t\rb".into()])
    );
    // Only spaces, tabs and CRs are swallowed; a lone `<` is an ordinary character.
    assert_eq!(words("<<\u{b}x"), Some(vec!["<<".into(), "x".into()]));
    assert_eq!(
        words("a < b"),
        Some(vec!["a".into(), "<".into(), "b".into()])
    );
    assert_eq!(words("\"<<  x\""), Some(vec!["<<  x".into()]));
    assert_eq!(words("\\<<  x"), Some(vec!["<<".into(), "x".into()]));
    // The expanded text is never changed by this.
    assert_eq!(
        lex.process_word("<<  EOF", &e).ok().as_deref(),
        Some("<<  EOF")
    );
}

#[test]
fn skip_unset_env_mode() {
    let lex = Lexer {
        skip_unset_env: true,
        ..Lexer::new('\\')
    };
    let e = std_env();
    let w = |s: &str| lex.process_word(s, &e);
    assert_eq!(w("$X-$PWD").ok().as_deref(), Some("$X-/home"));
    assert_eq!(w("${X}").ok().as_deref(), Some("${X}"));
    assert_eq!(w("${X:-$Y}").ok().as_deref(), Some("${X:-$Y}"));
    assert_eq!(w("${X:?msg}").ok().as_deref(), Some("${X:?msg}"));
    assert_eq!(w("${X//a/b}").ok().as_deref(), Some("${X/a/b}"));
    assert_eq!(w("${X:YYY}").ok().as_deref(), Some("${X:YYY}"));
    assert_eq!(w("${NULL:-d}").ok().as_deref(), Some("d"));
    assert!(w("${PWD:YYY}").is_err());
    assert!(w("${X:#a}").is_err());
}

#[test]
fn skip_process_quotes_mode() {
    let lex = Lexer {
        skip_process_quotes: true,
        ..Lexer::new('\\')
    };
    let e = std_env();
    let w = |s: &str| lex.process_word(s, &e);
    assert_eq!(
        w(r#"echo '$PWD' "$SHELL""#).ok().as_deref(),
        Some(r#"echo '/home' "bash""#)
    );
    assert_eq!(w("it's").ok().as_deref(), Some("it's"));
    assert_eq!(w(r"a\'b").ok().as_deref(), Some("a'b"));
}

#[test]
fn buildkit_wrapped_message() {
    let e = err("${X:?not set}");
    assert_eq!(
        e.buildkit_message("${X:?not set}"),
        "failed to process \"${X:?not set}\": X: not set"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let depth = 10_000;
    let input = "${a:-".repeat(depth) + &"}".repeat(depth);
    // Run on a modest stack to prove the limit keeps recursion shallow.
    let handle = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || Lexer::new('\\').process_word(&input, &EmptyEnv))
        .expect("spawn");
    let result = handle.join().expect("no stack overflow");
    assert!(matches!(result, Err(ShellError::TooDeep { .. })));
    let ok_depth = 60;
    let input = "${a:-".repeat(ok_depth) + "x" + &"}".repeat(ok_depth);
    assert_eq!(
        Lexer::new('\\')
            .process_word(&input, &EmptyEnv)
            .ok()
            .as_deref(),
        Some("x")
    );
}

#[test]
fn never_panics_on_awkward_input() {
    let lex_variants = [
        Lexer::new('\\'),
        Lexer {
            raw_quotes: true,
            raw_escapes: true,
            ..Lexer::new('\\')
        },
        Lexer {
            skip_unset_env: true,
            skip_process_quotes: true,
            ..Lexer::new('`')
        },
    ];
    let pieces = [
        "$", "{", "}", ":", "-", "+", "?", "#", "%", "/", "\\", "'", "\"", "*", "a", "한", "1",
        "\u{feff}", " ", "`", "=", "\u{0}",
    ];
    let e = env(&[("a", "x*y한"), ("1", "")]);
    // Every string of up to three pieces, then every four-piece extension of the first ones.
    let mut inputs = vec![String::new()];
    let mut last = vec![String::new()];
    for _ in 0..4 {
        last = last
            .iter()
            .flat_map(|s| pieces.iter().map(move |p| format!("{s}{p}")))
            .collect();
        inputs.extend(last.iter().take(40_000).cloned());
    }
    for lex in lex_variants {
        for input in &inputs {
            let _ = lex.process_word_with_matches(input, &e);
        }
    }
}
