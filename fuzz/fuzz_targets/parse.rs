//! Fuzzes the whole frontend path a Dockerfile takes in `kiln parse --format json`:
//! parsing, dumping, typing every instruction and expanding words. None of it may panic.
#![no_main]

use kiln_frontend::shell::{EmptyEnv, Lexer};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = kiln_frontend::parser::parse(src) {
        let _ = kiln_frontend::parser::dump(&parsed.nodes);
        let _ = kiln_frontend::json_document(&parsed, src);
    }
    let lex = Lexer::new('\\');
    let _ = lex.process_words(src, &EmptyEnv);
    let _ = lex.process_word(src, &EmptyEnv);
});
