//! Channels as sinks (their receivers are [`Stream`](futures_core::Stream)s, so sources
//! already).
//!
//! A sender as the last stage sends every item into its channel, waiting while the channel
//! is full (back-pressure reaches the pipeline's source). An owned sender is dropped when the
//! input ends, so the channel ends for its receivers once no other sender is left; a
//! borrowed one (`&tx`) is left as it is.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::stage::{Input, IntoSink, Sink, StageError};
use crate::sync::{AsyncSender, SendError, SendState, Sender};

/// The two kinds of sender.
trait Sends<T> {
    fn poll_send_state(
        &self,
        state: &mut SendState<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>>;
    fn abandon_send_state(&self, state: &mut SendState<T>);
}

impl<T> Sends<T> for Sender<T> {
    fn poll_send_state(
        &self,
        state: &mut SendState<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        Sender::poll_send_state(self, state, cx)
    }
    fn abandon_send_state(&self, state: &mut SendState<T>) {
        Sender::abandon_send_state(self, state);
    }
}

impl<T> Sends<T> for AsyncSender<T> {
    fn poll_send_state(
        &self,
        state: &mut SendState<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        AsyncSender::poll_send_state(self, state, cx)
    }
    fn abandon_send_state(&self, state: &mut SendState<T>) {
        AsyncSender::abandon_send_state(self, state);
    }
}

/// A sink that sends every item into a channel: a [`Sender`] or an [`AsyncSender`], owned
/// or borrowed. If the channel closes, the pipeline stops and the item comes back.
pub struct ChanSink<S, T> {
    /// `None` once the input ended (an owned sender is dropped then).
    sender: Option<S>,
    /// The send in progress, if any.
    state: SendState<T>,
    /// Withdraws a waiting send (when the sink is dropped in the middle of one).
    abandon: fn(&S, &mut SendState<T>),
}

fn chan_sink<S: AsSender<T>, T>(sender: S) -> ChanSink<S, T> {
    ChanSink {
        sender: Some(sender),
        state: SendState::Done,
        abandon: |s, state| s.sender().abandon_send_state(state),
    }
}

// Nothing is pinned structurally: the send state is plain data moved under `&mut`.
impl<S, T> Unpin for ChanSink<S, T> {}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the channel is closed: its receivers are gone",
    )
}

macro_rules! sends {
    ($sender:ident) => {
        impl<T: 'static> Sink for ChanSink<$sender<T>, T> {
            type Item = T;
            fn poll_sink(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                input: &mut Input<'_, T>,
            ) -> Poll<Result<(), StageError>> {
                poll_chan(self.get_mut(), cx, input)
            }
        }

        impl<'a, T: 'static> Sink for ChanSink<&'a $sender<T>, T> {
            type Item = T;
            fn poll_sink(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                input: &mut Input<'_, T>,
            ) -> Poll<Result<(), StageError>> {
                poll_chan(self.get_mut(), cx, input)
            }
        }

        impl<T: 'static> IntoSink<T> for $sender<T> {
            type Sink = ChanSink<$sender<T>, T>;
            fn into_sink(self) -> Self::Sink {
                chan_sink(self)
            }
        }

        impl<'a, T: 'static> IntoSink<T> for &'a $sender<T> {
            type Sink = ChanSink<&'a $sender<T>, T>;
            fn into_sink(self) -> Self::Sink {
                chan_sink(self)
            }
        }
    };
}

sends!(Sender);
sends!(AsyncSender);

/// What a sender is, whether owned or borrowed.
trait AsSender<T> {
    fn sender(&self) -> &dyn Sends<T>;
}

macro_rules! as_sender {
    ($($sender:ident),*) => {$(
        impl<T> AsSender<T> for $sender<T> {
            fn sender(&self) -> &dyn Sends<T> {
                self
            }
        }
        impl<T> AsSender<T> for &$sender<T> {
            fn sender(&self) -> &dyn Sends<T> {
                *self
            }
        }
    )*};
}

as_sender!(Sender, AsyncSender);

fn poll_chan<S: AsSender<T>, T: 'static>(
    this: &mut ChanSink<S, T>,
    cx: &mut Context<'_>,
    input: &mut Input<'_, T>,
) -> Poll<Result<(), StageError>> {
    loop {
        let Some(sender) = &this.sender else {
            return Poll::Ready(Ok(()));
        };
        if !matches!(this.state, SendState::Done) {
            match sender.sender().poll_send_state(&mut this.state, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(SendError(item))) => {
                    return Poll::Ready(Err(StageError::with_item(closed(), item)));
                }
            }
        }
        match input.take() {
            Some(item) => this.state = SendState::Idle(Some(item)),
            None if input.is_ended() => {
                this.sender = None;
                return Poll::Ready(Ok(()));
            }
            None => return Poll::Pending,
        }
    }
}

impl<S, T> Drop for ChanSink<S, T> {
    fn drop(&mut self) {
        if let SendState::Waiting(_) = self.state
            && let Some(sender) = &self.sender
        {
            // Withdraw the parked value, so the channel does not keep a dead waiter.
            (self.abandon)(sender, &mut self.state);
        }
    }
}

impl<S, T> fmt::Debug for ChanSink<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChanSink")
            .field("open", &self.sender.is_some())
            .field("sending", &!matches!(self.state, SendState::Done))
            .finish()
    }
}
