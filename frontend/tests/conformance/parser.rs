//! Conformance suites over `buildkit-parser/`: AST dumps, negative cases, line numbers,
//! heredoc extraction and every parser table.

use std::path::Path;

use kiln_frontend::parser::{
    self, JsonArray, detect_syntax, parse, parse_all_directives, parse_directive, parse_heredoc,
};
use kiln_frontend::span::line_col;
use serde_json::Value;

use crate::common::{Suite, read, read_jsonl, subdirs};

/// Every `testfiles/<case>`: the dump of our AST equals BuildKit's `result` byte for byte.
pub fn testfiles(root: &Path) -> Result<Suite, String> {
    let mut suite = Suite::default();
    for dir in subdirs(&root.join("buildkit-parser/testfiles"))? {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let src = read(&dir.join("Dockerfile"))?;
        let want = read(&dir.join("result"))?;
        let got = parse(&src).map(|p| parser::dump(&p.nodes));
        suite.check(
            &name,
            match got {
                Ok(got) if got == want => Ok(()),
                Ok(got) => Err(format!("dump differs:\n--- want\n{want}--- got\n{got}")),
                Err(e) => Err(format!("parse failed: {e}")),
            },
        );
    }
    Ok(suite)
}

/// Every `testfiles-negative/<case>` fails, and the error points at a line and column.
pub fn negative(root: &Path) -> Result<Suite, String> {
    let mut suite = Suite::default();
    for dir in subdirs(&root.join("buildkit-parser/testfiles-negative"))? {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let src = read(&dir.join("Dockerfile"))?;
        suite.check(
            &name,
            match parse(&src) {
                Ok(_) => Err("parsed without error".into()),
                Err(e) => {
                    let lc = line_col(&src, e.span.start);
                    let lines = src.lines().count().max(1);
                    if lc.line >= 1 && lc.line <= lines + 1 && e.span.end <= src.len() {
                        Ok(())
                    } else {
                        Err(format!("error {e:?} is not located inside the file"))
                    }
                }
            },
        );
    }
    Ok(suite)
}

/// `testfile-line/Dockerfile` against `tables/line_numbers.json`.
pub fn line_numbers(root: &Path) -> Result<Suite, String> {
    let mut suite = Suite::default();
    let base = root.join("buildkit-parser");
    let table: Value = serde_json::from_str(&read(&base.join("tables/line_numbers.json"))?)
        .map_err(|e| e.to_string())?;
    let file = table["file"].as_str().ok_or("line_numbers.json: no file")?;
    let src = read(&base.join(file))?;
    let p = parse(&src).map_err(|e| format!("{file}: {e}"))?;
    let first = p.nodes.first().map(|n| n.start_line);
    let last = p.nodes.last().map(|n| n.end_line);
    let root_want = (
        table["root"]["start"].as_u64(),
        table["root"]["end"].as_u64(),
    );
    suite.check(
        "root",
        expect_eq((first.map(|v| v as u64), last.map(|v| v as u64)), root_want),
    );
    let children = table["children"].as_array().ok_or("no children")?;
    suite.check("child count", expect_eq(p.nodes.len(), children.len()));
    for (i, want) in children.iter().enumerate() {
        let got = p
            .nodes
            .get(i)
            .map(|n| vec![n.start_line as u64, n.end_line as u64]);
        let want: Vec<u64> = want
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        suite.check(format!("child {i}"), expect_eq(got, Some(want)));
    }
    Ok(suite)
}

/// `heredoc/Dockerfile`: the heredocs attached to each instruction.
pub fn heredoc(root: &Path) -> Result<Suite, String> {
    let mut suite = Suite::default();
    let base = root.join("buildkit-parser/heredoc");
    let src = read(&base.join("Dockerfile"))?;
    let p = parse(&src).map_err(|e| format!("heredoc/Dockerfile: {e}"))?;
    for row in read_jsonl(&base.join("expected.jsonl"))? {
        let i = row["child_index"].as_u64().ok_or("no child_index")? as usize;
        let what = format!("child {i} ({})", row["comment"].as_str().unwrap_or(""));
        let Some(node) = p.nodes.get(i) else {
            suite.check(what, Err("no such instruction".into()));
            continue;
        };
        let got: Vec<Value> = node
            .heredocs
            .iter()
            .map(|h| {
                serde_json::json!({
                    "Name": h.name, "Content": h.content, "Expand": h.expand,
                    "Chomp": h.chomp, "FileDescriptor": h.file_descriptor,
                })
            })
            .collect();
        let want = match &row["heredocs"] {
            Value::Null => Vec::new(),
            Value::Array(a) => a.clone(),
            other => return Err(format!("{what}: bad heredocs {other}")),
        };
        suite.check(what, expect_eq(got, want));
    }
    Ok(suite)
}

/// Every file under `buildkit-parser/tables`; a table this harness does not know fails.
pub fn tables(root: &Path) -> Result<Suite, String> {
    let mut suite = Suite::default();
    let dir = root.join("buildkit-parser/tables");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    for file in files {
        let path = dir.join(&file);
        let rows = || -> Result<Vec<Value>, String> {
            if file.ends_with(".jsonl") {
                read_jsonl(&path)
            } else {
                Ok(vec![
                    serde_json::from_str(&read(&path)?).map_err(|e| e.to_string())?,
                ])
            }
        };
        let check: fn(&Value) -> Result<(), String> = match file.as_str() {
            "directives.jsonl" => directive_row,
            "empty_continuation_warnings.json" => empty_continuation_row,
            "heredoc_chomp.jsonl" => chomp_row,
            "heredoc_json_form.jsonl" => heredoc_json_row,
            "heredocs_from_line.jsonl" => heredocs_from_line_row,
            "json_exec_form.jsonl" => json_row,
            // Checked by the testfile-line suite against the file it names.
            "line_numbers.json" => |_: &Value| Ok(()),
            "max_line.json" => max_line_row,
            "parse_heredoc_word.jsonl" => heredoc_word_row,
            "parse_name_val.jsonl" => name_val_row,
            "parse_words.jsonl" => words_row,
            _ => {
                suite.check(&file, Err("no harness for this table".into()));
                continue;
            }
        };
        for (i, row) in rows()?.iter().enumerate() {
            suite.check(format!("{file}:{}", i + 1), check(row));
        }
    }
    Ok(suite)
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("want {want:?}, got {got:?}"))
    }
}

fn s<'a>(row: &'a Value, key: &str) -> &'a str {
    row[key].as_str().unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn directive_row(row: &Value) -> Result<(), String> {
    let mut input = s(row, "input").to_owned();
    if s(row, "input_hex_prefix") == "efbbbf" {
        input.insert(0, '\u{feff}');
    }
    match s(row, "fn") {
        "ParseAll" => {
            let got = parse_all_directives(&input)?;
            let got: Vec<Value> = got
                .iter()
                .map(|d| serde_json::json!({"name": d.name, "value": d.value}))
                .collect();
            expect_eq(Value::Array(got), row["expected"].clone())
        }
        "DetectSyntax" => check_found(row, detect_syntax(&input), "ref"),
        "ParseDirective(check)" => check_found(row, parse_directive("check", &input), "value"),
        other => Err(format!("unknown fn {other}")),
    }
}

fn check_found(
    row: &Value,
    found: Option<parser::DirectiveValue>,
    value_key: &str,
) -> Result<(), String> {
    let ok = row["ok"].as_bool().ok_or("no ok")?;
    expect_eq(found.is_some(), ok)?;
    let Some(found) = found else { return Ok(()) };
    if let Some(v) = row[value_key].as_str() {
        expect_eq(found.value.as_str(), v)?;
    }
    if let Some(v) = row["cmdline"].as_str() {
        expect_eq(found.cmdline.as_str(), v)?;
    }
    if let Some(v) = row["line"].as_u64() {
        expect_eq(found.line as u64, v)?;
    }
    Ok(())
}

fn empty_continuation_row(row: &Value) -> Result<(), String> {
    let p = parse(s(row, "input")).map_err(|e| e.to_string())?;
    expect_eq(
        p.warnings.len() as u64,
        row["warnings"].as_u64().ok_or("no count")?,
    )?;
    for (i, needles) in row["warning_contains"]
        .as_array()
        .ok_or("no contains")?
        .iter()
        .enumerate()
    {
        let w = p.warnings.get(i).ok_or("missing warning")?;
        for n in strings(needles) {
            if !w.message.contains(&n) {
                return Err(format!("warning {i} {:?} lacks {n:?}", w.message));
            }
        }
    }
    let detail = p.warnings[0].hint.clone().unwrap_or_default();
    if !detail.contains(s(row, "detail0_contains")) {
        return Err(format!("detail {detail:?}"));
    }
    Ok(())
}

fn chomp_row(row: &Value) -> Result<(), String> {
    expect_eq(
        parser::chomp_heredoc_content(s(row, "input")),
        s(row, "expected").to_owned(),
    )
}

fn heredoc_json_row(row: &Value) -> Result<(), String> {
    let src = format!("{}\n", s(row, "instruction"));
    let p = parse(&src).map_err(|e| e.to_string())?;
    expect_eq(p.nodes[0].heredocs.len(), strings(&row["heredocs"]).len())
}

fn heredocs_from_line_row(row: &Value) -> Result<(), String> {
    let docs = parser::heredocs_from_line(s(row, "line"))?;
    let names: Vec<String> = docs.into_iter().map(|d| d.name).collect();
    expect_eq(names, strings(&row["heredoc_names"]))
}

fn json_row(row: &Value) -> Result<(), String> {
    let got = parser::parse_json_array(s(row, "input"));
    if row["valid"].as_bool() == Some(true) {
        expect_eq(got, JsonArray::Strings(strings(&row["expected"])))
    } else {
        expect_eq(got, JsonArray::NotStrings)
    }
}

fn max_line_row(row: &Value) -> Result<(), String> {
    let template = s(row, "input");
    let re = regex::Regex::new(r"<'(.)' repeated (\d+) times>").unwrap();
    let input = re.replace(template, |c: &regex::Captures<'_>| {
        c[1].repeat(c[2].parse().unwrap())
    });
    if input == template {
        return Err("no repetition placeholder".into());
    }
    match parse(&input) {
        Ok(_) => Err("parsed without error".into()),
        Err(e) => expect_eq(e.message.as_str(), s(row, "error")),
    }
}

fn heredoc_word_row(row: &Value) -> Result<(), String> {
    let got = parse_heredoc(s(row, "input"));
    match (s(row, "kind"), got) {
        ("heredoc", Ok(Some(h))) => expect_eq(h.name.as_str(), s(row, "name")),
        ("error", Err(_)) | ("not_heredoc", Ok(None)) => Ok(()),
        (kind, got) => Err(format!("want {kind}, got {got:?}")),
    }
}

fn name_val_row(row: &Value) -> Result<(), String> {
    let src = format!("{} {}\n", s(row, "instr"), s(row, "input"));
    match (parse(&src), row.get("error")) {
        (Ok(p), None) => expect_eq(p.nodes[0].args.clone(), strings(&row["expected_nodes"])),
        (Err(e), Some(want)) => expect_eq(e.message.as_str(), want.as_str().unwrap_or_default()),
        (got, _) => Err(format!("unexpected {got:?}")),
    }
}

fn words_row(row: &Value) -> Result<(), String> {
    let escape = s(row, "escape").chars().next().ok_or("no escape")?;
    expect_eq(
        parser::parse_words(s(row, "input"), escape),
        strings(&row["expected"]),
    )
}
