//! Every kind of source (a channel receiver stands for any `futures_core::Stream`).

use std::pin::Pin;
use std::task::{Context, Poll};

use iomgr::fs::File;
use iomgr::net::{TcpStream, UdpSocket, UnixStream};
use iomgr::pipeline::{
    Chunk, DatagramReader, FileReader, SocketReader, Source, StageError, for_each, iter,
};
use iomgr::sync::{async_chan, chan};

struct Countdown(u32);

impl Source for Countdown {
    type Item = u32;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<Option<u32>, StageError>> {
        let n = self.0;
        self.0 = n.saturating_sub(1);
        Poll::Ready(Ok((n > 0).then_some(n)))
    }
}

#[allow(dead_code)]
async fn io_sources(tcp: TcpStream, unix: UnixStream, udp: UdpSocket, file: File) {
    let bytes = for_each(|_: Chunk| ());
    let _ = iomgr::pipeline! { &tcp => for_each(|_: Chunk| ()) }.await;
    let _ = iomgr::pipeline! { &unix => bytes }.await;
    let _ = iomgr::pipeline! { tcp.reader() => for_each(|_: Chunk| ()) }.await;
    let _ = iomgr::pipeline! { SocketReader::new(&unix).chunk_size(512) => for_each(|_: Chunk| ()) }.await;
    let _ = iomgr::pipeline! { SocketReader::new(&unix).buffers(|| Vec::with_capacity(64)) => for_each(|_: Vec<u8>| ()) }.await;
    let _ = iomgr::pipeline! { &udp => for_each(|_: (Chunk, std::net::SocketAddr)| ()) }.await;
    let _ = iomgr::pipeline! { DatagramReader::new(&udp) => |(c, _)| c => for_each(|_: Chunk| ()) }.await;
    let _ = iomgr::pipeline! { &file => for_each(|_: Chunk| ()) }.await;
    let _ = iomgr::pipeline! { file.reader() => for_each(|_: Chunk| ()) }.await;
    let _ = iomgr::pipeline! { FileReader::new(&file).offset(10) => for_each(|_: Chunk| ()) }.await;
    let (read, _write) = tcp.into_split();
    let _ = iomgr::pipeline! { read => for_each(|_: Chunk| ()) }.spawn();
    let _ = iomgr::pipeline! { file => for_each(|_: Chunk| ()) }.spawn();
}

fn main() {
    iomgr::Runtime::new().unwrap().block_on(async {
        let mut out = Vec::new();
        iomgr::pipeline! { iter(vec![1, 2]) => &mut out }.await.unwrap();
        iomgr::pipeline! { Countdown(3) => &mut out }.await.unwrap();
        let (tx, rx) = chan::<u32>(4);
        tx.try_send(9).unwrap();
        drop(tx);
        iomgr::pipeline! { rx => &mut out }.await.unwrap();
        let (tx, rx) = async_chan::<u32>(4);
        tx.try_send(10).unwrap();
        drop(tx);
        iomgr::pipeline! { rx => &mut out }.await.unwrap();
        let mut borrowed = iter([11, 12]);
        iomgr::pipeline! { &mut borrowed => &mut out }.await.unwrap();
        assert_eq!(out, [1, 2, 3, 2, 1, 9, 10, 11, 12]);
    });
}
