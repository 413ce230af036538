//! The scheduler, apart from what it schedules (BuildKit's `solver/scheduler.go` is the
//! model): a graph of steps, each run at most once whoever asks for it (a diamond's shared
//! input runs once), its inputs run concurrently before it, its own work on a blocking thread,
//! and the first error or a cancellation ending the walk. What a step is and does — a source,
//! a copy, a RUN — belongs to the [`Steps`] it is given; the scheduler knows only indexes.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::OnceCell;

/// The steps a scheduler runs: a graph whose inputs always come before their users.
pub(crate) trait Steps: Send + Sync + 'static {
    /// What a step produces (shared by every step that reads it).
    type Output: Clone + Send + Sync + 'static;
    /// Why a step failed.
    type Error: Clone + Send + Sync + 'static;

    /// How many steps there are (numbered from 0).
    fn count(&self) -> usize;

    /// The steps `step` reads, each with a smaller number.
    fn inputs(&self, step: usize) -> Result<Vec<usize>, Self::Error>;

    /// Runs `step` on a blocking thread, its inputs' outputs at hand.
    fn run(
        &self,
        step: usize,
        inputs: &BTreeMap<usize, Self::Output>,
    ) -> Result<Self::Output, Self::Error>;

    /// The error of a step that was asked for but not run: an unknown number, an input
    /// defined after its user, a task that panicked, or a cancelled build (`why` says which).
    fn not_run(&self, step: usize, why: NotRun) -> Self::Error;

    /// Whether the build was cancelled: steps not yet started are then not run.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Why a step that was asked for did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotRun {
    /// No step has that number.
    NoSuchStep,
    /// It reads a step with a number not smaller than its own.
    ReadsLaterStep,
    /// Its task (or an input's) panicked or was aborted.
    TaskFailed(String),
    /// The build was cancelled before it started.
    Cancelled,
}

impl NotRun {
    /// Whether the graph itself is wrong, rather than the run.
    pub(crate) fn is_definition(&self) -> bool {
        matches!(self, NotRun::NoSuchStep | NotRun::ReadsLaterStep)
    }
}

impl std::fmt::Display for NotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRun::NoSuchStep => f.write_str("no such step"),
            NotRun::ReadsLaterStep => f.write_str("it reads a step defined after it"),
            NotRun::TaskFailed(e) => write!(f, "task failed: {e}"),
            NotRun::Cancelled => f.write_str("build cancelled"),
        }
    }
}

type Outcome<S> = Result<<S as Steps>::Output, <S as Steps>::Error>;
type Eval<S> = Pin<Box<dyn Future<Output = Outcome<S>> + Send>>;

/// Runs the steps of one build, each once.
pub(crate) struct Scheduler<S: Steps> {
    steps: Arc<S>,
    cells: Vec<OnceCell<Outcome<S>>>,
}

impl<S: Steps> std::fmt::Debug for Scheduler<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("steps", &self.cells.len())
            .finish()
    }
}

impl<S: Steps> Scheduler<S> {
    /// A scheduler for `steps`, nothing run yet.
    pub(crate) fn new(steps: Arc<S>) -> Arc<Self> {
        let cells = (0..steps.count()).map(|_| OnceCell::new()).collect();
        Arc::new(Scheduler { steps, cells })
    }

    /// The steps being scheduled.
    pub(crate) fn steps(&self) -> &Arc<S> {
        &self.steps
    }

    /// `step`'s output: run (with what it needs) the first time it is asked for, shared after.
    pub(crate) fn eval(self: Arc<Self>, step: usize) -> Eval<S> {
        Box::pin(async move {
            let Some(cell) = self.cells.get(step) else {
                return Err(self.steps.not_run(step, NotRun::NoSuchStep));
            };
            cell.get_or_init(|| {
                let this = self.clone();
                async move { this.compute(step).await }
            })
            .await
            .clone()
        })
    }

    async fn compute(self: Arc<Self>, step: usize) -> Outcome<S> {
        let mut handles = Vec::new();
        for input in self.steps.inputs(step)? {
            // Inputs come first, so no walk can loop.
            if input >= step {
                return Err(self.steps.not_run(step, NotRun::ReadsLaterStep));
            }
            handles.push((input, tokio::spawn(self.clone().eval(input))));
        }
        let mut inputs = BTreeMap::new();
        for (input, handle) in handles {
            let output = handle
                .await
                .map_err(|e| self.steps.not_run(input, NotRun::TaskFailed(e.to_string())))??;
            inputs.insert(input, output);
        }
        if self.steps.cancelled() {
            return Err(self.steps.not_run(step, NotRun::Cancelled));
        }
        let steps = self.steps.clone();
        tokio::task::spawn_blocking(move || steps.run(step, &inputs))
            .await
            .map_err(|e| self.steps.not_run(step, NotRun::TaskFailed(e.to_string())))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    /// Fake steps: each sums its inputs plus its own number, optionally sleeping, failing or
    /// panicking; every run is counted and timed.
    #[derive(Default)]
    struct Fake {
        inputs: Vec<Vec<usize>>,
        sleep: Duration,
        fail: Option<usize>,
        panic: Option<usize>,
        cancel_after_first: bool,
        cancelled: AtomicBool,
        runs: Mutex<Vec<(usize, Instant, Instant)>>,
        started: AtomicUsize,
    }

    impl Steps for Fake {
        type Output = u64;
        type Error = String;

        fn count(&self) -> usize {
            self.inputs.len()
        }
        fn inputs(&self, step: usize) -> Result<Vec<usize>, String> {
            Ok(self.inputs[step].clone())
        }
        fn run(&self, step: usize, inputs: &BTreeMap<usize, u64>) -> Result<u64, String> {
            self.started.fetch_add(1, Ordering::SeqCst);
            let begin = Instant::now();
            std::thread::sleep(self.sleep);
            if self.panic == Some(step) {
                panic!("step {step} panics");
            }
            self.runs
                .lock()
                .unwrap()
                .push((step, begin, Instant::now()));
            if self.cancel_after_first {
                self.cancelled.store(true, Ordering::SeqCst);
            }
            if self.fail == Some(step) {
                return Err(format!("step {step} failed"));
            }
            Ok(step as u64 + inputs.values().sum::<u64>())
        }
        fn not_run(&self, step: usize, why: NotRun) -> String {
            format!("step {step} not run: {why}")
        }
        fn cancelled(&self) -> bool {
            self.cancelled.load(Ordering::SeqCst)
        }
    }

    fn solve(fake: Fake, target: usize) -> (Result<u64, String>, Arc<Fake>) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let steps = Arc::new(fake);
        let scheduler = Scheduler::new(steps.clone());
        let out = rt.block_on(scheduler.eval(target));
        (out, steps)
    }

    /// 0 → 1, 0 → 2, (1, 2) → 3: the shared input runs once, each step once.
    fn diamond() -> Vec<Vec<usize>> {
        vec![vec![], vec![0], vec![0], vec![1, 2]]
    }

    #[test]
    fn a_shared_input_runs_once_and_outputs_flow() {
        let (out, steps) = solve(
            Fake {
                inputs: diamond(),
                ..Fake::default()
            },
            3,
        );
        // 3 + (1 + 0) + (2 + 0)
        assert_eq!(out, Ok(6));
        let mut ran: Vec<usize> = steps.runs.lock().unwrap().iter().map(|r| r.0).collect();
        ran.sort_unstable();
        assert_eq!(ran, [0, 1, 2, 3]);
    }

    #[test]
    fn independent_inputs_run_at_the_same_time() {
        let (out, steps) = solve(
            Fake {
                inputs: diamond(),
                sleep: Duration::from_millis(150),
                ..Fake::default()
            },
            3,
        );
        assert!(out.is_ok());
        let runs = steps.runs.lock().unwrap();
        let span = |s: usize| runs.iter().find(|r| r.0 == s).map(|r| (r.1, r.2)).unwrap();
        let (b1, e1) = span(1);
        let (b2, e2) = span(2);
        assert!(b1 < e2 && b2 < e1, "steps 1 and 2 overlap");
        let (b3, _) = span(3);
        assert!(b3 >= e1 && b3 >= e2, "a step starts after its inputs end");
    }

    #[test]
    fn an_error_stops_the_steps_that_need_it() {
        let (out, steps) = solve(
            Fake {
                inputs: diamond(),
                fail: Some(1),
                ..Fake::default()
            },
            3,
        );
        assert_eq!(out, Err("step 1 failed".to_owned()));
        assert!(steps.runs.lock().unwrap().iter().all(|r| r.0 != 3));
    }

    #[test]
    fn a_panicking_step_is_an_error_naming_it() {
        let (out, _) = solve(
            Fake {
                inputs: diamond(),
                panic: Some(2),
                ..Fake::default()
            },
            3,
        );
        let err = out.unwrap_err();
        assert!(err.starts_with("step 2 not run: task failed"), "{err}");
    }

    #[test]
    fn after_a_cancellation_nothing_more_starts() {
        let (out, steps) = solve(
            Fake {
                inputs: vec![vec![], vec![0], vec![1]],
                cancel_after_first: true,
                ..Fake::default()
            },
            2,
        );
        assert_eq!(out, Err("step 1 not run: build cancelled".to_owned()));
        assert_eq!(steps.started.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_step_reading_a_later_one_or_a_missing_one_is_refused() {
        let (out, steps) = solve(
            Fake {
                inputs: vec![vec![1], vec![]],
                ..Fake::default()
            },
            0,
        );
        assert_eq!(
            out,
            Err("step 0 not run: it reads a step defined after it".to_owned())
        );
        assert_eq!(steps.started.load(Ordering::SeqCst), 0);
        let (out, _) = solve(
            Fake {
                inputs: vec![vec![]],
                ..Fake::default()
            },
            7,
        );
        assert_eq!(out, Err("step 7 not run: no such step".to_owned()));
    }

    #[test]
    fn a_cached_result_answers_every_later_ask() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let steps = Arc::new(Fake {
            inputs: diamond(),
            ..Fake::default()
        });
        let scheduler = Scheduler::new(steps.clone());
        let first = rt.block_on(scheduler.clone().eval(3));
        let again = rt.block_on(scheduler.clone().eval(1));
        assert_eq!((first, again), (Ok(6), Ok(1)));
        assert_eq!(steps.started.load(Ordering::SeqCst), 4, "nothing ran twice");
    }
}
