//! Progress events: the solver reports what each vertex does; the binary renders them.

use std::time::Duration;

use crate::secrets::Redactor;

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

/// Where events go; sending never blocks and never fails the build. Output lines and error
/// texts pass through the build's [`Redactor`] on their way out.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    tx: Option<std::sync::mpsc::Sender<Event>>,
    redactor: std::sync::Arc<Redactor>,
}

impl Progress {
    /// A sink that drops everything.
    pub fn none() -> Self {
        Progress::default()
    }

    /// A sink and the receiving end.
    pub fn channel() -> (Self, std::sync::mpsc::Receiver<Event>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (
            Progress {
                tx: Some(tx),
                redactor: Default::default(),
            },
            rx,
        )
    }

    /// This sink, masking `redactor`'s secrets in every text it sends.
    pub fn with_redactor(mut self, redactor: std::sync::Arc<Redactor>) -> Self {
        self.redactor = redactor;
        self
    }

    /// Sends one event.
    pub fn send(&self, mut e: Event) {
        let Some(tx) = &self.tx else {
            return;
        };
        if let EventKind::Log(text) | EventKind::Error(text) = &mut e.kind
            && let std::borrow::Cow::Owned(masked) = self.redactor.redact(text)
        {
            *text = masked;
        }
        let _ = tx.send(e);
    }
}

/// One vertex's view of the progress sink: what a step reports about itself, without
/// repeating its index and name at every call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vertex<'a> {
    progress: &'a Progress,
    id: usize,
    name: &'a str,
}

impl<'a> Vertex<'a> {
    /// Vertex `id`, shown as `name`, reporting to `progress`.
    pub(crate) fn new(progress: &'a Progress, id: usize, name: &'a str) -> Self {
        Vertex { progress, id, name }
    }

    fn send(&self, kind: EventKind) {
        self.progress
            .send(Event::new(self.id, self.name.to_owned(), kind));
    }

    /// It started running.
    pub(crate) fn started(&self) {
        self.send(EventKind::Started);
    }

    /// Its result came from the cache.
    pub(crate) fn cached(&self) {
        self.send(EventKind::Cached);
    }

    /// It finished after `took`.
    pub(crate) fn done(&self, took: Duration) {
        self.send(EventKind::Done(took));
    }

    /// A line of its output.
    pub(crate) fn log(&self, line: String) {
        self.send(EventKind::Log(line));
    }
}
