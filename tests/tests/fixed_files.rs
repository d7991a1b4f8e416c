//! Registered files (`IOSQE_FIXED_FILE`): ops through the slot, the slot freed when the file
//! closes and reused by the next registration, an op in the kernel surviving its slot, a
//! queued op withdrawn before its slot is reused, and another runtime's slot refused.

use std::io;
use std::pin::Pin;
use std::task::Poll;

use io_uring::{opcode, squeue, types};
use iomgr::Runtime;
use iomgr::buf::FixedBufPool;
use iomgr::fs::{File, OpenOptions};
use iomgr::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use iomgr::op::{Op, OpCode};
use iomgr::registered::Registered;
use iomgr_tests::TempDir;

#[test]
fn ops_on_a_registered_file_and_sockets_use_the_slot() {
    let dir = TempDir::new("regfile");
    let path = dir.join("f");
    Runtime::new().unwrap().block_on(async {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(&path)
            .await
            .unwrap()
            .register()
            .unwrap();
        let (res, _) = file.write_all_at(b"hello registered".to_vec(), 0).await;
        res.unwrap();
        let (res, buf) = file.read_at(vec![0u8; 64], 0).await;
        assert_eq!(&buf[..res.unwrap()], b"hello registered");
        let (res, buf) = file
            .read_exact_at(vec![0u8; 10].into_boxed_slice(), 6)
            .await;
        res.unwrap();
        assert_eq!(&buf[..], b"registered");

        // Both registered: the file's slot and a registered buffer.
        let pool = FixedBufPool::new(2, 4096).unwrap();
        let mut out = pool.try_get().unwrap();
        out.extend_from_slice(b"FIXED");
        let (res, _) = file.write_fixed_at(out, 0).await;
        assert_eq!(res.unwrap(), 5);
        let (res, back) = file.read_fixed_at(pool.try_get().unwrap(), 0).await;
        assert_eq!(&back[..res.unwrap()], b"FIXED registered");
        file.close().await.unwrap();

        // A registered TCP pair.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap()
            .register()
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let server = server.register().unwrap();
        assert_ne!(client.slot(), server.slot());
        let (res, _) = client.write_all(b"ping".as_slice()).await;
        res.unwrap();
        let (res, got) = server.read_exact(vec![0u8; 4]).await;
        res.unwrap();
        assert_eq!(got, b"ping");
        let (res, _) = server.write_fixed(back).await;
        assert_eq!(res.unwrap(), 16);
        let (res, got) = client.read_fixed(pool.try_get().unwrap()).await;
        assert_eq!(&got[..res.unwrap()], b"FIXED registered");
        assert!(client.get_ref().peer_addr().is_ok());

        // Unix and UDP.
        let (a, b) = UnixStream::pair().unwrap();
        let (a, b) = (a.register().unwrap(), b.register().unwrap());
        let (res, _) = a.write(b"unix".as_slice()).await;
        res.unwrap();
        let (res, buf) = b.read(vec![0u8; 8]).await;
        assert_eq!(&buf[..res.unwrap()], b"unix");
        let u1 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let u2 = UdpSocket::bind("127.0.0.1:0").unwrap();
        u1.connect(u2.local_addr().unwrap()).unwrap();
        let (u1, u2) = (u1.register().unwrap(), u2.register().unwrap());
        let (res, _) = u1.send(b"dgram".as_slice()).await;
        res.unwrap();
        let (res, buf) = u2.recv(vec![0u8; 16]).await;
        assert_eq!(&buf[..res.unwrap()], b"dgram");
        drop(got);
    });
}

#[test]
fn closing_frees_the_slot_and_the_next_registration_reuses_it() {
    let dir = TempDir::new("regslot");
    let path = dir.join("f");
    std::fs::write(&path, b"x").unwrap();
    Runtime::new().unwrap().block_on(async {
        let first = File::open(&path).await.unwrap().register().unwrap();
        let slot = first.slot();
        let second = File::open(&path).await.unwrap().register().unwrap();
        assert_ne!(second.slot(), slot);
        first.close().await.unwrap();
        let third = File::open(&path).await.unwrap().register().unwrap();
        assert_eq!(third.slot(), slot, "the freed slot is reused first");
        // Dropping frees the slot too, and into_inner gives the file back unregistered.
        drop(third);
        let (a, _b) = UnixStream::pair().unwrap();
        let a = a.register().unwrap();
        assert_eq!(a.slot(), slot);
        let a = a.into_inner();
        let c = File::open(&path).await.unwrap().register().unwrap();
        assert_eq!(c.slot(), slot);
        drop((a, c, second));
    });
}

/// A read of registered file slot `slot` into a `Vec`: an op that does not borrow the
/// `Registered`, so the test can close it while the read is in the kernel.
struct ReadSlot {
    slot: u32,
    buf: Vec<u8>,
}

// SAFETY: the buffer is on the heap and owned by the op until completion; the slot is a
// registered file, which the kernel holds its own reference to once it has read the SQE, and
// whose queued SQEs iomgr withdraws before the slot is emptied.
unsafe impl OpCode for ReadSlot {
    type Output = (io::Result<u32>, Vec<u8>);

    fn build(&mut self) -> squeue::Entry {
        let len = self.buf.capacity() as u32;
        opcode::Read::new(types::Fixed(self.slot), self.buf.as_mut_ptr(), len)
            .offset(u64::MAX)
            .build()
    }

    fn complete(mut self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        if let Ok(n) = result {
            // SAFETY: the kernel wrote `n` bytes.
            unsafe { self.buf.set_len(n as usize) };
        }
        (result, self.buf)
    }
}

async fn poll_once<F: Future>(fut: Pin<&mut F>) -> Option<F::Output> {
    let mut fut = Some(fut);
    std::future::poll_fn(|cx| {
        Poll::Ready(match fut.take().unwrap().poll(cx) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        })
    })
    .await
}

#[test]
fn an_op_in_the_kernel_keeps_working_after_its_file_is_closed_and_its_slot_reused() {
    Runtime::new().unwrap().block_on(async {
        let (reader, writer) = UnixStream::pair().unwrap();
        let reader = reader.register().unwrap();
        let slot = reader.slot();
        let read = Op::new(ReadSlot {
            slot,
            buf: Vec::with_capacity(64),
        });
        let mut read = std::pin::pin!(read);
        assert!(poll_once(read.as_mut()).await.is_none());
        // Two ticks: the SQE is consumed, the read waits for data in the kernel.
        iomgr::yield_now().await;
        iomgr::yield_now().await;

        // Close the registered socket (its slot emptied, its descriptor closed), and give
        // the slot to another socket.
        drop(reader);
        let (other, other_peer) = UnixStream::pair().unwrap();
        let other = other.register().unwrap();
        assert_eq!(other.slot(), slot, "the slot was reused");
        let (res, _) = other_peer.write(b"for the new socket".as_slice()).await;
        res.unwrap();

        // The read still reads the first socket: the kernel kept its own reference.
        let (res, _) = writer.write(b"for the old socket".as_slice()).await;
        res.unwrap();
        let (res, buf) = read.await;
        assert_eq!(res.unwrap(), 18);
        assert_eq!(buf, b"for the old socket");
        let (res, buf) = other.read(vec![0u8; 64]).await;
        assert_eq!(
            &buf[..res.unwrap()],
            b"for the new socket",
            "nothing was stolen"
        );
    });
}

#[test]
fn a_queued_op_is_withdrawn_before_its_slot_is_reused() {
    Runtime::new().unwrap().block_on(async {
        let (reader, _writer) = UnixStream::pair().unwrap();
        let reader = reader.register().unwrap();
        let slot = reader.slot();
        let read = Op::new(ReadSlot {
            slot,
            buf: Vec::with_capacity(64),
        });
        let mut read = Box::pin(read);
        // Queued, not submitted: then the socket closes in the same tick.
        assert!(poll_once(read.as_mut()).await.is_none());
        drop(reader);
        let (other, other_peer) = UnixStream::pair().unwrap();
        let other = other.register().unwrap();
        assert_eq!(other.slot(), slot);
        let (res, _) = other_peer.write(b"mine".as_slice()).await;
        res.unwrap();
        // The withdrawn read completes as the NOP it became: it read nothing.
        let (res, buf) = read.await;
        assert_eq!(res.unwrap(), 0);
        assert!(buf.is_empty());
        let (res, buf) = other.read(vec![0u8; 8]).await;
        assert_eq!(
            &buf[..res.unwrap()],
            b"mine",
            "the new socket's data is still there"
        );
    });
}

#[test]
fn a_slot_of_another_runtime_is_refused() {
    let rt_a = Runtime::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let registered: Registered<UnixStream> = rt_a.block_on(async { a.register().unwrap() });
    let rt_b = Runtime::new().unwrap();
    rt_b.block_on(async {
        // Runtime B's table is empty (or holds something else) at that slot.
        let (res, _) = registered.write(b"lost?".as_slice()).await;
        let err = res.unwrap_err();
        assert!(
            err.to_string().contains("but it was submitted on runtime"),
            "{err}"
        );
    });
    rt_a.block_on(async {
        let (res, _) = registered.write(b"here".as_slice()).await;
        res.unwrap();
        let (res, buf) = b.read(vec![0u8; 8]).await;
        assert_eq!(&buf[..res.unwrap()], b"here");
    });
}

#[test]
fn registering_outside_a_runtime_hands_the_file_back() {
    let (a, _b) = UnixStream::pair().unwrap();
    let err = a.register().unwrap_err();
    assert!(
        err.error.to_string().contains("needs a running runtime"),
        "{}",
        err.error
    );
    let a = err.into_inner();
    Runtime::new().unwrap().block_on(async move {
        assert!(a.register().is_ok());
    });
}
