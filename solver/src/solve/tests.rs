//! The solver end to end with a fake executor: no root, no container.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use kiln_llb::{Definition, ExecOp, NetworkMode, Op, Source, SourceLocation};

use super::{SolveError, SolveOptions, Solver, StepError};
use crate::executor::{ExecError, ExecSpec, Executor, ExitStatus, OutputSink};
use crate::store::Store;
use crate::store::test_dir::TestDir;

/// Prints a line and exits with 3.
#[derive(Debug)]
struct Failing;

impl Executor for Failing {
    fn run(&self, _spec: &ExecSpec, sink: &dyn OutputSink) -> Result<ExitStatus, ExecError> {
        sink.write(1, b"token=hunter2\n");
        Ok(ExitStatus::Code(3))
    }
}

fn location(name: &str, span: (usize, usize)) -> SourceLocation {
    SourceLocation {
        name: name.into(),
        file: "Dockerfile".into(),
        line: 2,
        span,
        stage: String::new(),
    }
}

#[test]
fn a_failed_step_is_wrapped_with_its_op_span_and_source() {
    let dir = TestDir::new("solve-step-error");
    let store = Store::open(&dir.path().join("root")).unwrap();
    let mut def = Definition::default();
    let base = def.push(Op::Source(Source::Scratch), location("scratch", (0, 12)));
    let run = def.push(
        Op::Exec(ExecOp {
            base,
            args: vec!["/bin/false".into()],
            env: Vec::new(),
            cwd: "/".into(),
            user: "0:0".into(),
            network: NetworkMode::None,
            mounts: Vec::new(),
            hostname: None,
            proxy_env: Vec::new(),
            platform: None,
        }),
        location("[stage-0 2/2] RUN false", (13, 27)),
    );
    let opts = SolveOptions {
        executor: Some(Arc::new(Failing)),
        secrets: [("tok".to_owned(), b"hunter2".to_vec())].into(),
        ..SolveOptions::default()
    };
    let (progress, _rx) = super::Progress::channel();
    let solver = Solver::new(store, def, opts, progress).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = runtime.block_on(solver.solve(run)).unwrap_err();
    let SolveError::Op {
        name,
        message,
        span,
        step,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(name, "[stage-0 2/2] RUN false");
    assert_eq!(*span, Some((13, 27)));
    let Some(step) = step.as_deref() else {
        panic!("no source: {err:?}")
    };
    assert!(
        matches!(step, StepError::ProcessFailed { how, .. } if how == "exit code: 3"),
        "{step:?}"
    );
    // The shown message is redacted; the source error keeps what the process said.
    assert!(message.contains("exit code: 3"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(std::error::Error::source(&err).is_some());
}
