//! ADD and COPY: sources (paths, URLs, or heredoc bodies) and a destination, with their flags.

use serde::Serialize;

use super::Request;
use crate::diagnostics::Diagnostic;
use crate::parser::{chomp_heredoc_content, parse_heredoc};
use crate::span::Span;

/// A source given inline as a heredoc (`COPY <<EOF /dest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceContent {
    /// The file name to create: the heredoc's delimiter word.
    pub path: String,
    /// The body (tabs already stripped for `<<-`).
    pub data: String,
    /// False when the delimiter was quoted: the body is not to be expanded.
    pub expand: bool,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyInstruction {
    /// Source paths, unexpanded.
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub contents: Vec<SourceContent>,
    /// The destination, unexpanded.
    pub dest: String,
    /// `--from`: a stage, image or named context.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`: copy into an independent layer.
    pub link: bool,
    /// `--parents`: keep the sources' parent directories.
    pub parents: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// The whole instruction.
    pub span: Span,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddInstruction {
    /// Source paths or URLs, unexpanded.
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub contents: Vec<SourceContent>,
    /// The destination, unexpanded.
    pub dest: String,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`: copy into an independent layer.
    pub link: bool,
    /// `--keep-git-dir` for git sources.
    pub keep_git_dir: bool,
    /// `--checksum` of a remote source.
    pub checksum: Option<String>,
    /// `--unpack`: `None` unless given (archives from the context are unpacked by default).
    pub unpack: Option<bool>,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// The whole instruction.
    pub span: Span,
}

struct SourcesAndDest {
    sources: Vec<String>,
    contents: Vec<SourceContent>,
    dest: String,
}

fn check_count(req: &Request<'_>, cmd: &str) -> Result<(), Diagnostic> {
    if req.args.len() >= 2 {
        return Ok(());
    }
    let msg = format!(
        "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
    );
    Err(match req.args.first() {
        Some(a) => req.error_at(a, msg),
        None => req.keyword_error(msg),
    })
}

fn sources_and_dest(req: &Request<'_>, cmd: &str) -> Result<SourcesAndDest, Diagnostic> {
    let Some((dest, srcs)) = req.args.split_last() else {
        return Err(req.keyword_error(format!("{cmd} requires at least two arguments")));
    };
    // A word that looks like a heredoc but is malformed is an ordinary word, as in BuildKit.
    let heredoc = |w: &str| parse_heredoc(w).ok().flatten();
    if heredoc(dest).is_some() {
        return Err(req.error_at(
            dest,
            format!("{cmd} cannot accept a heredoc as a destination"),
        ));
    }
    let mut sources = Vec::new();
    let mut contents = Vec::new();
    for src in srcs {
        let Some(h) = heredoc(src) else {
            sources.push(src.clone());
            continue;
        };
        let body = req
            .node
            .heredocs
            .iter()
            .find(|b| b.name == h.name)
            .map_or("", |b| b.content.as_str());
        let data = if h.chomp {
            chomp_heredoc_content(body)
        } else {
            body.to_owned()
        };
        contents.push(SourceContent {
            path: h.name,
            data,
            expand: h.expand,
        });
    }
    Ok(SourcesAndDest {
        sources,
        contents,
        dest: dest.clone(),
    })
}

pub(crate) fn parse_copy(mut req: Request<'_>) -> Result<CopyInstruction, Diagnostic> {
    check_count(&req, "COPY")?;
    req.flags.add_strings("exclude");
    req.flags.add_bool("parents", false);
    req.flags.add_string("chown", "");
    req.flags.add_string("from", "");
    req.flags.add_string("chmod", "");
    req.flags.add_bool("link", false);
    req.parse_flags()?;
    let sd = sources_and_dest(&req, "COPY")?;
    let f = &req.flags;
    Ok(CopyInstruction {
        sources: sd.sources,
        contents: sd.contents,
        dest: sd.dest,
        from: f.opt_string("from"),
        chown: f.opt_string("chown"),
        chmod: f.opt_string("chmod"),
        link: f.bool("link"),
        parents: f.bool("parents"),
        excludes: f.strings("exclude").to_vec(),
        span: req.span(),
    })
}

pub(crate) fn parse_add(mut req: Request<'_>) -> Result<AddInstruction, Diagnostic> {
    check_count(&req, "ADD")?;
    req.flags.add_strings("exclude");
    req.flags.add_string("chown", "");
    req.flags.add_string("chmod", "");
    req.flags.add_bool("link", false);
    req.flags.add_bool("keep-git-dir", false);
    req.flags.add_string("checksum", "");
    req.flags.add_bool("unpack", false);
    req.parse_flags()?;
    let sd = sources_and_dest(&req, "ADD")?;
    let f = &req.flags;
    Ok(AddInstruction {
        sources: sd.sources,
        contents: sd.contents,
        dest: sd.dest,
        chown: f.opt_string("chown"),
        chmod: f.opt_string("chmod"),
        link: f.bool("link"),
        keep_git_dir: f.bool("keep-git-dir"),
        checksum: f.opt_string("checksum"),
        unpack: f.is_used("unpack").then(|| f.bool("unpack")),
        excludes: f.strings("exclude").to_vec(),
        span: req.span(),
    })
}

#[cfg(test)]
mod tests {
    use crate::instructions::test_support::node;
    use crate::instructions::{Instruction, parse_instruction};
    use crate::parser::Heredoc;

    #[test]
    fn copy_flags() {
        let n = node(
            "COPY",
            &[
                "--from=build",
                "--chown=1:2",
                "--chmod=644",
                "--link",
                "--parents",
                "--exclude=*.md",
                "--exclude=x",
            ],
            &["a", "b", "/dst/"],
        );
        let Ok(Instruction::Copy(c)) = parse_instruction(&n, &n.original) else {
            panic!()
        };
        assert_eq!(c.sources, ["a", "b"]);
        assert_eq!(c.dest, "/dst/");
        assert_eq!(c.from.as_deref(), Some("build"));
        assert_eq!((c.link, c.parents), (true, true));
        assert_eq!(c.excludes, ["*.md", "x"]);
    }

    #[test]
    fn add_flags() {
        let n = node(
            "ADD",
            &["--checksum=sha256:abc", "--keep-git-dir", "--unpack=false"],
            &["https://x/y.tar", "/"],
        );
        let Ok(Instruction::Add(a)) = parse_instruction(&n, &n.original) else {
            panic!()
        };
        assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
        assert!(a.keep_git_dir);
        assert_eq!(a.unpack, Some(false));
        let n = node("ADD", &["--from=x"], &["a", "b"]);
        assert_eq!(
            parse_instruction(&n, &n.original).unwrap_err().message,
            "unknown flag: --from"
        );
    }

    #[test]
    fn heredoc_sources() {
        let mut n = node("COPY", &[], &["<<-EOF", "<<'B'", "/dst"]);
        n.heredocs = vec![
            Heredoc {
                name: "EOF".into(),
                content: "\tx\n".into(),
                expand: true,
                chomp: true,
                file_descriptor: 0,
            },
            Heredoc {
                name: "B".into(),
                content: "$y\n".into(),
                expand: false,
                chomp: false,
                file_descriptor: 0,
            },
        ];
        let Ok(Instruction::Copy(c)) = parse_instruction(&n, &n.original) else {
            panic!()
        };
        assert!(c.sources.is_empty());
        assert_eq!(c.contents[0].data, "x\n");
        assert_eq!(
            (c.contents[1].path.as_str(), c.contents[1].expand),
            ("B", false)
        );
    }

    #[test]
    fn count_and_destination_errors() {
        let n = node("COPY", &[], &["arg1"]);
        let e = parse_instruction(&n, &n.original).unwrap_err();
        assert_eq!(
            e.message,
            "COPY requires at least two arguments, but only one was provided. Destination could not be determined"
        );
        assert_eq!(&n.original[e.span.start..e.span.end], "arg1");
        let n = node("COPY", &[], &["/foo", "<<EOF"]);
        let e = parse_instruction(&n, &n.original).unwrap_err();
        assert_eq!(e.message, "COPY cannot accept a heredoc as a destination");
        assert_eq!(&n.original[e.span.start..e.span.end], "<<EOF");
    }
}
