//! A stream's two halves, owned: read with one, write with the other, in different tasks or
//! in the same pipeline.

use std::fmt;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use super::{TcpStream, UnixStream};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::op::{Op, Recv, Send};

/// The read half of a stream split with `into_split` (`TcpStream::into_split`,
/// `UnixStream::into_split`). The stream closes when both halves are dropped.
pub struct ReadHalf<S> {
    stream: Rc<S>,
}

/// The write half of a stream split with `into_split`. The stream closes when both halves
/// are dropped; [`shutdown`](WriteHalf::shutdown) ends the write direction before that.
pub struct WriteHalf<S> {
    stream: Rc<S>,
}

impl<S> ReadHalf<S> {
    /// Puts the halves back together, if `write` is this stream's other half.
    pub fn reunite(self, write: WriteHalf<S>) -> Result<S, (ReadHalf<S>, WriteHalf<S>)> {
        if !Rc::ptr_eq(&self.stream, &write.stream) {
            return Err((self, write));
        }
        drop(write);
        match Rc::try_unwrap(self.stream) {
            Ok(stream) => Ok(stream),
            Err(_) => unreachable!("only the two halves hold the stream"),
        }
    }
}

macro_rules! split {
    ($ty:ident) => {
        impl $ty {
            /// Splits the stream into an owned read half and an owned write half.
            pub fn into_split(self) -> (ReadHalf<$ty>, WriteHalf<$ty>) {
                let stream = Rc::new(self);
                (
                    ReadHalf {
                        stream: stream.clone(),
                    },
                    WriteHalf { stream },
                )
            }
        }

        impl ReadHalf<$ty> {
            /// Reads into `buf` from its start, up to its capacity; `Ok(0)` is the end of
            /// the stream.
            pub fn read<B: IoBufMut>(&self, buf: B) -> Op<'_, Recv<B>> {
                self.stream.read(buf)
            }

            /// Reads until `buf`'s whole capacity is filled.
            pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> BufResult<(), B> {
                self.stream.read_exact(buf).await
            }
        }

        impl WriteHalf<$ty> {
            /// Writes `buf`'s initialized bytes; returns how many were sent.
            pub fn write<B: IoBuf>(&self, buf: B) -> Op<'_, Send<B>> {
                self.stream.write(buf)
            }

            /// Writes every initialized byte of `buf`.
            pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
                self.stream.write_all(buf).await
            }

            /// Shuts down the write direction: the peer reads the end of the stream.
            pub async fn shutdown(&self) -> std::io::Result<()> {
                self.stream.shutdown(Shutdown::Write).await
            }
        }
    };
}

split!(TcpStream);
split!(UnixStream);

impl<S: AsRawFd> AsRawFd for ReadHalf<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

impl<S: AsRawFd> AsRawFd for WriteHalf<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

impl<S: fmt::Debug> fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReadHalf").field(&self.stream).finish()
    }
}

impl<S: fmt::Debug> fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WriteHalf").field(&self.stream).finish()
    }
}
