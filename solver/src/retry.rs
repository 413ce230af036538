//! Retries with exponential backoff for every network transfer (registry calls, HTTP
//! sources): a transient failure is tried again after a wait that doubles up to a bound, a
//! fatal one ends at once, and a cancelled build stops waiting. What counts as transient is
//! each caller's to say; how long to wait and when to give up is decided here.

use std::future::Future;
use std::time::Duration;

/// How often a wait looks at Ctrl-C.
const CANCEL_POLL: Duration = Duration::from_millis(200);

/// How many attempts, and how long to wait between them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    /// Attempts in all (the first included).
    pub(crate) attempts: u32,
    /// The wait after the first failure; doubled after each later one.
    pub(crate) first: Duration,
    /// The longest wait.
    pub(crate) max: Duration,
}

/// The outcome of one failed attempt.
#[derive(Debug)]
pub(crate) enum Failure<E> {
    /// Worth trying again; the message says what happened.
    Transient(String),
    /// Final.
    Fatal(E),
}

/// Why [`retry`] gave up.
#[derive(Debug)]
pub(crate) enum GaveUp<E> {
    /// An attempt failed for good.
    Fatal(E),
    /// Every attempt failed transiently; the last one's message.
    Exhausted {
        /// How many attempts were made.
        attempts: u32,
        /// What the last one said.
        last: String,
    },
    /// The build was cancelled.
    Cancelled,
}

/// A transient failure about to be retried, for progress output.
#[derive(Debug)]
pub(crate) struct Retrying<'a> {
    /// What the failed attempt said.
    pub(crate) message: &'a str,
    /// How long kiln waits before the next attempt.
    pub(crate) wait: Duration,
    /// The number of the next attempt (2 for the first retry).
    pub(crate) next: u32,
    /// Attempts in all.
    pub(crate) of: u32,
}

/// Runs `attempt` until it succeeds, fails fatally, or `policy.attempts` transient
/// failures; `on_retry` hears of each retry before its wait.
pub(crate) async fn retry<T, E, F, Fut>(
    policy: &Backoff,
    mut attempt: F,
    mut on_retry: impl FnMut(Retrying<'_>),
) -> Result<T, GaveUp<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure<E>>>,
{
    let mut wait = policy.first;
    let mut last = String::new();
    for n in 1..=policy.attempts {
        if crate::cancel::is_cancelled() {
            return Err(GaveUp::Cancelled);
        }
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(Failure::Fatal(e)) => return Err(GaveUp::Fatal(e)),
            Err(Failure::Transient(message)) => {
                if n < policy.attempts {
                    on_retry(Retrying {
                        message: &message,
                        wait,
                        next: n + 1,
                        of: policy.attempts,
                    });
                    if cancellable(tokio::time::sleep(wait)).await.is_none() {
                        return Err(GaveUp::Cancelled);
                    }
                    wait = (wait * 2).min(policy.max);
                }
                last = message;
            }
        }
    }
    Err(GaveUp::Exhausted {
        attempts: policy.attempts,
        last,
    })
}

/// Runs `fut` to its end, or `None` as soon as the build is cancelled.
pub(crate) async fn cancellable<T>(fut: impl Future<Output = T>) -> Option<T> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            v = &mut fut => return Some(v),
            () = tokio::time::sleep(CANCEL_POLL) => {
                if crate::cancel::is_cancelled() {
                    return None;
                }
            }
        }
    }
}

/// An error with its causes: reqwest's Display hides why ("error sending request"), the
/// chain says it ("connection refused").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const QUICK: Backoff = Backoff {
        attempts: 3,
        first: Duration::from_millis(1),
        max: Duration::from_millis(2),
    };

    fn run<T>(fut: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(fut)
    }

    #[test]
    fn transient_failures_are_retried_until_success() {
        let mut calls = 0;
        let mut heard = Vec::new();
        let got: Result<u32, GaveUp<()>> = run(retry(
            &QUICK,
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(Failure::Transient(format!("try {n}")))
                    } else {
                        Ok(n)
                    }
                }
            },
            |r| heard.push((r.message.to_owned(), r.next, r.of)),
        ));
        assert_eq!(got.unwrap(), 3);
        assert_eq!(
            heard,
            [("try 1".to_owned(), 2, 3), ("try 2".to_owned(), 3, 3)]
        );
    }

    #[test]
    fn a_fatal_failure_ends_at_once_and_exhaustion_keeps_the_last_message() {
        let mut calls = 0;
        let fatal: Result<(), GaveUp<&str>> = run(retry(
            &QUICK,
            || {
                calls += 1;
                async { Err(Failure::Fatal("no")) }
            },
            |_| {},
        ));
        assert!(matches!(fatal, Err(GaveUp::Fatal("no"))));
        assert_eq!(calls, 1);
        let mut n = 0;
        let exhausted: Result<(), GaveUp<()>> = run(retry(
            &QUICK,
            || {
                n += 1;
                let m = n;
                async move { Err(Failure::Transient(format!("down {m}"))) }
            },
            |_| {},
        ));
        match exhausted {
            Err(GaveUp::Exhausted { attempts, last }) => {
                assert_eq!((attempts, last.as_str()), (3, "down 3"));
            }
            other => panic!("{other:?}"),
        }
    }
}
