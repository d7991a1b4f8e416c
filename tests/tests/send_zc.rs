//! Zero-copy send: the buffer comes back only with the notification CQE, never earlier,
//! also when the op is dropped in flight.

use std::io::Read;
use std::thread;

use iomgr::Runtime;
use iomgr::net::{TcpListener, TcpStream};
use iomgr::runtime::Feature;
use iomgr_tests::{TrackedBuf, until};

fn runtime() -> Option<Runtime> {
    let rt = Runtime::new().unwrap();
    if !rt.supports(Feature::SendZc) {
        println!("skipped: this kernel has no SEND_ZC");
        return None;
    }
    Some(rt)
}

async fn pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (server, client)
}

#[test]
fn send_zc_sends_and_hands_the_buffer_back_after_the_notification() {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let (server, mut client) = pair().await;
        let (buf, probe) = TrackedBuf::filled(b"zero copy".to_vec());
        let (res, buf) = server.send_zc(buf).await;
        assert_eq!(res.unwrap(), 9);
        assert!(!probe.dropped());
        assert_eq!(buf.bytes(), b"zero copy");
        let mut got = [0u8; 9];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"zero copy");
        assert_eq!(rt.ops_in_flight(), 0, "no CQE left behind");
    });
}

#[test]
fn write_all_zc_sends_a_large_buffer_through_a_slow_reader() {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let (server, mut client) = pair().await;
        let data: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 1000];
            loop {
                let n = client.read(&mut buf).unwrap();
                if n == 0 {
                    return got;
                }
                got.extend_from_slice(&buf[..n]);
            }
        });
        let (res, data) = server.write_all_zc(data).await;
        res.unwrap();
        drop(server);
        let got = reader.join().unwrap();
        assert!(got == data, "bytes lost or out of order");
    });
}

#[test]
fn a_send_zc_dropped_in_flight_keeps_its_buffer_until_the_notification() {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let (server, mut client) = pair().await;
        // Fill the socket so the send cannot complete at once.
        let (buf, probe) = TrackedBuf::filled(vec![1u8; 8 << 20]);
        {
            let op = server.send_zc(buf);
            let timed = iomgr::time::timeout(std::time::Duration::from_millis(20), op).await;
            assert!(timed.is_err(), "8 MiB went through an unread socket");
        } // dropped in flight
        assert!(!probe.dropped(), "freed while the kernel may still read it");
        let drain = thread::spawn(move || {
            let mut sink = [0u8; 65536];
            while client.read(&mut sink).unwrap_or(0) > 0 {}
        });
        until(2000, "the dropped send's notification", || probe.dropped()).await;
        assert_eq!(rt.ops_in_flight(), 0);
        drop(server);
        drain.join().unwrap();
    });
}
