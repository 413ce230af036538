//! Conformance against the peers' own test data in `../shared/conformance` (or
//! `KILN_CONFORMANCE_DIR`), read in place. Prints one count per suite; any failure, or a suite
//! that cannot run (missing directory, unreadable file), fails the whole target.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    unreachable_pub
)]

mod common;
mod instructions;
mod parser;
mod shell;

use common::Suite;

type SuiteFn = fn(&std::path::Path) -> Result<Suite, String>;

fn main() {
    let root = common::conformance_dir();
    println!("conformance data: {}", root.display());
    let suites: Vec<(&str, SuiteFn)> = vec![
        ("buildkit-parser/testfiles", parser::testfiles),
        ("buildkit-parser/testfiles-negative", parser::negative),
        ("buildkit-parser/testfile-line", parser::line_numbers),
        ("buildkit-parser/heredoc", parser::heredoc),
        ("buildkit-parser/tables", parser::tables),
        ("buildkit-shell", shell::all),
        ("buildkit-instructions", instructions::all),
    ];
    let (mut passed, mut failed) = (0usize, 0usize);
    for (name, run) in suites {
        match run(&root) {
            Ok(suite) => {
                println!(
                    "{name}: {} passed, {} failed",
                    suite.passed,
                    suite.failures.len()
                );
                for f in &suite.failures {
                    println!("  FAIL {f}");
                }
                if suite.passed == 0 && suite.failures.is_empty() {
                    println!("  FAIL {name}: the suite found no cases");
                    failed += 1;
                }
                passed += suite.passed;
                failed += suite.failures.len();
            }
            Err(e) => {
                println!("{name}: could not run: {e}");
                failed += 1;
            }
        }
    }
    println!("conformance: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
