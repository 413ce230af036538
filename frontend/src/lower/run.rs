//! RUN: the command line (shell form through SHELL, exec form, heredocs as BuildKit runs
//! them), its environment (ENV plus the ARGs in scope, never persisted), USER, WORKDIR,
//! network and `--mount`s, lowered to an exec op; and BuildKit's history text for it.

use kiln_llb::{CacheSharing, ExecMount, ExecOp, ImageConfig, NetworkMode as LlbNetwork, OpId};

use super::{Lowering, StageState, with_shell};
use crate::diagnostics::Diagnostic;
use crate::instructions::{
    Mount, MountType, NetworkMode, RunInstruction, SecurityMode, ShareMode, parse_mount,
};
use crate::parser::{chomp_heredoc_content, parse_heredoc};
use crate::stages::SourceRef;

/// The build arg that names RUN's container (BuildKit's dockerui `hostname` option).
const SANDBOX_HOSTNAME_ARG: &str = "BUILDKIT_SANDBOX_HOSTNAME";

/// The argv of a RUN, as BuildKit's dispatchRun builds it; `inline` receives a heredoc
/// script with a shebang, which runs as a file mounted at `/dev/pipes/<name>`.
pub(super) fn run_args(
    config: &ImageConfig,
    run: &RunInstruction,
    inline: &mut Option<ExecMount>,
) -> Vec<String> {
    let cmd = &run.command;
    let mut args = cmd.cmd_line.clone();
    if !cmd.files.is_empty() && cmd.prepend_shell && args.len() == 1 {
        let single = cmd.files.len() == 1 && matches!(parse_heredoc(&args[0]), Ok(Some(_)));
        if single {
            let f = &cmd.files[0];
            let data = if f.chomp {
                chomp_heredoc_content(&f.data)
            } else {
                f.data.clone()
            };
            if data.starts_with("#!") {
                let target = format!("/dev/pipes/{}", f.name);
                *inline = Some(ExecMount::Inline {
                    target: target.clone(),
                    data: data.into_bytes(),
                    mode: 0o755,
                });
                args = vec![target];
            } else {
                args = vec![data];
            }
        } else {
            let mut full = args[0].clone();
            for f in &cmd.files {
                full.push('\n');
                full.push_str(&f.data);
                full.push_str(&f.name);
            }
            args = vec![full];
        }
    }
    with_shell(config, &args, cmd.prepend_shell)
}

/// BuildKit's `runCommandString`: `|N K=v … args` when build args are in scope.
pub(super) fn history_text(args: &[String], build_args: &[(String, String)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !build_args.is_empty() {
        parts.push(format!("|{}", build_args.len()));
        parts.extend(build_args.iter().map(|(k, v)| format!("{k}={v}")));
    }
    parts.extend(args.iter().cloned());
    format!("RUN {}", parts.join(" "))
}

impl Lowering<'_> {
    /// Lowers one RUN into an exec op on top of the stage.
    pub(super) fn run(
        &mut self,
        st: &mut StageState,
        run: &RunInstruction,
        refs: &[SourceRef],
    ) -> Result<(), Diagnostic> {
        if run.security == SecurityMode::Insecure {
            return Err(
                Diagnostic::error("security.insecure is not allowed", run.span)
                    .with_hint("kiln does not grant the security.insecure entitlement"),
            );
        }
        if let Some(d) = run.devices.first() {
            return Err(Diagnostic::error(
                format!("device {} is not available to this builder", d.name),
                run.span,
            ));
        }
        let mut inline = None;
        let args = run_args(&st.config, run, &mut inline);
        let mut mounts: Vec<ExecMount> = inline.into_iter().collect();
        let mut from_refs = refs.iter();
        for m in &run.mounts {
            let mount = match &m.mount {
                Some(mount) => mount.clone(),
                None => {
                    let scope = st.scope.clone();
                    let lexer = self.lexer;
                    let ex = |w: &str| lexer.process_word(w, &scope).map_err(|e| e.to_string());
                    parse_mount(&m.value, Some(&ex))
                        .map_err(|e| Diagnostic::error(e.to_string(), m.span))?
                }
            };
            let source = match &mount.from {
                Some(_) => Some(match from_refs.next() {
                    Some(SourceRef::Stage(j)) => {
                        self.outs[*j].as_ref().map(|(op, _)| *op).ok_or_else(|| {
                            Diagnostic::error("internal: mount source stage not lowered", m.span)
                        })?
                    }
                    Some(SourceRef::Image(r)) => {
                        let source = self.source_for(r, &st.platform);
                        self.def.push(
                            kiln_llb::Op::Source(source),
                            self.location(format!("[internal] load {r}"), m.span),
                        )
                    }
                    None => {
                        return Err(Diagnostic::error(
                            "internal: mount source not resolved",
                            m.span,
                        ));
                    }
                }),
                None => None,
            };
            mounts.push(self.lower_mount(&mount, source, &st.config.config.working_dir, m.span)?);
        }
        let env: Vec<String> = st
            .scope
            .run_env()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let proxy_env: Vec<String> = crate::scope::proxy_env(self.opts.build)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let build_args: Vec<(String, String)> = st
            .scope
            .args()
            .iter()
            .filter_map(|(k, v)| {
                let v = st.scope_env_value(k).or_else(|| v.clone())?;
                Some((k.clone(), v))
            })
            .collect();
        let cwd = if st.config.config.working_dir.is_empty() {
            "/".to_owned()
        } else {
            st.config.config.working_dir.clone()
        };
        let exec = ExecOp {
            base: st.op,
            args: args.clone(),
            env,
            cwd,
            user: st.config.config.user.clone(),
            // `default` is the build's `--network`, whose own default is the host's.
            network: match (run.network, self.opts.build.network) {
                (NetworkMode::None, _) | (NetworkMode::Default, NetworkMode::None) => {
                    LlbNetwork::None
                }
                _ => LlbNetwork::Host,
            },
            mounts,
            hostname: self
                .opts
                .build
                .build_args
                .get(SANDBOX_HOSTNAME_ARG)
                .cloned(),
            proxy_env,
            platform: Some(st.platform.clone()),
        };
        let display = run.command.cmd_line.join(" ");
        let name = self.step_name(st, &format!("RUN {display}"));
        st.op = self
            .def
            .push(kiln_llb::Op::Exec(exec), self.location(name, run.span));
        let text = history_text(&args, &build_args);
        self.history(st, format!("{text} # buildkit"), true);
        Ok(())
    }

    fn lower_mount(
        &mut self,
        m: &Mount,
        source: Option<OpId>,
        workdir: &str,
        span: crate::span::Span,
    ) -> Result<ExecMount, Diagnostic> {
        let abs = |t: &str| super::paths::clean(&super::paths::workdir(workdir, t));
        let target = m.target.as_deref().map(abs);
        let need_target = || {
            target.clone().ok_or_else(|| {
                Diagnostic::error("mount target is required", span)
                    .with_hint("add target=/path to the --mount value")
            })
        };
        let context = |this: &mut Self| {
            this.def.push(
                kiln_llb::Op::Source(kiln_llb::Source::Local {
                    name: "context".to_owned(),
                }),
                this.location("[internal] load build context".to_owned(), span),
            )
        };
        Ok(match m.mount_type {
            MountType::Bind => ExecMount::Bind {
                source: match source {
                    Some(s) => s,
                    None => context(self),
                },
                selector: m.source.clone().unwrap_or_else(|| "/".to_owned()),
                target: need_target()?,
                readonly: m.read_only,
            },
            MountType::Cache => {
                let target = need_target()?;
                let seed = match (source, &m.source) {
                    (Some(s), src) => Some((s, src.clone().unwrap_or_else(|| "/".to_owned()))),
                    (None, _) => None,
                };
                ExecMount::Cache {
                    // BuildKit: `path.Clean` of the target as written (before WORKDIR).
                    id: m.id.clone().unwrap_or_else(|| {
                        super::paths::clean(m.target.as_deref().unwrap_or_default())
                    }),
                    target,
                    sharing: match m.sharing {
                        Some(ShareMode::Private) => CacheSharing::Private,
                        Some(ShareMode::Locked) => CacheSharing::Locked,
                        Some(ShareMode::Shared) | None => CacheSharing::Shared,
                    },
                    mode: m.mode,
                    uid: m.uid,
                    gid: m.gid,
                    readonly: m.read_only,
                    seed,
                }
            }
            MountType::Tmpfs => ExecMount::Tmpfs {
                target: need_target()?,
                size: m.size_limit.and_then(|s| u64::try_from(s).ok()),
            },
            MountType::Secret => {
                let id = match (&m.id, &target) {
                    (Some(id), _) => id.clone(),
                    (None, Some(t)) => t.rsplit('/').next().unwrap_or_default().to_owned(),
                    (None, None) => {
                        return Err(Diagnostic::error(
                            "secret mount needs an id or a target",
                            span,
                        ));
                    }
                };
                let env = m
                    .env
                    .clone()
                    .map(|e| if e.is_empty() { id.clone() } else { e });
                let target = match (&target, &env) {
                    (Some(t), _) => Some(t.clone()),
                    (None, Some(_)) => None,
                    (None, None) => Some(format!("/run/secrets/{id}")),
                };
                ExecMount::Secret {
                    id,
                    target,
                    env,
                    required: m.required,
                    mode: m.mode.unwrap_or(0o400),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                }
            }
            MountType::Ssh => ExecMount::Ssh {
                id: m.id.clone().unwrap_or_else(|| "default".to_owned()),
                target: target.unwrap_or_else(|| "/run/buildkit/ssh_agent.0".to_owned()),
                required: m.required,
                mode: m.mode.unwrap_or(0o600),
                uid: m.uid.unwrap_or(0),
                gid: m.gid.unwrap_or(0),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lists_build_args_like_buildkit() {
        let args = vec!["/bin/sh".to_owned(), "-c".to_owned(), "make".to_owned()];
        assert_eq!(history_text(&args, &[]), "RUN /bin/sh -c make");
        let ba = vec![("V".to_owned(), "1".to_owned())];
        assert_eq!(history_text(&args, &ba), "RUN |1 V=1 /bin/sh -c make");
    }
}
