//! Every kind of sink.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use iomgr::fs::File;
use iomgr::net::{TcpStream, UdpSocket, UnixStream};
use iomgr::pipeline::{
    Chunk, DatagramWriter, FileWriter, Input, Sink, SocketWriter, StageError, for_each, iter,
};
use iomgr::sync::{async_chan, chan};

struct Total(u64);

impl Sink for Total {
    type Item = u64;
    fn poll_sink(mut self: Pin<&mut Self>, _: &mut Context<'_>, input: &mut Input<'_, u64>) -> Poll<Result<(), StageError>> {
        loop {
            match input.take() {
                Some(x) => self.0 += x,
                None if input.is_ended() => return Poll::Ready(Ok(())),
                None => return Poll::Pending,
            }
        }
    }
}

#[allow(dead_code)]
async fn io_sinks(tcp: TcpStream, unix: UnixStream, udp: UdpSocket, file: File, to: SocketAddr) {
    let _ = iomgr::pipeline! { iter(["a\n"]) => &tcp }.await;
    let _ = iomgr::pipeline! { iter([b"a".to_vec()]) => &unix }.await;
    let _ = iomgr::pipeline! { iter([Chunk::from_vec(vec![1])]) => tcp.writer() }.await;
    let _ = iomgr::pipeline! { iter(["a".to_string()]) => SocketWriter::new(&unix).keep_open() }.await;
    let _ = iomgr::pipeline! { iter([(b"ping".as_slice(), to)]) => &udp }.await;
    let _ = iomgr::pipeline! { iter([(vec![1u8], to)]) => DatagramWriter::new(&udp) }.await;
    let _ = iomgr::pipeline! { iter(["x"]) => &file }.await;
    let _ = iomgr::pipeline! { iter(["x"]) => file.writer() }.await;
    let _ = iomgr::pipeline! { iter(["x"]) => FileWriter::new(&file).offset(100) }.await;
    let (_read, write) = tcp.into_split();
    let _ = iomgr::pipeline! { iter([Box::<[u8]>::from(vec![0u8])]) => write }.spawn();
    let _ = iomgr::pipeline! { iter(["x"]) => file }.spawn();
}

fn main() {
    iomgr::Runtime::new().unwrap().block_on(async {
        let mut total = Total(0);
        iomgr::pipeline! { iter([1u64, 2]) => &mut total }.await.unwrap();
        iomgr::pipeline! { iter([3u64]) => &mut total }.await.unwrap();
        assert_eq!(total.0, 6);
        iomgr::pipeline! { iter([4u64]) => Total(0) }.await.unwrap();

        let (tx, rx) = chan::<u64>(4);
        iomgr::pipeline! { iter([1u64]) => &tx }.await.unwrap();
        iomgr::pipeline! { iter([2u64]) => tx }.await.unwrap();
        let (atx, arx) = async_chan::<u64>(4);
        iomgr::pipeline! { iter([3u64]) => &atx }.await.unwrap();
        iomgr::pipeline! { iter([4u64]) => atx }.await.unwrap();
        let mut all = Vec::new();
        iomgr::pipeline! { rx => &mut all }.await.unwrap();
        iomgr::pipeline! { arx => &mut all }.await.unwrap();
        let mut seen = 0;
        iomgr::pipeline! { iter(all) => for_each(|x: u64| seen += x) }.await.unwrap();
        assert_eq!(seen, 10);
        let failing = iomgr::pipeline! {
            iter([1, 2]) => for_each(|x: i32| if x > 1 { Err(std::io::Error::other("no")) } else { Ok(()) })
        };
        assert_eq!(failing.await.unwrap_err().stage(), 1);
    });
}
