//! Property tests: the parser, the dumper, instruction typing and the shell lexer never
//! panic, whatever the input: random text over a Dockerfile-flavoured alphabet, and
//! mutations (insertions, deletions, swaps) of realistic Dockerfiles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kiln_frontend::shell::{EmptyEnv, Lexer};
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    "FROM busybox AS b\nRUN echo hi \\\n  there\nCMD [\"a\", \"b\"]\n",
    "# escape=`\nFROM x\nRUN a `\n b\nCOPY --from=b --chown=1:2 /a /b\n",
    "FROM a\nRUN <<EOF <<-'E2' cat\nx $A\nEOF\n\tq\n\tE2\nCOPY <<F /f\nbody\nF\n",
    "ARG A=1 B\nFROM ${A:-x} AS s\nENV K=v L=\"w x\" M\\ =y\nLABEL a=b c=d\nLABEL legacy form here\n",
    "FROM s\nRUN --mount=type=cache,target=/c,id=x,sharing=locked --network=none true\n",
    "FROM s\nHEALTHCHECK --interval=1s --retries=3 CMD curl -f http://x/ || exit 1\n",
    "FROM s\nEXPOSE 80 443/udp 1000-1010\nONBUILD RUN echo ${X##*/} ${Y%%.*} ${Z/a/b}\n",
    "FROM s\nSHELL [\"/bin/bash\", \"-c\"]\nVOLUME [\"/a\", \"/b\"]\nUSER u:g\nWORKDIR /w\nSTOPSIGNAL 9\n",
    "FROM s\nADD --checksum=sha256:abc --link https://x/y /z\nENTRYPOINT [\"e\"\nCMD []\n",
];

fn exercise(src: &str) {
    if let Ok(parsed) = kiln_frontend::parser::parse(src) {
        let _ = kiln_frontend::parser::dump(&parsed.nodes);
        let _ = kiln_frontend::json_document(&parsed, src);
        for n in &parsed.nodes {
            let _ = kiln_frontend::instructions::parse_instruction(n, src);
        }
    }
    for mut lex in [Lexer::new('\\'), Lexer::new('`')] {
        let _ = lex.process_word(src, &EmptyEnv);
        let _ = lex.process_words(src, &EmptyEnv);
        lex.raw_quotes = true;
        lex.raw_escapes = true;
        lex.skip_unset_env = true;
        let _ = lex.process_words(src, &EmptyEnv);
        let _ = lex.process_word_with_matches(src, &EmptyEnv);
    }
    let _ = kiln_frontend::parser::detect_syntax(src);
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, String),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn apply(seed: &str, muts: &[Mutation]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for m in muts {
        let n = chars.len().max(1);
        match m {
            Mutation::Insert(at, s) => {
                let at = at % (chars.len() + 1);
                chars.splice(at..at, s.chars());
            }
            Mutation::Delete(at, len) => {
                let at = at % n;
                let end = (at + len).min(chars.len());
                if at < end {
                    chars.drain(at..end);
                }
            }
            Mutation::Duplicate(at, len) => {
                let at = at % n;
                let end = (at + len).min(chars.len());
                if at < end {
                    let piece: Vec<char> = chars[at..end].to_vec();
                    chars.splice(at..at, piece);
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn dockerfile_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "([A-Za-z0-9 \t\n\\\\`'\"$={}\\[\\],:#<>*?/%+-]|\u{feff}|é|\r){0,300}",
    )
    .unwrap()
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (
            any::<usize>(),
            dockerfile_text().prop_map(|s| s.chars().take(8).collect())
        )
            .prop_map(|(a, s)| Mutation::Insert(a, s)),
        (any::<usize>(), 0usize..20).prop_map(|(a, l)| Mutation::Delete(a, l)),
        (any::<usize>(), 0usize..40).prop_map(|(a, l)| Mutation::Duplicate(a, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(src in dockerfile_text()) {
        exercise(&src);
    }

    #[test]
    fn mutated_dockerfiles_never_panic(
        seed in 0..SEEDS.len(),
        muts in proptest::collection::vec(mutation(), 1..8),
    ) {
        exercise(&apply(SEEDS[seed], &muts));
    }
}

#[test]
fn seeds_are_valid_before_mutation() {
    for s in SEEDS {
        kiln_frontend::parser::parse(s).unwrap();
    }
}
