//! ARG and ENV scoping, as BuildKit applies it:
//!
//! * ARGs before the first FROM are *global*: usable in FROM lines (base name, `--platform`),
//!   with `--build-arg` overriding their defaults; the predefined platform ARGs
//!   (`TARGETPLATFORM`, `BUILDARCH`, …) are global too.
//! * Inside a stage nothing global is visible until an `ARG NAME` redeclares it; a redeclared
//!   ARG without a default takes the global value. `--build-arg` overrides any declared ARG.
//! * ENV shadows an ARG of the same name; ENV persists into the image config, ARG does not.
//! * The predefined proxy ARGs (`HTTP_PROXY`, …) reach RUN when passed with `--build-arg`,
//!   without a declaration, and are never persisted.

use std::collections::BTreeMap;

use crate::shell::{Env, Lexer, ShellError};

/// The proxy variables BuildKit passes to RUN without an ARG declaration: a build arg named
/// like one of these in any case sets both the upper- and the lower-case variable
/// (`proxyEnvFromBuildArgs` matches with EqualFold, `proxyEnvList` writes both).
pub const PROXY_ARGS: [&str; 5] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// An OCI platform (`os/arch[/variant]`): the one kiln-llb defines.
pub use kiln_llb::Platform;

/// What the user passed on the command line that affects expansion.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `--build-arg NAME=value`.
    pub build_args: BTreeMap<String, String>,
    /// `--platform` (the target platform); the host's when not given.
    pub target_platform: Platform,
    /// Whether `--platform` was given: then the image is labelled with it whatever its base
    /// says, as BuildKit does; without it the base's platform stands.
    pub explicit_platform: bool,
    /// The platform the build runs on.
    pub build_platform: Platform,
    /// Whether step names carry the platform (one of a multi-platform build's graphs).
    pub platform_in_names: bool,
    /// `--target`.
    pub target: Option<String>,
    /// `--network`: how RUN steps without a `--network` of their own (or with
    /// `--network=default`) reach the network.
    pub network: crate::instructions::NetworkMode,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            build_args: BTreeMap::new(),
            target_platform: Platform::host(),
            explicit_platform: false,
            build_platform: Platform::host(),
            platform_in_names: false,
            target: None,
            network: crate::instructions::NetworkMode::Default,
        }
    }
}

impl BuildOptions {
    /// The predefined ARGs in BuildKit's names (`defaultArgs`): the platforms, and
    /// `TARGETSTAGE`, the stage being built (`--target`, else the last stage's name, else
    /// `default`). A `--build-arg` of the same name overrides each, as in BuildKit.
    pub fn builtin_args(&self, last_stage: Option<&str>) -> Vec<(String, String)> {
        let target = self
            .target
            .as_deref()
            .or(last_stage)
            .filter(|t| !t.is_empty())
            .unwrap_or("default");
        let mut args = self.platform_args();
        args.push(("TARGETSTAGE".to_owned(), target.to_owned()));
        for (k, v) in &mut args {
            if let Some(given) = self.build_args.get(k.as_str()) {
                v.clone_from(given);
            }
        }
        args
    }

    /// The predefined platform ARGs in BuildKit's names.
    pub fn platform_args(&self) -> Vec<(String, String)> {
        let t = &self.target_platform;
        let b = &self.build_platform;
        [
            ("TARGETPLATFORM", t.to_string()),
            ("TARGETOS", t.os.clone()),
            ("TARGETARCH", t.architecture.clone()),
            ("TARGETVARIANT", t.variant.clone()),
            ("BUILDPLATFORM", b.to_string()),
            ("BUILDOS", b.os.clone()),
            ("BUILDARCH", b.architecture.clone()),
            ("BUILDVARIANT", b.variant.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// One `NAME[=default]` of an ARG instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default, unexpanded, when one was written.
    pub default: Option<String>,
}

/// The scope FROM lines are expanded in: global ARGs and the predefined platform ARGs.
#[derive(Debug, Clone, Default)]
pub struct GlobalScope {
    /// Name → value; `None` for an ARG declared without any value.
    values: Vec<(String, Option<String>)>,
}

impl GlobalScope {
    /// Evaluates the global ARGs in order: each default is expanded with the ones before it,
    /// and `--build-arg` overrides it. `last_stage` is the name of the Dockerfile's last
    /// stage (for `TARGETSTAGE`).
    pub fn new(
        decls: &[ArgDecl],
        opts: &BuildOptions,
        lexer: &Lexer,
        last_stage: Option<&str>,
    ) -> Result<Self, (usize, ShellError)> {
        let mut scope = GlobalScope {
            values: opts
                .builtin_args(last_stage)
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect(),
        };
        for (i, d) in decls.iter().enumerate() {
            let value = match (opts.build_args.get(&d.name), &d.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(def)) => Some(lexer.process_word(def, &scope).map_err(|e| (i, e))?),
                (None, None) => None,
            };
            scope.set(&d.name, value);
        }
        Ok(scope)
    }

    fn set(&mut self, name: &str, value: Option<String>) {
        self.values.retain(|(k, _)| k != name);
        self.values.push((name.to_owned(), value));
    }

    /// The global value of `name` (declared with a value, or predefined).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

impl Env for GlobalScope {
    fn get(&self, name: &str) -> Option<String> {
        self.value(name).map(str::to_owned)
    }
}

/// The scope inside one stage: its ENV (inherited from the base, then set by ENV) and the
/// ARGs declared so far.
#[derive(Debug, Clone, Default)]
pub struct StageScope {
    env: Vec<(String, String)>,
    args: Vec<(String, Option<String>)>,
}

impl StageScope {
    /// A stage whose base image (or base stage) has this environment.
    pub fn with_env(env: Vec<(String, String)>) -> Self {
        StageScope {
            env,
            args: Vec::new(),
        }
    }

    /// Declares an ARG: `--build-arg` wins, then the written default (expanded in this
    /// scope), then the global value of the same name.
    pub fn declare_arg(
        &mut self,
        decl: &ArgDecl,
        global: &GlobalScope,
        opts: &BuildOptions,
        lexer: &Lexer,
    ) -> Result<(), ShellError> {
        let value = match (opts.build_args.get(&decl.name), &decl.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(def)) => Some(lexer.process_word(def, self)?),
            (None, None) => global.value(&decl.name).map(str::to_owned),
        };
        self.args.retain(|(k, _)| *k != decl.name);
        self.args.push((decl.name.clone(), value));
        Ok(())
    }

    /// Sets an ENV variable (the value already expanded).
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// The image environment (what ENV persisted), in order.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The declared ARGs with their values, in order (never persisted).
    pub fn args(&self) -> &[(String, Option<String>)] {
        &self.args
    }

    /// The environment a RUN step sees: declared ARGs with a value, then ENV (which shadows
    /// them). Order is declaration order. Proxy build args come apart ([`proxy_env`]).
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, v: &str| {
            out.retain(|(key, _)| key != k);
            out.push((k.to_owned(), v.to_owned()));
        };
        for (k, v) in &self.args {
            if let Some(v) = v {
                push(k, v);
            }
        }
        for (k, v) in &self.env {
            push(k, v);
        }
        out
    }
}

/// The proxy variables a RUN gets from the build args without declaring them: a build arg
/// named like one of [`PROXY_ARGS`] in any case sets both the upper- and the lower-case
/// variable (BuildKit's `proxyEnvFromBuildArgs` then `proxyEnvList`). They are appended after
/// the step's own variables, which win, and are not part of the step's cache key.
pub fn proxy_env(opts: &BuildOptions) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for proxy in PROXY_ARGS {
        // BuildKit walks the build args in sorted order, so the last match wins.
        let Some(value) = opts
            .build_args
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(proxy))
            .map(|(_, v)| v)
            .next_back()
        else {
            continue;
        };
        out.push((proxy.to_owned(), value.clone()));
        out.push((proxy.to_ascii_lowercase(), value.clone()));
    }
    out
}

impl Env for StageScope {
    fn get(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.env.iter().rev().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(name: &str, default: Option<&str>) -> ArgDecl {
        ArgDecl {
            name: name.into(),
            default: default.map(Into::into),
        }
    }

    #[test]
    fn global_defaults_expand_in_order_and_build_args_override() {
        let lex = Lexer::new('\\');
        let mut opts = BuildOptions::default();
        let g = GlobalScope::new(
            &[
                decl("A", Some("1")),
                decl("B", Some("${A}2")),
                decl("C", None),
            ],
            &opts,
            &lex,
            None,
        )
        .unwrap();
        assert_eq!(g.value("B"), Some("12"));
        assert_eq!(g.value("C"), None);
        opts.build_args.insert("A".into(), "x".into());
        let g = GlobalScope::new(
            &[decl("A", Some("1")), decl("B", Some("${A}2"))],
            &opts,
            &lex,
            None,
        )
        .unwrap();
        assert_eq!(g.value("B"), Some("x2"));
    }

    #[test]
    fn platform_args_are_global_but_not_in_stages_until_declared() {
        let lex = Lexer::new('\\');
        let opts = BuildOptions {
            target_platform: Platform::parse("linux/arm/v7").unwrap(),
            ..BuildOptions::default()
        };
        let g = GlobalScope::new(&[], &opts, &lex, None).unwrap();
        assert_eq!(g.value("TARGETPLATFORM"), Some("linux/arm/v7"));
        let mut s = StageScope::default();
        assert_eq!(s.get("TARGETARCH"), None);
        s.declare_arg(&decl("TARGETARCH", None), &g, &opts, &lex)
            .unwrap();
        assert_eq!(s.get("TARGETARCH").as_deref(), Some("arm"));
    }

    #[test]
    fn global_arg_needs_redeclaration_inside_a_stage() {
        let lex = Lexer::new('\\');
        let opts = BuildOptions::default();
        let g = GlobalScope::new(&[decl("V", Some("1.0"))], &opts, &lex, None).unwrap();
        let mut s = StageScope::default();
        assert_eq!(lex.process_word("v$V", &s).unwrap(), "v");
        s.declare_arg(&decl("V", None), &g, &opts, &lex).unwrap();
        assert_eq!(lex.process_word("v$V", &s).unwrap(), "v1.0");
    }

    #[test]
    fn env_shadows_arg_and_build_arg_overrides_default() {
        let lex = Lexer::new('\\');
        let mut opts = BuildOptions::default();
        opts.build_args.insert("X".into(), "cli".into());
        let g = GlobalScope::default();
        let mut s = StageScope::default();
        s.declare_arg(&decl("X", Some("default")), &g, &opts, &lex)
            .unwrap();
        assert_eq!(s.get("X").as_deref(), Some("cli"));
        s.set_env("X", "env");
        assert_eq!(s.get("X").as_deref(), Some("env"));
        let run = s.run_env();
        assert_eq!(run, [("X".to_owned(), "env".to_owned())]);
    }

    #[test]
    fn proxy_build_args_reach_run_without_declaration() {
        let mut opts = BuildOptions::default();
        opts.build_args
            .insert("HTTP_PROXY".into(), "http://p:3128".into());
        opts.build_args.insert("UNDECLARED".into(), "x".into());
        opts.build_args.insert("no_proxy".into(), "npvalue".into());
        let s = StageScope::default();
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        // BuildKit's testBuiltinArgs: `--build-arg http_proxy=…` is seen as $HTTP_PROXY too.
        assert_eq!(
            proxy_env(&opts),
            [
                pair("HTTP_PROXY", "http://p:3128"),
                pair("http_proxy", "http://p:3128"),
                pair("NO_PROXY", "npvalue"),
                pair("no_proxy", "npvalue"),
            ]
        );
        assert!(s.run_env().is_empty());
        assert_eq!(s.get("HTTP_PROXY"), None);
    }

    #[test]
    fn targetstage_is_the_target_else_the_last_stage_else_default() {
        let lex = Lexer::new('\\');
        let mut opts = BuildOptions::default();
        let stage = |opts: &BuildOptions, last: Option<&str>| {
            GlobalScope::new(&[], opts, &lex, last)
                .unwrap()
                .value("TARGETSTAGE")
                .map(str::to_owned)
        };
        assert_eq!(stage(&opts, None).as_deref(), Some("default"));
        assert_eq!(stage(&opts, Some("final")).as_deref(), Some("final"));
        opts.target = Some("foo".into());
        assert_eq!(stage(&opts, Some("final")).as_deref(), Some("foo"));
        opts.build_args.insert("TARGETSTAGE".into(), "given".into());
        assert_eq!(stage(&opts, Some("final")).as_deref(), Some("given"));
    }
}
