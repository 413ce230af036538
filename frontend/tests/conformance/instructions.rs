//! Conformance suite: buildkit-instructions, BuildKit's instruction-layer tables read in place.
//!
//! Every `*.jsonl` file in the directory is checked, every row a case: a file this suite does
//! not know, a row of a shape it does not know, or a row it cannot read is a failure.

use std::path::Path;

use kiln_frontend::instructions::{
    BFlags, Instruction, parse_device, parse_instruction, parse_port_specs,
};
use kiln_frontend::parser::{Node, parse};
use kiln_frontend::span::Span;
use serde_json::Value;

use crate::common::{Suite, read_jsonl};

/// Checks one row; `Err` says what differed.
type RowCheck = fn(&Value) -> Result<(), String>;

const FILES: [(&str, RowCheck); 7] = [
    ("bflags.jsonl", bflags),
    ("copy_heredoc.jsonl", copy_heredoc),
    ("expose_ports.jsonl", expose_ports),
    ("instruction_errors.jsonl", instruction_errors),
    ("instruction_misc.jsonl", instruction_misc),
    ("run_device.jsonl", run_device),
    ("run_heredoc.jsonl", run_heredoc),
];

pub fn all(root: &Path) -> Result<Suite, String> {
    let dir = root.join("buildkit-instructions");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    names.sort();
    let mut suite = Suite::default();
    for (name, _) in FILES {
        if !names.iter().any(|n| n == name) {
            suite.check(name, Err("file missing".into()));
        }
    }
    for name in &names {
        let Some((_, check)) = FILES.iter().find(|(n, _)| n == name) else {
            suite.check(name, Err("a table this suite does not know".into()));
            continue;
        };
        let rows = match read_jsonl(&dir.join(name)) {
            Ok(rows) => rows,
            Err(e) => {
                suite.check(name, Err(e));
                continue;
            }
        };
        if rows.is_empty() {
            suite.check(name, Err("no rows".into()));
        }
        for (i, row) in rows.iter().enumerate() {
            suite.check(format!("{name}:{}", i + 1), check(row));
        }
    }
    Ok(suite)
}

fn field<'a>(row: &'a Value, key: &str) -> Result<&'a Value, String> {
    row.get(key).ok_or_else(|| format!("row has no {key:?}"))
}

fn string<'a>(row: &'a Value, key: &str) -> Result<&'a str, String> {
    field(row, key)?
        .as_str()
        .ok_or_else(|| format!("{key:?} is not a string"))
}

fn strings(v: &Value) -> Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| format!("{v} is not an array"))?
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{s} is not a string"))
        })
        .collect()
}

fn boolean(v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| format!("{v} is not a bool"))
}

fn same<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

/// Compares an outcome with a row's `error_equals` / `error_contains` / `error` expectation.
fn expect_error<T: std::fmt::Debug>(row: &Value, got: Result<T, String>) -> Result<(), String> {
    let err = match got {
        Ok(v) => return Err(format!("expected an error, got {v:?}")),
        Err(e) => e,
    };
    if let Some(want) = row.get("error_equals") {
        let want = want.as_str().ok_or("error_equals is not a string")?;
        return same("error", err.as_str(), want);
    }
    if let Some(want) = row.get("error_contains") {
        let want = want.as_str().ok_or("error_contains is not a string")?;
        return if err.contains(want) {
            Ok(())
        } else {
            Err(format!("error {err:?} does not contain {want:?}"))
        };
    }
    if row.get("error").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    Err("row has no error expectation".into())
}

fn wants_error(row: &Value) -> bool {
    ["error_equals", "error_contains", "error"]
        .iter()
        .any(|k| row.get(k).is_some())
}

/// Parses a Dockerfile and types each instruction; the first error wins.
fn instructions(src: &str) -> Result<Vec<Instruction>, String> {
    let parsed = parse(src).map_err(|e| format!("parser: {}", e.message))?;
    parsed
        .nodes
        .iter()
        .map(|n| parse_instruction(n, src).map_err(|e| e.message))
        .collect()
}

fn single(src: &str) -> Result<Instruction, String> {
    let mut all = instructions(src)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        n => Err(format!("{n} instructions, want 1")),
    }
}

fn bflags(row: &Value) -> Result<(), String> {
    let defs = field(row, "defs")?
        .as_object()
        .ok_or("defs is not an object")?;
    let mut flags = BFlags::new(strings(field(row, "args")?)?);
    for (name, def) in defs {
        match def.as_array().map(Vec::as_slice) {
            Some([t, d]) if t == "bool" => flags.add_bool(name, boolean(d)?),
            Some([t, d]) if t == "string" => {
                flags.add_string(name, d.as_str().ok_or("string default")?)
            }
            _ => return Err(format!("unknown flag definition {def}")),
        }
    }
    let result = flags.parse();
    let ok = boolean(field(row, "ok")?)?;
    same("ok", result.is_ok(), ok).map_err(|e| format!("{e} ({result:?})"))?;
    if let Some(values) = row.get("values") {
        for (name, want) in values.as_object().ok_or("values is not an object")? {
            match want {
                Value::Bool(b) => same(name, flags.bool(name), *b)?,
                Value::String(s) => same(name, flags.string(name), s.as_str())?,
                _ => return Err(format!("unknown value {want}")),
            }
        }
    }
    let mut used = flags.used().to_vec();
    used.sort();
    if let Some(want) = row.get("used") {
        let mut want = strings(want)?;
        want.sort();
        same("used", &used, &want)?;
    }
    if let Some(want) = row.get("used_sorted") {
        let want = want.as_str().ok_or("used_sorted is not a string")?;
        same("used_sorted", used.join(", ").as_str(), want)?;
    }
    Ok(())
}

fn copy_heredoc(row: &Value) -> Result<(), String> {
    let Instruction::Copy(c) = single(string(row, "dockerfile")?)? else {
        return Err("not a COPY".into());
    };
    same("dest", c.dest.as_str(), string(row, "dest")?)?;
    same("paths", c.sources, strings(field(row, "paths")?)?)?;
    let want = field(row, "contents")?
        .as_array()
        .ok_or("contents is not an array")?;
    same("contents", c.contents.len(), want.len())?;
    for (got, want) in c.contents.iter().zip(want) {
        same("path", got.path.as_str(), string(want, "path")?)?;
        same("data", got.data.as_str(), string(want, "data")?)?;
        same("expand", got.expand, boolean(field(want, "expand")?)?)?;
    }
    Ok(())
}

fn expose_ports(row: &Value) -> Result<(), String> {
    let specs = match (row.get("spec"), row.get("specs")) {
        (Some(s), None) => vec![s.as_str().ok_or("spec is not a string")?.to_owned()],
        (None, Some(s)) => strings(s)?,
        _ => return Err("row needs one of spec, specs".into()),
    };
    let got = parse_port_specs(&specs);
    if wants_error(row) {
        return expect_error(row, got);
    }
    same("ports", got?, strings(field(row, "expected")?)?)
}

fn instruction_errors(row: &Value) -> Result<(), String> {
    let got = match (row.get("dockerfile"), row.get("ast")) {
        (Some(src), None) => instructions(src.as_str().ok_or("dockerfile is not a string")?),
        (None, Some(ast)) => {
            let node = ast_node(&strings(ast)?)?;
            parse_instruction(&node, "")
                .map(|i| vec![i])
                .map_err(|e| e.message)
        }
        _ => return Err("row needs one of dockerfile, ast".into()),
    };
    expect_error(row, got)
}

/// `["env", "a", "b", "="]`: the keyword, then the arguments as the parser would give them.
fn ast_node(words: &[String]) -> Result<Node, String> {
    let (keyword, args) = words.split_first().ok_or("empty ast")?;
    Ok(Node {
        value: keyword.clone(),
        flags: Vec::new(),
        args: args.to_vec(),
        sub: None,
        json: false,
        heredocs: Vec::new(),
        original: words.join(" "),
        start_line: 1,
        end_line: 1,
        span: Span::default(),
        prev_comment: Vec::new(),
    })
}

fn instruction_misc(row: &Value) -> Result<(), String> {
    if let Some(interval) = row.get("healthcheck_interval") {
        let interval = interval.as_str().ok_or("interval is not a string")?;
        let got = single(&format!("HEALTHCHECK --interval={interval} CMD true"));
        if wants_error(row) {
            return expect_error(row, got);
        }
        same("ok", got.is_ok(), boolean(field(row, "ok")?)?)
            .map_err(|e| format!("{e} ({got:?})"))?;
        return Ok(());
    }
    let got = single(string(row, "dockerfile")?)?;
    let expect = field(row, "expect")?
        .as_object()
        .ok_or("expect is not an object")?;
    if expect.is_empty() {
        return Err("nothing expected".into());
    }
    for (key, want) in expect {
        let want = strings(want)?;
        match (key.as_str(), &got) {
            ("healthcheck.test", Instruction::Healthcheck(h)) => same(key, &h.health.test, &want)?,
            ("run.flags_used", Instruction::Run(r)) => same(key, &r.flags_used, &want)?,
            _ => return Err(format!("cannot check {key} on {got:?}")),
        }
    }
    Ok(())
}

fn run_device(row: &Value) -> Result<(), String> {
    let got = parse_device(string(row, "input")?).map_err(|e| e.message);
    if wants_error(row) {
        return expect_error(row, got);
    }
    let d = got?;
    same("name", d.name.as_str(), string(row, "name")?)?;
    same("required", d.required, boolean(field(row, "required")?)?)
}

fn run_heredoc(row: &Value) -> Result<(), String> {
    let Instruction::Run(r) = single(string(row, "dockerfile")?)? else {
        return Err("not a RUN".into());
    };
    let c = &r.command;
    same(
        "prepend_shell",
        c.prepend_shell,
        boolean(field(row, "prepend_shell")?)?,
    )?;
    same(
        "cmdline",
        c.cmd_line.clone(),
        strings(field(row, "cmdline")?)?,
    )?;
    let want = field(row, "files")?
        .as_array()
        .ok_or("files is not an array")?;
    same("files", c.files.len(), want.len())?;
    for (got, want) in c.files.iter().zip(want) {
        same("name", got.name.as_str(), string(want, "name")?)?;
        same("data", got.data.as_str(), string(want, "data")?)?;
        same("chomp", got.chomp, boolean(field(want, "chomp")?)?)?;
    }
    Ok(())
}
