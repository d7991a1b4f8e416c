//! Task dumps: where every live task of a runtime is waiting.
//!
//! Each task in the runtime's table carries its type's name, the place it was spawned from,
//! and, for an `#[iomgr::task]`, the `.await` it was last suspended at (the task numbers its
//! `.await`s; see [`AwaitPoint`]). [`Runtime::dump`](super::Runtime::dump) lists them on the
//! runtime's thread; [`Handle::dump`](super::Handle::dump) asks from any thread (the runtime
//! answers at its next turn).
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! let rt = iomgr::Runtime::new()?;
//! let handle = rt.handle();
//! std::thread::spawn(move || {
//!     std::thread::sleep(std::time::Duration::from_secs(10));
//!     for task in handle.dump().wait().unwrap_or_default() {
//!         eprintln!("{task}");
//!     }
//! });
//! rt.block_on(async { /* serve */ });
//! # Ok(()) }
//! ```
//!
//! A line reads, for a task suspended in an `#[iomgr::task]`:
//!
//! ```text
//! task 3 `echo` (EchoTask), spawned at src/main.rs:40:13, waiting at src/main.rs:22:28 `stream.read(buf).await`
//! ```

use std::fmt;
use std::panic::Location;

use crate::task::AwaitPoint;

/// One live task of a runtime, as [`Runtime::dump`](super::Runtime::dump) sees it.
#[derive(Debug, Clone)]
pub struct TaskDump {
    /// The task's number in its runtime (unique among its live tasks).
    pub id: u64,
    /// The type of the task's future, as `std::any::type_name` gives it.
    pub type_name: &'static str,
    /// Where the task was spawned.
    pub spawned_at: &'static Location<'static>,
    /// The `.await` the task was suspended at when it last ran: `Some` for an
    /// `#[iomgr::task]`, `None` for other futures (whose `.await`s are not numbered) and for a
    /// task that has not run yet.
    pub waiting_at: Option<&'static AwaitPoint>,
    /// Whether the task is queued to run (it was woken since it last ran).
    pub ready: bool,
}

impl TaskDump {
    /// The task's short name: the function's name for an `#[iomgr::task]`, else the
    /// future's type without its module path (`handler::{{closure}}` for an `async fn`).
    pub fn name(&self) -> String {
        if let Some(point) = self.waiting_at {
            return point.task.to_string();
        }
        short_type_name(self.type_name)
    }
}

/// `iomgr::task::Task<app::__EchoTaskBody, 344, 8>` -> `EchoTask`; `app::net::serve::{{closure}}`
/// -> `serve::{{closure}}`.
fn short_type_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("iomgr::task::Task<") {
        let body = rest.split([',', '<']).next().unwrap_or(rest);
        let last = body.rsplit("::").next().unwrap_or(body);
        if let Some(task) = last.strip_prefix("__").and_then(|l| l.strip_suffix("Body")) {
            return task.to_string();
        }
    }
    let head = name.split('<').next().unwrap_or(name);
    let mut parts: Vec<&str> = head.split("::").collect();
    let keep = if parts.last().is_some_and(|p| p.starts_with("{{")) {
        2
    } else {
        1
    };
    let start = parts.len().saturating_sub(keep);
    parts.drain(..start);
    parts.join("::")
}

impl fmt::Display for TaskDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task {} `{}`, spawned at {}",
            self.id,
            self.name(),
            self.spawned_at
        )?;
        match self.waiting_at {
            Some(p) => write!(
                f,
                ", waiting at {}:{}:{} `{}.await`",
                p.file, p.line, p.column, p.expr
            )?,
            None => f.write_str(", waiting (no numbered .await)")?,
        }
        if self.ready {
            f.write_str(", ready to run")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::short_type_name;

    #[test]
    fn short_names() {
        assert_eq!(
            short_type_name("iomgr::task::Task<app::__EchoTaskBody, 344, 8>"),
            "EchoTask"
        );
        assert_eq!(
            short_type_name("iomgr::task::Task<app::m::__ShowTaskBody<u8, &str>, 1024, 16>"),
            "ShowTask"
        );
        assert_eq!(
            short_type_name("app::net::serve::{{closure}}"),
            "serve::{{closure}}"
        );
        assert_eq!(short_type_name("core::future::ready::Ready<u8>"), "Ready");
    }
}
