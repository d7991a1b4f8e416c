//! The submit/complete/wake path allocates nothing after warm-up.
//!
//! A counting global allocator counts allocations made on this test's thread while an echo
//! server and client (both iomgr tasks on one runtime) do many round trips over loopback.

use iomgr::buf::BufExt;
use iomgr::net::{TcpListener, TcpStream};
use iomgr::{Runtime, spawn};
use iomgr_tests::{CountingAlloc, allocations_during};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

async fn round_trips(client: &TcpStream, mut buf: Vec<u8>, n: usize) -> Vec<u8> {
    for i in 0..n {
        buf.clear();
        buf.extend_from_slice(&(i as u64).to_le_bytes());
        let (res, b) = client.write_all(buf).await;
        res.unwrap();
        let (res, b) = client.read_exact(b.slice(..8)).await;
        res.unwrap();
        assert_eq!(&b[..], &(i as u64).to_le_bytes());
        buf = b.into_inner();
    }
    buf
}

#[test]
fn echo_round_trips_allocate_nothing_after_warm_up() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            loop {
                let (res, b) = stream.read(buf).await;
                let n = res.unwrap();
                if n == 0 {
                    return;
                }
                let (res, s) = stream.write_all(b.slice(..n)).await;
                res.unwrap();
                buf = s.into_inner();
            }
        });
        let client = TcpStream::connect(addr).await.unwrap();
        let buf = round_trips(&client, Vec::with_capacity(64), 200).await;

        let (buf, allocations) = allocations_during(async {
            let buf = round_trips(&client, buf, 2000).await;
            // Timers and yields take the same path.
            iomgr::time::sleep(std::time::Duration::from_micros(100)).await;
            iomgr::yield_now().await;
            buf
        })
        .await;
        assert_eq!(allocations, 0, "allocations during 2000 echo round trips");
        drop((client, buf));
        server.await.unwrap();
    });
}
