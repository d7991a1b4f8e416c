//! Pipelines over real descriptors: loopback TCP and UDP, Unix socket pairs, temp files, and
//! a channel between two runtimes.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use iomgr::future::{Either, select};
use iomgr::net::{TcpListener, TcpStream, UdpSocket};
use iomgr::pipeline::{
    Chunk, DatagramReader, DatagramWriter, LengthDelimited, Lines, PipelineError,
};
use iomgr::sync::async_chan;
use iomgr::{Runtime, spawn};
use iomgr_tests::TempDir;

fn shout(line: String) -> String {
    line.to_uppercase()
}

iomgr::pipeline! {
    /// The line server: every line, upper-cased.
    pub LineUpper(stream: TcpStream) =
        stream.reader() => Lines::new(1024) => shout => Lines::encoder() => stream.writer();
}

#[test]
fn a_tcp_line_server_written_as_a_pipeline() {
    Runtime::new().unwrap().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let mut handles = Vec::new();
            for _ in 0..3 {
                let (stream, _) = listener.accept().await.unwrap();
                handles.push(LineUpper::new(stream).spawn());
            }
            for h in handles {
                h.await.unwrap().unwrap();
            }
        });
        let clients: Vec<_> = (0..3)
            .map(|c| {
                std::thread::spawn(move || {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    let mut sent = String::new();
                    for i in 0..500 {
                        sent.push_str(&format!("client {c} line {i}\n"));
                    }
                    // Written in odd-sized pieces, so lines span reads.
                    for piece in sent.as_bytes().chunks(777) {
                        s.write_all(piece).unwrap();
                    }
                    s.shutdown(std::net::Shutdown::Write).unwrap();
                    let mut got = String::new();
                    s.read_to_string(&mut got).unwrap();
                    assert_eq!(got, sent.to_uppercase());
                })
            })
            .collect();
        server.await.unwrap();
        for c in clients {
            c.join().unwrap();
        }
    });
    assert!(std::mem::size_of::<LineUpper>() > 0);
}

#[test]
fn the_same_server_in_the_expression_form_over_split_halves() {
    Runtime::new().unwrap().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"a\nbb\n\nccc\n").unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut got = String::new();
            s.read_to_string(&mut got).unwrap();
            got
        });
        let (stream, _) = listener.accept().await.unwrap();
        let (read, write) = stream.into_split();
        let handle = iomgr::pipeline! {
            read => Lines::new(16) => |l| format!("{}:{l}", l.len()) => Lines::encoder() => write
        }
        .spawn();
        handle.await.unwrap().unwrap();
        assert_eq!(client.join().unwrap(), "1:a\n2:bb\n0:\n3:ccc\n");
    });
}

#[test]
fn udp_echo_with_a_logging_adapter() {
    Runtime::new().unwrap().block_on(async {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let log: RefCell<Vec<(SocketAddr, usize)>> = RefCell::new(Vec::new());
        let echo = iomgr::pipeline! {
            &server
            => |(data, peer): (Chunk, SocketAddr)| {
                log.borrow_mut().push((peer, data.len()));
                (data, peer)
            }
            => &server
        };
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let exchange = async {
            let mut buf = Vec::with_capacity(64);
            for i in 0..20u8 {
                let msg = vec![i; i as usize + 1];
                let (res, _) = client.send_to(msg.clone(), addr).await;
                res.unwrap();
                let (res, b) = client.recv_from(buf).await;
                let (n, from) = res.unwrap();
                assert_eq!((&b[..n], from), (&msg[..], addr));
                buf = b;
                buf.clear();
            }
        };
        // The echo never ends by itself: it runs until the exchange is done.
        match select(echo, exchange).await {
            Either::Left(r) => panic!("the echo stopped: {r:?}"),
            Either::Right(()) => {}
        }
        let log = log.into_inner();
        assert_eq!(log.len(), 20);
        let me = client.local_addr().unwrap();
        assert!(
            log.iter()
                .enumerate()
                .all(|(i, &(peer, n))| peer == me && n == i + 1)
        );
    });
}

#[test]
fn an_owned_udp_echo_spawned_as_a_task() {
    Runtime::new().unwrap().block_on(async {
        let server = Rc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let addr = server.local_addr().unwrap();
        let echo = iomgr::pipeline! {
            DatagramReader::new(server.clone())
            => |(data, peer): (Chunk, SocketAddr)| (data.into_vec(), peer)
            => DatagramWriter::new(server)
        }
        .spawn();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (res, _) = client.send_to(b"ping".to_vec(), addr).await;
        res.unwrap();
        let (res, b) = client.recv_from(vec![0u8; 16]).await;
        let (n, _) = res.unwrap();
        assert_eq!(&b[..n], b"ping");
        echo.abort();
        assert!(echo.await.unwrap_err().is_cancelled());
    });
}

#[test]
fn a_file_copied_to_a_socket() {
    let dir = TempDir::new("pipeline-copy");
    let path = dir.join("data");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    Runtime::new().unwrap().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        });
        let (stream, _) = listener.accept().await.unwrap();
        let file = iomgr::fs::File::open(&path).await.unwrap();
        // The chunk the file was read into is the chunk written to the socket.
        iomgr::pipeline! { &file => &stream }.run().await.unwrap();
        drop(stream);
        assert!(reader.join().unwrap() == data, "the copy differs");
    });
}

#[test]
fn a_socket_copied_to_a_file_through_length_delimited_frames() {
    let dir = TempDir::new("pipeline-frames");
    let path = dir.join("frames");
    Runtime::new().unwrap().block_on(async {
        let (a, b) = iomgr::net::UnixStream::pair().unwrap();
        let codec = LengthDelimited::new(1 << 16).u16().little_endian();
        let frames: Vec<Vec<u8>> = (0..300).map(|i| vec![i as u8; i * 3]).collect();
        let send = iomgr::pipeline! {
            iomgr::pipeline::iter(frames.clone()) => codec.encoder() => &a
        };
        let file = iomgr::fs::File::create(&path).await.unwrap();
        let receive =
            iomgr::pipeline! { &b => codec => |f: Vec<u8>| f.len().to_string() + "\n" => &file };
        let (s, r) = iomgr::future::join(send, receive).await;
        s.unwrap();
        r.unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        let expected: String = frames.iter().map(|f| format!("{}\n", f.len())).collect();
        assert_eq!(written, expected);
    });
}

#[test]
fn a_pipeline_between_two_runtimes_over_an_async_chan() {
    const N: u64 = 50_000;
    let (to_b, from_b) = std::sync::mpsc::channel();
    let b = std::thread::spawn(move || {
        Runtime::new().unwrap().block_on(async {
            let (tx, rx) = async_chan::<u64>(64);
            to_b.send(tx).unwrap();
            let mut sum = 0u64;
            let mut count = 0u64;
            iomgr::pipeline! {
                rx
                => |x| if x % 3 == 0 { None } else { Some(x) }
                => iomgr::pipeline::for_each(|x: u64| { sum += x; count += 1; })
            }
            .await
            .unwrap();
            (sum, count)
        })
    });
    let tx = from_b.recv().unwrap();
    Runtime::new().unwrap().block_on(async move {
        // The owned sender is dropped at the end: runtime B's source then ends.
        iomgr::pipeline! { iomgr::pipeline::iter(0..N) => |x| x * 2 => tx }
            .await
            .unwrap();
    });
    let (sum, count) = b.join().unwrap();
    let expected: Vec<u64> = (0..N).map(|x| x * 2).filter(|x| x % 3 != 0).collect();
    assert_eq!(count, expected.len() as u64);
    assert_eq!(sum, expected.iter().sum::<u64>());
}

#[test]
fn a_source_that_ends_inside_a_line_is_an_error() {
    Runtime::new().unwrap().block_on(async {
        let (a, b) = iomgr::net::UnixStream::pair().unwrap();
        let (res, _) = a.write_all(b"whole\nhalf a li".as_slice()).await;
        res.unwrap();
        drop(a);
        let mut lines: Vec<String> = Vec::new();
        let mut err: PipelineError = iomgr::pipeline! { &b => Lines::new(64) => &mut lines }
            .await
            .unwrap_err();
        assert_eq!(lines, ["whole"]);
        assert_eq!((err.stage(), err.expr()), (1, "Lines::new(64)"));
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(err.take_item::<Vec<u8>>().unwrap(), b"half a li");
    });
}

#[test]
fn a_sink_whose_peer_is_gone_fails_with_the_buffer_it_was_writing() {
    Runtime::new().unwrap().block_on(async {
        let (a, b) = iomgr::net::UnixStream::pair().unwrap();
        drop(b);
        let mut err = iomgr::pipeline! {
            iomgr::pipeline::iter(["first".to_string()]) => &a
        }
        .await
        .unwrap_err();
        assert_eq!((err.stage(), err.expr()), (1, "&a"));
        assert_eq!(err.role(), iomgr::pipeline::Role::Sink);
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
        assert_eq!(err.take_item::<String>().unwrap(), "first");
    });
}

#[test]
fn a_slow_consumer_never_loses_lines_from_a_fast_producer() {
    Runtime::new().unwrap().block_on(async {
        let (a, b) = iomgr::net::UnixStream::pair().unwrap();
        let produce = iomgr::pipeline! {
            iomgr::pipeline::iter(0..20_000u32) => |i| format!("{i}\n") => &a
        };
        let mut got = 0u32;
        let consume = iomgr::pipeline! {
            &b
            => Lines::new(16)
            => async |line| {
                if line.ends_with('7') {
                    iomgr::time::sleep(Duration::from_micros(10)).await;
                }
                line.parse::<u32>()
            }
            => iomgr::pipeline::for_each(|i: u32| { assert_eq!(i, got); got += 1; })
        };
        let (p, c) = iomgr::future::join(produce, consume).await;
        p.unwrap();
        c.unwrap();
        assert_eq!(got, 20_000);
    });
}
