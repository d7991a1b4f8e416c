//! The `tracing` feature: spans and events for tasks and ops, for `tracing` subscribers.
//!
//! With `features = ["tracing"]`, iomgr emits, at `TRACE` level (targets `iomgr::task` and
//! `iomgr::op`):
//!
//! - `spawn` (task id, type name, spawn location) and `finish` (task id) events, and an
//!   `iomgr.poll` span entered around every poll of a task (task id);
//! - `submit` (op type, slot key) and `complete` (op type, slot key, result) events.
//!
//! Without the feature every hook below is an empty `#[inline(always)]` function: nothing is
//! compiled in, nothing is paid. The hooks take only values the caller has at hand, so the
//! feature changes no code path either.

use std::panic::Location;

#[cfg(feature = "tracing")]
mod on {
    use super::Location;

    /// `type_name` is asked for only here (finding it costs a virtual call).
    #[inline]
    pub(crate) fn task_spawned(
        id: u64,
        type_name: impl FnOnce() -> &'static str,
        at: &'static Location<'static>,
    ) {
        let type_name = type_name();
        tracing::trace!(target: "iomgr::task", task = id, name = type_name, spawned_at = %at, "spawn");
    }

    #[inline]
    pub(crate) fn task_finished(id: u64) {
        tracing::trace!(target: "iomgr::task", task = id, "finish");
    }

    /// Entered for one poll of a task; exited when dropped.
    pub(crate) struct PollSpan(#[allow(dead_code)] tracing::span::EnteredSpan);

    #[inline]
    pub(crate) fn task_poll(id: u64) -> PollSpan {
        PollSpan(tracing::trace_span!(target: "iomgr::task", "iomgr.poll", task = id).entered())
    }

    #[inline]
    pub(crate) fn op_submitted(op: &'static str, key: u64) {
        tracing::trace!(target: "iomgr::op", op, key, "submit");
    }

    #[inline]
    pub(crate) fn op_completed(op: &'static str, key: u64, result: i32) {
        tracing::trace!(target: "iomgr::op", op, key, result, "complete");
    }
}

#[cfg(not(feature = "tracing"))]
mod on {
    use super::Location;

    #[inline(always)]
    pub(crate) fn task_spawned(
        _: u64,
        _: impl FnOnce() -> &'static str,
        _: &'static Location<'static>,
    ) {
    }

    #[inline(always)]
    pub(crate) fn task_finished(_: u64) {}

    pub(crate) struct PollSpan;

    #[inline(always)]
    pub(crate) fn task_poll(_: u64) -> PollSpan {
        PollSpan
    }

    #[inline(always)]
    pub(crate) fn op_submitted(_: &'static str, _: u64) {}

    #[inline(always)]
    pub(crate) fn op_completed(_: &'static str, _: u64, _: i32) {}
}

pub(crate) use on::{op_completed, op_submitted, task_finished, task_poll, task_spawned};

#[cfg(all(test, feature = "tracing"))]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// Records the messages of events and the names of spans it sees.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    struct Message(Option<String>);
    impl tracing::field::Visit for Message {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = Some(format!("{value:?}"));
            }
        }
    }

    impl Subscriber for Recorder {
        fn enabled(&self, meta: &Metadata<'_>) -> bool {
            meta.target().starts_with("iomgr")
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            self.0
                .lock()
                .unwrap()
                .push(format!("span {}", span.metadata().name()));
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut m = Message(None);
            event.record(&mut m);
            let line = format!("{} {}", event.metadata().target(), m.0.unwrap_or_default());
            self.0.lock().unwrap().push(line);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    #[cfg_attr(miri, ignore = "builds a runtime (an io_uring)")]
    fn tasks_and_ops_are_traced() {
        let recorder = Recorder::default();
        let seen = recorder.0.clone();
        tracing::subscriber::with_default(recorder, || {
            let rt = crate::Runtime::new().unwrap();
            rt.block_on(async {
                crate::spawn(async {
                    crate::time::sleep(std::time::Duration::from_millis(1)).await;
                })
                .await
                .unwrap();
            });
        });
        let seen = seen.lock().unwrap().clone();
        for expected in [
            "iomgr::task spawn",
            "span iomgr.poll",
            "iomgr::op submit",
            "iomgr::op complete",
            "iomgr::task finish",
        ] {
            assert!(
                seen.iter().any(|s| s == expected),
                "no `{expected}` in {seen:#?}"
            );
        }
    }
}
