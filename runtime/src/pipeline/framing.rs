//! Framing: byte buffers in, whole frames out ([`Decoder`]s), and frames back to bytes
//! ([`Encoder`]s).
//!
//! A decoder as a stage (`=> Lines::new(8192)`) becomes a [`Decode`] adapter: it scans each
//! incoming buffer where it lies, and copies bytes aside only for a frame that spans two
//! buffers. Every decoder has a maximum frame size; a frame over it is an `InvalidData`
//! error, so a peer that never sends a newline costs at most that many bytes. An input that
//! ends inside a frame is an `UnexpectedEof` error: a partial frame is never given as if it
//! were whole.
//!
//! | decoder | frames | encoder |
//! |---|---|---|
//! | [`Lines::new(max)`](Lines::new) | `String`s, without `\n` or `\r\n` | [`Lines::encoder()`](Lines::encoder) |
//! | [`LengthDelimited::new(max)`](LengthDelimited::new) | `Vec<u8>` payloads after a length header | [`.encoder()`](LengthDelimited::encoder) |
//! | [`FixedSize::new(n)`](FixedSize::new) | `Vec<u8>`s of exactly `n` bytes | [`.encoder()`](FixedSize::encoder) |
//!
//! Implement [`Decoder`] or [`Encoder`] for your own protocol: the value is then a stage.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::chunk::Chunk;
use super::stage::{Adapter, Input, StageError};
use crate::buf::{IoBuf, Slice};

/// Bytes a decoder can read: what byte sources give, and the usual owned buffers.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a byte buffer: a decoder reads byte buffers",
    label = "the stage before this decoder gives `{Self}`",
    note = "decoders (`Lines`, `LengthDelimited`, `FixedSize`, ...) take `Chunk`, `Vec<u8>`, `String`, `Box<[u8]>`, `&'static [u8]` or `&'static str` items: convert with a function stage first (`=> |x| ...`)"
)]
pub trait AsBytes {
    /// The bytes.
    fn as_bytes(&self) -> &[u8];
}

/// Owned bytes an encoder can extend without copying where the type allows it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be encoded as bytes",
    label = "the stage before this encoder gives `{Self}`",
    note = "encoders take `String`, `Vec<u8>`, `Chunk`, `Box<[u8]>`, `&'static str` or `&'static [u8]` items: convert with a function stage first (`=> |x| ...`)"
)]
pub trait IntoBytes: AsBytes {
    /// The bytes as a vector (no copy for `String`, `Vec<u8>`, `Box<[u8]>`).
    fn into_bytes(self) -> Vec<u8>;
}

macro_rules! bytes {
    ($($ty:ty => $into:expr),* $(,)?) => {$(
        impl AsBytes for $ty {
            #[inline]
            fn as_bytes(&self) -> &[u8] {
                self.as_ref()
            }
        }
        impl IntoBytes for $ty {
            #[inline]
            fn into_bytes(self) -> Vec<u8> {
                let into: fn($ty) -> Vec<u8> = $into;
                into(self)
            }
        }
    )*};
}

bytes! {
    Chunk => Chunk::into_vec,
    Vec<u8> => |v| v,
    String => String::into_bytes,
    Box<[u8]> => Vec::from,
    &'static [u8] => <[u8]>::to_vec,
    &'static str => |s| s.as_bytes().to_vec(),
}

impl<B: IoBuf + AsBytes> AsBytes for Slice<B> {
    fn as_bytes(&self) -> &[u8] {
        self
    }
}

/// A protocol's framing, read side: finds whole frames in bytes.
///
/// ```
/// use std::io;
/// use iomgr::pipeline::Decoder;
///
/// /// Frames are bytes up to a 0 byte.
/// struct Nul(usize);
///
/// impl Decoder for Nul {
///     type Frame = Vec<u8>;
///     fn decode(&mut self, bytes: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
///         Ok(bytes.iter().position(|&b| b == 0).map(|i| (bytes[..i].to_vec(), i + 1)))
///     }
///     fn max_frame(&self) -> usize {
///         self.0
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(message = "`{Self}` is not a decoder")]
pub trait Decoder {
    /// What it decodes.
    type Frame;

    /// Looks for a whole frame at the start of `bytes`: `Ok(Some((frame, used)))` decodes
    /// one from the first `used` bytes (at least 1); `Ok(None)` asks for more bytes; `Err`
    /// stops the pipeline (a malformed frame, or a header announcing more than the maximum:
    /// fail as soon as you know).
    fn decode(&mut self, bytes: &[u8]) -> io::Result<Option<(Self::Frame, usize)>>;

    /// The most bytes one frame may take, header included: more buffered bytes without a
    /// whole frame among them is an error.
    fn max_frame(&self) -> usize;
}

impl<D: Decoder + ?Sized> Decoder for &mut D {
    type Frame = D::Frame;
    #[inline]
    fn decode(&mut self, bytes: &[u8]) -> io::Result<Option<(D::Frame, usize)>> {
        (**self).decode(bytes)
    }
    fn max_frame(&self) -> usize {
        (**self).max_frame()
    }
}

/// A protocol's framing, write side: turns an item into the bytes to write.
#[diagnostic::on_unimplemented(message = "`{Self}` is not an encoder of `{T}`")]
pub trait Encoder<T> {
    /// The bytes (any owned buffer a writer can write).
    type Out;
    /// Encodes one item; `Err` stops the pipeline.
    fn encode(&mut self, item: T) -> io::Result<Self::Out>;
}

impl<T, E: Encoder<T> + ?Sized> Encoder<T> for &mut E {
    type Out = E::Out;
    #[inline]
    fn encode(&mut self, item: T) -> io::Result<E::Out> {
        (**self).encode(item)
    }
}

/// A [`Decoder`] as an adapter: byte buffers in, frames out.
///
/// A decoder written as a stage becomes one of these; `Decode::new` makes one explicitly (for
/// a type that is both a decoder and an encoder, say):
///
/// ```
/// use iomgr::pipeline::{Decode, Encode, Lines, iter};
/// # iomgr::Runtime::new()?.block_on(async {
/// let mut lines: Vec<String> = Vec::new();
/// iomgr::pipeline! {
///     iter(["a", "b"]) => Encode::new(Lines::encoder()) => Decode::new(Lines::new(8)) => &mut lines
/// }
/// .await?;
/// assert_eq!(lines, ["a", "b"]);
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// It decodes in place from the buffer it holds, and keeps the bytes of a frame that
/// continues in the next buffer (at most the decoder's [`max_frame`](Decoder::max_frame)
/// plus one buffer). On an error it hands back the bytes it holds: the buffer it was reading
/// (`B`) or the copied bytes of the unfinished frame (`Vec<u8>`).
pub struct Decode<D, B> {
    decoder: D,
    /// The buffer being decoded in place, and where in it.
    cur: Option<B>,
    pos: usize,
    /// Bytes of a frame that began in an earlier buffer, from `start`.
    held: Vec<u8>,
    start: usize,
}

impl<D: Decoder, B> Decode<D, B> {
    /// Decodes with `decoder`.
    pub fn new(decoder: D) -> Self {
        Decode {
            decoder,
            cur: None,
            pos: 0,
            held: Vec::new(),
            start: 0,
        }
    }

    /// The decoder.
    pub fn decoder(&self) -> &D {
        &self.decoder
    }

    fn held(&self) -> &[u8] {
        &self.held[self.start..]
    }

    fn hold(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.held.drain(..self.start);
            self.start = 0;
        }
        self.held.extend_from_slice(bytes);
    }

    fn too_long(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a frame is longer than the maximum of {} bytes",
                self.decoder.max_frame()
            ),
        )
    }
}

impl<D, B> Unpin for Decode<D, B> {}

impl<D: Decoder, B: AsBytes + 'static> Adapter for Decode<D, B> {
    type In = B;
    type Out = D::Frame;

    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        input: &mut Input<'_, B>,
    ) -> Poll<Result<Option<D::Frame>, StageError>> {
        let this = self.get_mut();
        loop {
            if this.start < this.held.len() {
                // A frame that began in an earlier buffer.
                match this.decoder.decode(&this.held[this.start..]) {
                    Ok(Some((frame, used))) => {
                        this.start += used;
                        if this.start == this.held.len() {
                            this.held.clear();
                            this.start = 0;
                        }
                        return Poll::Ready(Ok(Some(frame)));
                    }
                    Ok(None) if this.held().len() > this.decoder.max_frame() => {
                        let held = this.held().to_vec();
                        return Poll::Ready(Err(StageError::with_item(this.too_long(), held)));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let held = this.held().to_vec();
                        return Poll::Ready(Err(StageError::with_item(e, held)));
                    }
                }
            } else if let Some(cur) = &this.cur {
                let rest = &cur.as_bytes()[this.pos..];
                match this.decoder.decode(rest) {
                    Ok(Some((frame, used))) => {
                        this.pos += used;
                        if this.pos == cur.as_bytes().len() {
                            this.cur = None; // done with it (a `Chunk` goes back to its pool)
                        }
                        return Poll::Ready(Ok(Some(frame)));
                    }
                    Ok(None) => {
                        // The rest of this buffer begins a frame: keep its bytes.
                        let cur = this.cur.take().expect("checked above");
                        let rest = &cur.as_bytes()[this.pos..];
                        if rest.len() > this.decoder.max_frame() {
                            return Poll::Ready(Err(StageError::with_item(this.too_long(), cur)));
                        }
                        this.hold(rest);
                    }
                    Err(e) => {
                        let cur = this.cur.take().expect("checked above");
                        return Poll::Ready(Err(StageError::with_item(e, cur)));
                    }
                }
            }
            match input.take() {
                Some(buf) if this.start < this.held.len() => this.hold(buf.as_bytes()),
                Some(buf) => {
                    if !buf.as_bytes().is_empty() {
                        this.cur = Some(buf);
                        this.pos = 0;
                    }
                }
                None if input.is_ended() => {
                    if this.start == this.held.len() {
                        return Poll::Ready(Ok(None));
                    }
                    let held = this.held().to_vec();
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the input ended inside a frame ({} bytes of it were read)",
                            held.len()
                        ),
                    );
                    return Poll::Ready(Err(StageError::with_item(e, held)));
                }
                None => return Poll::Pending,
            }
        }
    }
}

impl<D: fmt::Debug, B> fmt::Debug for Decode<D, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decode")
            .field("decoder", &self.decoder)
            .field("held", &(self.held.len() - self.start))
            .finish()
    }
}

/// An [`Encoder`] as an adapter: items in, bytes out.
pub struct Encode<E, T> {
    encoder: E,
    _marker: PhantomData<fn(T)>,
}

impl<E: Encoder<T>, T> Encode<E, T> {
    /// Encodes with `encoder`.
    pub fn new(encoder: E) -> Self {
        Encode {
            encoder,
            _marker: PhantomData,
        }
    }
}

impl<E, T> Unpin for Encode<E, T> {}

impl<E: Encoder<T>, T> Adapter for Encode<E, T> {
    type In = T;
    type Out = E::Out;

    #[inline]
    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        input: &mut Input<'_, T>,
    ) -> Poll<Result<Option<E::Out>, StageError>> {
        let this = self.get_mut();
        match input.take() {
            Some(item) => Poll::Ready(this.encoder.encode(item).map(Some).map_err(Into::into)),
            None if input.is_ended() => Poll::Ready(Ok(None)),
            None => Poll::Pending,
        }
    }
}

impl<E: fmt::Debug, T> fmt::Debug for Encode<E, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Encode").field(&self.encoder).finish()
    }
}

/// Lines of UTF-8 text ending in `\n` (or `\r\n`), each at most `max` bytes long.
///
/// Frames are `String`s without the line ending. A line over `max` bytes, or bytes that are
/// not UTF-8, are an `InvalidData` error; an input that ends after an unterminated line is an
/// `UnexpectedEof` error.
///
/// ```
/// # iomgr::Runtime::new()?.block_on(async {
/// use iomgr::pipeline::{Lines, iter};
/// let mut lines: Vec<String> = Vec::new();
/// iomgr::pipeline! { iter(["one\ntw", "o\r\nthree\n"]) => Lines::new(64) => &mut lines }.await?;
/// assert_eq!(lines, ["one", "two", "three"]);
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Lines {
    max: usize,
}

impl Lines {
    /// Lines of at most `max` bytes (not counting the line ending).
    pub fn new(max: usize) -> Self {
        Lines { max }
    }

    /// The encoder: each item's bytes followed by `\n`.
    pub fn encoder() -> LinesEncoder {
        LinesEncoder
    }
}

impl Decoder for Lines {
    type Frame = String;

    fn decode(&mut self, bytes: &[u8]) -> io::Result<Option<(String, usize)>> {
        // Look no further than the longest line allowed (and its line ending).
        let window = &bytes[..bytes.len().min(self.max.saturating_add(2))];
        let Some(end) = window.iter().position(|&b| b == b'\n') else {
            if bytes.len() > self.max.saturating_add(1) {
                return Err(line_too_long(self.max));
            }
            return Ok(None);
        };
        let line = &bytes[..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max {
            return Err(line_too_long(self.max));
        }
        let line = std::str::from_utf8(line).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line is not UTF-8: {e}"),
            )
        })?;
        Ok(Some((line.to_owned(), end + 1)))
    }

    fn max_frame(&self) -> usize {
        self.max.saturating_add(2)
    }
}

fn line_too_long(max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a line is longer than the maximum of {max} bytes"),
    )
}

/// The lines encoder: each item's bytes followed by `\n` (see [`Lines::encoder`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct LinesEncoder;

impl<T: IntoBytes> Encoder<T> for LinesEncoder {
    type Out = Vec<u8>;
    #[inline]
    fn encode(&mut self, item: T) -> io::Result<Vec<u8>> {
        let mut bytes = item.into_bytes();
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// Frames that start with their length: a 1, 2, 4 or 8-byte unsigned header (big-endian
/// unless told otherwise) counting the payload's bytes (or the header's too), then the
/// payload. Frames are the payloads, as `Vec<u8>`; a header announcing more than `max`
/// bytes is an `InvalidData` error at once, before any of the payload is read.
///
/// ```
/// # iomgr::Runtime::new()?.block_on(async {
/// use iomgr::pipeline::{LengthDelimited, iter};
/// let codec = LengthDelimited::new(1024).u16();
/// let mut frames: Vec<Vec<u8>> = Vec::new();
/// iomgr::pipeline! {
///     iter(["hello", "", "world"]) => codec.encoder() => codec => &mut frames
/// }
/// .await?;
/// assert_eq!(frames, [b"hello".to_vec(), vec![], b"world".to_vec()]);
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LengthDelimited {
    max: usize,
    width: usize,
    big_endian: bool,
    includes_header: bool,
}

impl LengthDelimited {
    /// Payloads of at most `max` bytes, after a 4-byte big-endian length.
    pub fn new(max: usize) -> Self {
        LengthDelimited {
            max,
            width: 4,
            big_endian: true,
            includes_header: false,
        }
    }

    /// A 1-byte length.
    pub fn u8(self) -> Self {
        LengthDelimited { width: 1, ..self }
    }

    /// A 2-byte length.
    pub fn u16(self) -> Self {
        LengthDelimited { width: 2, ..self }
    }

    /// A 4-byte length (the default).
    pub fn u32(self) -> Self {
        LengthDelimited { width: 4, ..self }
    }

    /// An 8-byte length.
    pub fn u64(self) -> Self {
        LengthDelimited { width: 8, ..self }
    }

    /// The length is little-endian.
    pub fn little_endian(self) -> Self {
        LengthDelimited {
            big_endian: false,
            ..self
        }
    }

    /// The length counts the header's bytes too.
    pub fn length_includes_header(self) -> Self {
        LengthDelimited {
            includes_header: true,
            ..self
        }
    }

    /// The encoder with the same header.
    pub fn encoder(&self) -> LengthEncoder {
        LengthEncoder(*self)
    }

    fn read_len(&self, header: &[u8]) -> u64 {
        let mut n = [0u8; 8];
        if self.big_endian {
            n[8 - self.width..].copy_from_slice(header);
            u64::from_be_bytes(n)
        } else {
            n[..self.width].copy_from_slice(header);
            u64::from_le_bytes(n)
        }
    }

    fn too_long(&self, len: u64) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a frame of {len} bytes is longer than the maximum of {} bytes",
                self.max
            ),
        )
    }
}

impl Decoder for LengthDelimited {
    type Frame = Vec<u8>;

    fn decode(&mut self, bytes: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
        let Some(header) = bytes.get(..self.width) else {
            return Ok(None);
        };
        let mut len = self.read_len(header);
        if self.includes_header {
            len = len.checked_sub(self.width as u64).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a length of {len} is shorter than its own header"),
                )
            })?;
        }
        if len > self.max as u64 {
            return Err(self.too_long(len));
        }
        let end = self.width + len as usize;
        Ok(bytes
            .get(self.width..end)
            .map(|payload| (payload.to_vec(), end)))
    }

    fn max_frame(&self) -> usize {
        self.width.saturating_add(self.max)
    }
}

/// The length-delimited encoder: a header, then the item's bytes (see
/// [`LengthDelimited::encoder`]). An item over the maximum is an `InvalidData` error.
#[derive(Debug, Clone, Copy)]
pub struct LengthEncoder(LengthDelimited);

impl<T: AsBytes> Encoder<T> for LengthEncoder {
    type Out = Vec<u8>;

    fn encode(&mut self, item: T) -> io::Result<Vec<u8>> {
        let codec = &self.0;
        let payload = item.as_bytes();
        let mut len = payload.len() as u64;
        if len > codec.max as u64 {
            return Err(codec.too_long(len));
        }
        if codec.includes_header {
            len += codec.width as u64;
        }
        if codec.width < 8 && len >> (codec.width * 8) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a length of {len} does not fit a {}-byte header",
                    codec.width
                ),
            ));
        }
        let mut out = Vec::with_capacity(codec.width + payload.len());
        if codec.big_endian {
            out.extend_from_slice(&len.to_be_bytes()[8 - codec.width..]);
        } else {
            out.extend_from_slice(&len.to_le_bytes()[..codec.width]);
        }
        out.extend_from_slice(payload);
        Ok(out)
    }
}

/// Frames of exactly `n` bytes each, as `Vec<u8>`. An input that ends inside a frame is an
/// `UnexpectedEof` error.
#[derive(Debug, Clone, Copy)]
pub struct FixedSize {
    size: usize,
}

impl FixedSize {
    /// Frames of `size` bytes.
    ///
    /// # Panics
    /// If `size` is 0.
    pub fn new(size: usize) -> Self {
        assert!(size > 0, "fixed-size frames need a size above 0");
        FixedSize { size }
    }

    /// The encoder: checks that each item is exactly `size` bytes, and passes it on
    /// unchanged (no copy).
    pub fn encoder(&self) -> FixedEncoder {
        FixedEncoder(*self)
    }
}

impl Decoder for FixedSize {
    type Frame = Vec<u8>;

    fn decode(&mut self, bytes: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
        Ok(bytes
            .get(..self.size)
            .map(|frame| (frame.to_vec(), self.size)))
    }

    fn max_frame(&self) -> usize {
        self.size
    }
}

/// The fixed-size encoder (see [`FixedSize::encoder`]): an item of another size is an
/// `InvalidData` error.
#[derive(Debug, Clone, Copy)]
pub struct FixedEncoder(FixedSize);

impl<T: AsBytes> Encoder<T> for FixedEncoder {
    type Out = T;

    fn encode(&mut self, item: T) -> io::Result<T> {
        let len = item.as_bytes().len();
        if len != self.0.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "an item of {len} bytes in a stream of {}-byte frames",
                    self.0.size
                ),
            ));
        }
        Ok(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_decode_and_bound_their_length() {
        let mut lines = Lines::new(5);
        assert_eq!(lines.decode(b"abc\nde").unwrap(), Some(("abc".into(), 4)));
        assert_eq!(lines.decode(b"abc\r\n").unwrap(), Some(("abc".into(), 5)));
        assert_eq!(lines.decode(b"abc").unwrap(), None);
        assert_eq!(
            lines.decode(b"abcde\r\n").unwrap(),
            Some(("abcde".into(), 7))
        );
        assert!(lines.decode(b"abcdef\n").is_err());
        assert!(
            lines.decode(b"abcdefg").is_err(),
            "too long before any newline"
        );
        assert!(lines.decode(b"\xff\n").is_err());
    }

    #[test]
    fn length_headers_round_trip_in_every_width_and_order() {
        for codec in [
            LengthDelimited::new(300).u8(),
            LengthDelimited::new(300).u16().little_endian(),
            LengthDelimited::new(300).u32().length_includes_header(),
            LengthDelimited::new(300).u64(),
        ] {
            let mut codec = codec;
            for len in [0usize, 1, 200] {
                let payload = vec![7u8; len];
                let encoded = codec.encoder().encode(payload.clone());
                if codec.width == 1 && len > 255 {
                    assert!(encoded.is_err());
                    continue;
                }
                let encoded = encoded.unwrap();
                assert_eq!(encoded.len(), codec.width + len);
                assert_eq!(codec.decode(&encoded[..encoded.len() - 1]).unwrap(), None);
                assert_eq!(
                    codec.decode(&encoded).unwrap(),
                    Some((payload, encoded.len()))
                );
            }
        }
        let mut codec = LengthDelimited::new(10).u16();
        assert!(
            codec.decode(&[0, 11]).is_err(),
            "over the maximum: fails at once"
        );
        assert!(codec.encoder().encode(vec![0u8; 11]).is_err());
    }

    #[test]
    fn fixed_size_frames() {
        let mut fixed = FixedSize::new(3);
        assert_eq!(fixed.decode(b"ab").unwrap(), None);
        assert_eq!(fixed.decode(b"abcd").unwrap(), Some((b"abc".to_vec(), 3)));
        assert!(fixed.encoder().encode(b"ab".to_vec()).is_err());
        assert_eq!(fixed.encoder().encode(b"xyz".to_vec()).unwrap(), b"xyz");
    }
}
