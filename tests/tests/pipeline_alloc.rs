//! Running a pipeline allocates nothing per item beyond what its stages allocate: a counting
//! global allocator counts this thread's allocations while items flow.

use iomgr::net::UnixStream;
use iomgr::pipeline::{Lines, iter};
use iomgr::{Runtime, future::join};
use iomgr_tests::{CountingAlloc, allocations_during};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

async fn round_trips(client: &UnixStream, mut buf: Vec<u8>, n: usize) -> Vec<u8> {
    for i in 0..n as u64 {
        buf.clear();
        buf.extend_from_slice(&i.to_le_bytes());
        let (res, b) = client.write_all(buf).await;
        res.unwrap();
        let (res, b) = client.read_exact(b).await;
        res.unwrap();
        assert_eq!(b, i.to_le_bytes());
        buf = b;
    }
    buf
}

#[test]
fn an_echo_pipeline_allocates_nothing_per_item() {
    Runtime::new().unwrap().block_on(async {
        let (client, server) = UnixStream::pair().unwrap();
        // Chunks read from the socket are written back as they are, and return to the
        // reader's pool once written.
        let echo = iomgr::pipeline! { &server => |c| c => &server };
        let trips = async {
            // Warm-up: the reader's chunk pool and the runtime's slabs.
            let buf = round_trips(&client, Vec::with_capacity(8), 200).await;
            let (_, allocations) = allocations_during(round_trips(&client, buf, 2000)).await;
            client.shutdown(std::net::Shutdown::Write).await.unwrap();
            allocations
        };
        let (echoed, allocations) = join(echo, trips).await;
        echoed.unwrap();
        assert_eq!(allocations, 0, "allocations during 2000 echoed items");
    });
}

#[test]
fn an_in_memory_pipeline_allocates_nothing_per_item() {
    Runtime::new().unwrap().block_on(async {
        let mut out: Vec<u64> = Vec::with_capacity(100_000);
        let (result, allocations) = allocations_during(async {
            iomgr::pipeline! {
                iter(0..100_000u64)
                => |x| x * 3
                => |x| if x % 2 == 0 { Some(x / 2) } else { None }
                => async |x| x + 1
                => &mut out
            }
            .await
        })
        .await;
        result.unwrap();
        assert_eq!(out.len(), 50_000);
        assert_eq!(allocations, 0);
    });
}

#[test]
fn a_line_decoder_allocates_one_string_per_line_and_nothing_else() {
    Runtime::new().unwrap().block_on(async {
        let text: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let chunks: Vec<&'static [u8]> = text.leak().as_bytes().chunks(4096).collect();
        let mut lines = 0;
        let (result, allocations) = allocations_during(async {
            iomgr::pipeline! {
                iter(chunks) => Lines::new(64) => iomgr::pipeline::for_each(|_l: String| lines += 1)
            }
            .await
        })
        .await;
        result.unwrap();
        assert_eq!(lines, 10_000);
        // One `String` per line, and the bytes of the few lines that span two chunks.
        assert!(
            (10_000..10_000 + 2 * 30).contains(&allocations),
            "{allocations} allocations for 10000 lines"
        );
    });
}
