//! The "until done" loops over owned buffers, written once for every kind of descriptor.
//!
//! A read or write may move fewer bytes than asked. `write_all` and `read_exact` repeat the op
//! on the rest of the buffer, passing it as a [`Slice`] and taking it back each time; the
//! caller supplies the op (a socket send, a positional file write, ...) as a closure that gets
//! the remaining slice and how many bytes are already done.

use std::future::Future;
use std::io;

use super::{BufExt, BufResult, IoBuf, IoBufMut, Slice};

/// Repeats `write` until every initialized byte of `buf` is written.
pub(crate) async fn write_all_with<B, F, Fut>(buf: B, mut write: F) -> BufResult<(), B>
where
    B: IoBuf,
    F: FnMut(Slice<B>, usize) -> Fut,
    Fut: Future<Output = BufResult<usize, Slice<B>>>,
{
    let total = buf.bytes_init();
    let mut done = 0;
    let mut buf = buf;
    while done < total {
        let (res, slice) = write(buf.slice(done..total), done).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => {
                let e = io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("the other side stopped accepting data after {done} of {total} bytes"),
                );
                return (Err(e), buf);
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}

/// Repeats `read` until `buf`'s whole capacity is filled.
pub(crate) async fn read_exact_with<B, F, Fut>(buf: B, mut read: F) -> BufResult<(), B>
where
    B: IoBufMut,
    F: FnMut(Slice<B>, usize) -> Fut,
    Fut: Future<Output = BufResult<usize, Slice<B>>>,
{
    let total = buf.bytes_total();
    let mut done = 0;
    let mut buf = buf;
    while done < total {
        let (res, slice) = read(buf.slice(done..total), done).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => {
                let e = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended after {done} of {total} bytes"),
                );
                return (Err(e), buf);
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}
