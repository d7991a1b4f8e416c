//! [`PipelineError`]: which stage failed, how, and the item it had in hand.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::io;

use super::stage::StageError;

/// What a stage is to its pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The first stage.
    Source,
    /// A middle stage.
    Adapter,
    /// The last stage.
    Sink,
}

/// Why a pipeline stopped: the stage that failed (its position and its expression as written
/// in `pipeline!`), the error, and the item that stage had in hand, if any.
///
/// ```
/// # iomgr::Runtime::new()?.block_on(async {
/// use iomgr::pipeline::{Lines, Role};
///
/// let input = iomgr::pipeline::iter(["short\n", "much too long for the limit\n"]);
/// let mut out: Vec<String> = Vec::new();
/// let err = iomgr::pipeline! { input => Lines::new(8) => &mut out }.await.unwrap_err();
/// assert_eq!(err.stage(), 1);
/// assert_eq!(err.role(), Role::Adapter);
/// assert_eq!(err.expr(), "Lines::new(8)");
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
/// assert_eq!(out, ["short"]);
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct PipelineError {
    stage: usize,
    expr: &'static str,
    role: Role,
    error: io::Error,
    item: Option<Box<dyn Any>>,
}

impl PipelineError {
    pub(crate) fn new(stage: usize, expr: &'static str, role: Role, e: StageError) -> Self {
        PipelineError {
            stage,
            expr,
            role,
            error: e.error,
            item: e.item,
        }
    }

    /// The failing stage's position: 0 is the source, the sink is last.
    pub fn stage(&self) -> usize {
        self.stage
    }

    /// The failing stage's expression, as written in `pipeline!`.
    pub fn expr(&self) -> &'static str {
        self.expr
    }

    /// Whether the failing stage is the source, an adapter or the sink.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The error's kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.error.kind()
    }

    /// The error.
    pub fn error(&self) -> &io::Error {
        &self.error
    }

    /// The error, without the stage.
    pub fn into_error(self) -> io::Error {
        self.error
    }

    /// Whether an item was handed back.
    pub fn has_item(&self) -> bool {
        self.item.is_some()
    }

    /// Takes the item the failing stage had in hand, if it is a `T` (a sink's failed write
    /// hands back its buffer, a framing adapter the input it was reading).
    pub fn take_item<T: 'static>(&mut self) -> Option<T> {
        let item = self.item.take()?;
        match item.downcast::<T>() {
            Ok(item) => Some(*item),
            Err(item) => {
                self.item = Some(item);
                None
            }
        }
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.role {
            Role::Source => "source",
            Role::Adapter => "adapter",
            Role::Sink => "sink",
        };
        write!(
            f,
            "pipeline stage {} ({role} `{}`) failed: {}",
            self.stage, self.expr, self.error
        )
    }
}

impl fmt::Debug for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineError")
            .field("stage", &self.stage)
            .field("expr", &self.expr)
            .field("role", &self.role)
            .field("error", &self.error)
            .field("has_item", &self.item.is_some())
            .finish()
    }
}

impl Error for PipelineError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.error)
    }
}

impl From<PipelineError> for io::Error {
    /// Keeps the error's kind; the message names the stage.
    fn from(e: PipelineError) -> io::Error {
        let message = e.to_string();
        io::Error::new(e.error.kind(), message)
    }
}
