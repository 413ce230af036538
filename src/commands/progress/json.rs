//! `--progress rawjson`: one JSON object per line on standard error, for programs.
//!
//! Every object has `time` (RFC 3339, UTC, milliseconds: when kiln wrote it) and `status`;
//! the other keys depend on the status. The keys are stable: new ones may be added, none is
//! renamed or removed.
//!
//! | `status` | keys besides `time` |
//! |---|---|
//! | `started` | `vertex`, `name` |
//! | `cached` | `vertex`, `name` |
//! | `done` | `vertex`, `name`, `duration_ms` |
//! | `error` | `vertex`, `name`, `message` (may span lines: the cause, then the output's tail) |
//! | `log` | `vertex`, `name`, `line` (one line of the step's output, no newline) |
//! | `note` | `message` (a pull, push or cache import/export outside any step; `warning: …`) |
//! | `summary` | `names` (array), `digest` (the manifest's: the image id), `config_digest`, `size` (compressed layer bytes), `steps_run`, `steps_cached`, `duration_ms` (the whole build) |
//!
//! `vertex` is the step's id in the build graph (an integer, the same for all of a step's
//! events; steps that run at once interleave), `name` is `[stage i/n] INSTRUCTION`. A
//! successful build ends with one `summary` object; a failed one with an `error` object and
//! the error report as text.

use std::sync::mpsc::Receiver;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kiln_solver::solve::{CommittedImage, Event, EventKind};
use serde_json::{Value, json};

use super::Stats;

/// Writes events until the sender is dropped; returns the counts.
pub(super) fn render(rx: Receiver<Event>) -> Stats {
    let mut stats = Stats::default();
    for e in rx {
        stats.count(&e);
        emit(&event(&e, &now()));
    }
    stats
}

/// The object for one event (keys in a fixed order: time, status, vertex, name, then the
/// status's own).
fn event(e: &Event, time: &str) -> String {
    let (status, extra) = match &e.kind {
        EventKind::Started => ("started", None),
        EventKind::Cached => ("cached", None),
        EventKind::Done(d) => ("done", Some(("duration_ms", json!(millis(*d))))),
        EventKind::Error(m) => ("error", Some(("message", json!(m)))),
        EventKind::Log(l) => ("log", Some(("line", json!(l)))),
    };
    let mut fields = vec![
        ("time", json!(time)),
        ("status", json!(status)),
        ("vertex", json!(e.vertex)),
        ("name", json!(e.name)),
    ];
    fields.extend(extra);
    object(&fields)
}

/// The closing `summary` object.
pub(super) fn summary(names: &[String], image: &CommittedImage, stats: &Stats, total: Duration) {
    emit(&object(&[
        ("time", json!(now())),
        ("status", json!("summary")),
        ("names", json!(names)),
        ("digest", json!(image.manifest_digest.to_string())),
        ("config_digest", json!(image.config_digest.to_string())),
        ("size", json!(image.layers_size)),
        ("steps_run", json!(stats.run)),
        ("steps_cached", json!(stats.cached)),
        ("duration_ms", json!(millis(total))),
    ]));
}

/// A `note` object.
pub(super) fn note(message: &str) {
    emit(&object(&[
        ("time", json!(now())),
        ("status", json!("note")),
        ("message", json!(message)),
    ]));
}

/// `{"k":v,…}` in the order given (serde_json's maps would sort the keys).
fn object(fields: &[(&str, Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(*k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn emit(line: &str) {
    crate::stderr::line(line);
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Now as RFC 3339 with milliseconds.
fn now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    with_millis(
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        d.subsec_millis(),
    )
}

fn with_millis(secs: i64, ms: u32) -> String {
    let t = crate::time::rfc3339(secs);
    let base = t.strip_suffix('Z').unwrap_or(&t);
    format!("{base}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_their_key_order_and_escape() {
        let e = Event::new(3, "[s 1/1] RUN \"x\"".into(), EventKind::Log("a\tb".into()));
        assert_eq!(
            event(&e, "T"),
            r#"{"time":"T","status":"log","vertex":3,"name":"[s 1/1] RUN \"x\"","line":"a\tb"}"#
        );
        let d = Event::new(1, "n".into(), EventKind::Done(Duration::from_millis(1500)));
        assert_eq!(
            event(&d, "T"),
            r#"{"time":"T","status":"done","vertex":1,"name":"n","duration_ms":1500}"#
        );
    }

    #[test]
    fn times_have_milliseconds() {
        assert_eq!(with_millis(1_700_000_000, 7), "2023-11-14T22:13:20.007Z");
    }
}
