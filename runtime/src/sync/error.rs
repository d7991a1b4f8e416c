//! The errors of the coroutine primitives.
//!
//! Every error here is a value with a message a person can act on. Errors that carry a value
//! the caller gave us (a send that could not complete) hand that value back: nothing is lost.

use std::error::Error;
use std::fmt;

/// A boxed error that may cross threads, as carried by [`PromiseError::Failed`].
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why a promise's future resolved without a value.
///
/// ```
/// use iomgr::sync::PromiseError;
///
/// let e = PromiseError::Broken;
/// assert!(e.to_string().contains("dropped without a value"));
/// ```
#[derive(Debug)]
pub enum PromiseError {
    /// The promise was dropped without being set or failed: no value will ever come.
    Broken,
    /// The promise was rejected with this error ([`Promise::fail`](super::Promise::fail)).
    Failed(BoxError),
}

impl PromiseError {
    /// Whether this is [`PromiseError::Broken`].
    pub fn is_broken(&self) -> bool {
        matches!(self, PromiseError::Broken)
    }
}

impl fmt::Display for PromiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromiseError::Broken => {
                f.write_str("broken promise: the promise was dropped without a value")
            }
            PromiseError::Failed(e) => write!(f, "the promise was failed: {e}"),
        }
    }
}

impl Error for PromiseError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            PromiseError::Broken => None,
            PromiseError::Failed(e) => Some(&**e),
        }
    }
}

/// A send that could not complete because the channel is closed; the value comes back.
///
/// ```
/// # iomgr::sync::doc_block_on(async {
/// let (tx, rx) = iomgr::sync::chan::<String>(1);
/// rx.close();
/// let err = tx.send("hello".to_string()).await.unwrap_err();
/// assert_eq!(err.into_inner(), "hello");
/// # });
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("send failed: the channel is closed (the value is handed back in the error)")
    }
}

impl<T> Error for SendError<T> {}

/// Why [`try_send`](super::Sender::try_send) did not send; the value comes back either way.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The channel is at capacity (or other senders are already waiting): try again later,
    /// or use the async `send`, which waits its turn.
    Full(T),
    /// The channel is closed: no send will ever succeed.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }

    /// Whether the channel was full (rather than closed).
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// Whether the channel was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        TrySendError::Closed(e.0)
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str(
                "try_send failed: the channel is full (the value is handed back in the error)",
            ),
            TrySendError::Closed(_) => f.write_str(
                "try_send failed: the channel is closed (the value is handed back in the error)",
            ),
        }
    }
}

impl<T> Error for TrySendError<T> {}

/// Why [`try_recv`](super::Receiver::try_recv) returned no item.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing is buffered right now, but more may come.
    Empty,
    /// The channel is closed and every item has been received: nothing more will come.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("try_recv found no item: the channel is empty"),
            TryRecvError::Closed => {
                f.write_str("try_recv found no item: the channel is closed and drained")
            }
        }
    }
}

impl Error for TryRecvError {}
