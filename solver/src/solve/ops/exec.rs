//! The exec step (RUN): keyed by its parameters, its base's key and the content its bind
//! mounts read (cache-mount contents and secrets deliberately not); run with the base layers
//! as overlay lowerdirs, its mounts prepared (`mounts`), the executor running the process,
//! and the upperdir — minus the stubs created for mount points (`upper`) — written as one
//! layer. Secret
//! values are never logged: output lines are redacted before they reach progress.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kiln_llb::{CacheKey, ExecMount, ExecOp, NetworkMode, Op, OpId};

use super::mounts::prepare_mount;
use super::rootfs::{rootfs_of, store_layer};
use super::upper::{prune_unchanged_dirs, remove_mount_stubs};
use super::{Inputs, LayerStep, input};
use crate::cache::key;
use crate::executor::{ExecSpec, ExitStatus, Network, OutputSink};
use crate::solve::step_error::{StepError, io_err};
use crate::solve::{Event, EventKind, Inner, LayerRecord, OpResult, SolveError};

impl LayerStep for ExecOp {
    fn base(&self) -> OpId {
        self.base
    }

    fn sources(&self) -> Vec<OpId> {
        self.mounts
            .iter()
            .filter_map(|m| match m {
                ExecMount::Bind { source, .. } => Some(*source),
                _ => None,
            })
            .collect()
    }

    fn key(&self, cx: &Inner, id: OpId, op: &Op, inputs: &Inputs) -> Result<CacheKey, SolveError> {
        let base = input(inputs, self.base, "base")?;
        let mut reads = Vec::new();
        for m in &self.mounts {
            if let ExecMount::Bind {
                source, selector, ..
            } = m
            {
                let src = input(inputs, *source, "mount source")?;
                reads.push(cx.read_of(id, src, std::slice::from_ref(selector))?);
            }
        }
        Ok(key::step(op, base.key(), &reads))
    }

    fn run(&self, cx: &Inner, id: OpId, inputs: &Inputs) -> Result<LayerRecord, StepError> {
        run_exec_op(cx, id, self, inputs)
    }
}

/// How many trailing output lines a failure message shows.
const TAIL_LINES: usize = 20;

/// Forwards output to progress, line by line, with secrets redacted, keeping a tail.
struct Sink<'a> {
    inner: &'a Inner,
    vertex: usize,
    name: String,
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    partial: [Vec<u8>; 2],
    tail: std::collections::VecDeque<String>,
}

impl Sink<'_> {
    fn redact(&self, line: &[u8]) -> String {
        let text = String::from_utf8_lossy(line);
        self.inner.redactor.redact(&text).into_owned()
    }

    fn emit(&self, state: &mut SinkState, line: &[u8]) {
        let text = self.redact(line);
        state.tail.push_back(text.clone());
        if state.tail.len() > TAIL_LINES {
            state.tail.pop_front();
        }
        self.inner.progress.send(Event::new(
            self.vertex,
            self.name.clone(),
            EventKind::Log(text),
        ));
    }

    fn flush(&self) -> Vec<String> {
        let Ok(mut st) = self.state.lock() else {
            return Vec::new();
        };
        for i in 0..2 {
            let rest = std::mem::take(&mut st.partial[i]);
            if !rest.is_empty() {
                self.emit(&mut st, &rest);
            }
        }
        st.tail.iter().cloned().collect()
    }
}

impl OutputSink for Sink<'_> {
    fn write(&self, stream: u8, data: &[u8]) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let i = usize::from(stream == 2);
        st.partial[i].extend_from_slice(data);
        while let Some(pos) = st.partial[i].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = st.partial[i].drain(..=pos).collect();
            self.emit(&mut st, &line[..line.len() - 1]);
        }
    }
}

/// Runs `exec` over its base and returns the layer it produced.
fn run_exec_op(
    inner: &Inner,
    id: OpId,
    exec: &ExecOp,
    inputs: &BTreeMap<OpId, Arc<OpResult>>,
) -> Result<LayerRecord, StepError> {
    let executor = inner.opts.executor.clone().ok_or_else(|| {
        StepError::Invalid("RUN needs an executor, and none is configured".to_owned())
    })?;
    if let Some(platform) = &exec.platform {
        crate::executor::emulation::check(
            platform,
            &kiln_llb::Platform::host(),
            std::path::Path::new(crate::executor::emulation::BINFMT_DIR),
        )
        .map_err(|e| StepError::Invalid(e.to_string()))?;
    }
    let base = &inputs[&exec.base];
    let lowerdirs = lower_dirs(inner, base)?;
    let scratch = inner.temp_dir("run")?;
    let upper = scratch.path().join("upper");
    let work = scratch.path().join("work");
    for d in [&upper, &work] {
        fs::create_dir(d).map_err(io_err(d.display()))?;
    }
    let base_rootfs = rootfs_of(inner, base)?;
    let (uid, gid) = crate::copy::exec_user(base_rootfs.as_deref(), &exec.user)?;
    let additional_gids = crate::copy::supplementary_gids(base_rootfs.as_deref(), &exec.user)
        .map_err(|e| StepError::Invalid(format!("USER {}: {e}", exec.user)))?;
    let mut env = exec.env.clone();
    // Proxies come after the step's own variables, which win (BuildKit appends them and the
    // process sees the first of two).
    for proxy in &exec.proxy_env {
        let key = proxy.split('=').next().unwrap_or_default();
        if !env.iter().any(|e| e.split('=').next() == Some(key)) {
            env.push(proxy.clone());
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", default_home(inner, base, uid)?));
    }
    let mut mounts = Vec::new();
    let mut locks = Vec::new();
    for (n, m) in exec.mounts.iter().enumerate() {
        prepare_mount(
            inner,
            m,
            n,
            inputs,
            scratch.path(),
            &mut mounts,
            &mut env,
            &mut locks,
        )?;
    }
    let spec = ExecSpec {
        lowerdirs: lowerdirs.clone(),
        upperdir: upper.clone(),
        workdir: work,
        args: exec.args.clone(),
        env,
        cwd: exec.cwd.clone(),
        uid,
        gid,
        additional_gids,
        hostname: exec
            .hostname
            .clone()
            .unwrap_or_else(|| "buildkitsandbox".to_owned()),
        network: match exec.network {
            NetworkMode::Host => Network::Host,
            NetworkMode::None => Network::None,
        },
        mounts,
    };
    let sink = Sink {
        inner,
        vertex: id.0,
        name: inner.name(id),
        state: Mutex::new(SinkState::default()),
    };
    let status = executor.run(&spec, &sink);
    let tail = sink.flush();
    drop(locks);
    let status = status?;
    if status != ExitStatus::Code(0) {
        let how = match status {
            ExitStatus::Code(c) => format!("exit code: {c}"),
            ExitStatus::Signal(s) => format!("killed by signal {s}"),
        };
        return Err(StepError::ProcessFailed {
            command: exec.args.join(" "),
            how,
            tail,
        });
    }
    remove_mount_stubs(&upper, &lowerdirs, &exec.mounts)?;
    prune_unchanged_dirs(&upper, &upper, &lowerdirs)?;
    store_layer(inner, id, &upper)
}

/// The diff id of a layer with no entries (1024 zero bytes): it changes nothing.
const EMPTY_LAYER: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// The base's layers as extracted snapshot directories, top-most first. Overlayfs refuses a
/// directory that appears twice (ELOOP), which identical layers — most often empty ones from
/// steps like `RUN true` — would cause: empty layers are left out, and of identical layers
/// the top-most is kept (re-applying the same diff higher up covers the lower copy).
fn lower_dirs(inner: &Inner, base: &OpResult) -> Result<Vec<PathBuf>, StepError> {
    inner.ensure_local(base.layers()).map_err(StepError::from)?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for l in base.layers().iter().rev() {
        if l.diff_id.as_ref() == EMPTY_LAYER {
            continue;
        }
        let diff_id = l.diff_id.clone();
        let blob = l.digest.clone();
        let content = inner.store.content().clone();
        let dir = inner
            .snapshots
            .layer_dir(&diff_id, move || {
                content
                    .open_blob(&blob)
                    .map_err(|e| crate::snapshot::SnapshotError::other(e.to_string()))
            })
            .map_err(|e| StepError::Invalid(format!("extracting layer {diff_id}: {e}")))?;
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    Ok(dirs)
}

/// HOME as runc sets it when the environment has none (and so as BuildKit and buildah give
/// it to RUN): the home of `uid`'s passwd entry in the base, else `/`.
fn default_home(inner: &Inner, base: &OpResult, uid: u32) -> Result<String, StepError> {
    let rootfs = rootfs_of(inner, base)?;
    let entry = crate::copy::passwd_by_uid(rootfs.as_deref(), uid)?;
    Ok(entry
        .and_then(|fields| fields.get(5).cloned())
        .filter(|home| !home.trim().is_empty())
        .unwrap_or_else(|| "/".to_owned()))
}
