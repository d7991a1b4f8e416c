//! Every kind of adapter: functions and closures (map, filter, fallible, async), decoders
//! and encoders (built-in and custom, owned and borrowed), and custom adapters.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use iomgr::pipeline::{
    Adapter, Decode, Decoder, Encode, Encoder, FixedSize, Input, LengthDelimited, Lines,
    StageError, iter,
};

fn double(x: u32) -> u32 {
    x * 2
}

async fn slow_half(x: u32) -> u32 {
    iomgr::yield_now().await;
    x / 2
}

struct Comma(usize);

impl Decoder for Comma {
    type Frame = String;
    fn decode(&mut self, bytes: &[u8]) -> io::Result<Option<(String, usize)>> {
        Ok(bytes
            .iter()
            .position(|&b| b == b',')
            .map(|i| (String::from_utf8_lossy(&bytes[..i]).into_owned(), i + 1)))
    }
    fn max_frame(&self) -> usize {
        self.0
    }
}

struct Shout;

impl Encoder<String> for Shout {
    type Out = Vec<u8>;
    fn encode(&mut self, item: String) -> io::Result<Vec<u8>> {
        Ok((item.to_uppercase() + "!").into_bytes())
    }
}

struct Sum(u32);

impl Adapter for Sum {
    type In = u32;
    type Out = u32;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>, input: &mut Input<'_, u32>) -> Poll<Result<Option<u32>, StageError>> {
        match input.take() {
            Some(x) => {
                self.0 += x;
                Poll::Ready(Ok(Some(self.0)))
            }
            None if input.is_ended() => Poll::Ready(Ok(None)),
            None => Poll::Pending,
        }
    }
}

fn main() {
    iomgr::Runtime::new().unwrap().block_on(async {
        let mut out: Vec<u32> = Vec::new();
        let mut sum = Sum(0);
        iomgr::pipeline! {
            iter(1..=6u32)
            => double
            => |x| x + 1
            => |x: u32| if x % 3 == 0 { None } else { Some(x) }
            => |x| if x < 100 { Ok(x) } else { Err(io::Error::other("big")) }
            => async |x| x * 10
            => |x| async move { x + 1 }
            => slow_half
            => Sum(0)
            => &mut sum
            => &mut out
        }
        .await
        .unwrap();
        assert_eq!(out.len(), 4);

        let mut words: Vec<String> = Vec::new();
        let mut comma = Comma(16);
        iomgr::pipeline! {
            iter(["a,b", "c,"]) => &mut comma => &mut words
        }
        .await
        .unwrap();
        assert_eq!(words, ["a", "bc"]);

        let mut frames: Vec<Vec<u8>> = Vec::new();
        let ld = LengthDelimited::new(64).u16();
        let mut shout = Shout;
        iomgr::pipeline! {
            iter(["x".to_string()])
            => &mut shout
            => |b: Vec<u8>| String::from_utf8(b)
            => Encode::new(Shout)
            => |b: Vec<u8>| String::from_utf8(b)
            => Lines::encoder()
            => Lines::new(8)
            => Shout
            => ld.encoder()
            => Decode::new(ld)
            => FixedSize::new(4).encoder()
            => FixedSize::new(4)
            => &mut frames
        }
        .await
        .unwrap();
        assert_eq!(frames, [b"X!!!".to_vec()], "{frames:?}");
    });
}
