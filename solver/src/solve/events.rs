//! Progress events: the solver reports what each vertex does; the binary renders them.

use std::time::Duration;

/// What happened to a vertex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// It started running.
    Started,
    /// Its result came from the cache.
    Cached,
    /// It finished.
    Done(Duration),
    /// It failed.
    Error(String),
    /// A line of output.
    Log(String),
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The op index.
    pub vertex: usize,
    /// Its progress name.
    pub name: String,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// An event for `vertex`.
    pub fn new(vertex: usize, name: String, kind: EventKind) -> Self {
        Event { vertex, name, kind }
    }
}

/// Where events go; sending never blocks and never fails the build.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    tx: Option<std::sync::mpsc::Sender<Event>>,
}

impl Progress {
    /// A sink that drops everything.
    pub fn none() -> Self {
        Progress { tx: None }
    }

    /// A sink and the receiving end.
    pub fn channel() -> (Self, std::sync::mpsc::Receiver<Event>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (Progress { tx: Some(tx) }, rx)
    }

    /// Sends one event.
    pub fn send(&self, e: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(e);
        }
    }
}
