//! Passing tokens instead of messages: a producer, a worker and a writer share one memory
//! manager and hand each other 8-byte tokens through channels.
//!
//! ```text
//! cargo run --example token_pipeline
//! ```
//!
//! - The **producer** stores 4 KiB frames in a [`HeapMemoryManager`] and sends their tokens.
//! - The **worker** edits each frame in place through the manager (no copy of the frame).
//! - The **writer** sends each frame's bytes to a socket, then frees the slot.
//!
//! Tokens travel as [`OwnedToken`]s, which free their slot when dropped: if any task stops
//! half-way (here the worker is aborted once to show it), no slot leaks. A bounded manager also
//! gives back-pressure: a producer that outruns the writer waits for a free slot.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use iomgr::memory::{HeapMemoryManager, MemoryError, MemoryManager, Message, OwnedToken};
use iomgr::net::UnixStream;
use iomgr::sync::chan;
use iomgr::{Runtime, spawn, yield_now};

const FRAME: usize = 4096;
const FRAMES: u64 = 256;
const SLOTS: usize = 16;

type Manager = Rc<RefCell<HeapMemoryManager<Vec<u8>>>>;
type Token = OwnedToken<Vec<u8>, Manager>;

/// Stores frames and sends their tokens; waits for a free slot when the manager is full.
async fn producer(manager: Manager, out: iomgr::sync::Sender<Token>) -> Result<(), MemoryError> {
    for seq in 0..FRAMES {
        let mut message = Message::new(seq, vec![b'a' + (seq % 26) as u8; FRAME]);
        let token = loop {
            match OwnedToken::store(manager.clone(), message) {
                Ok(token) => break token,
                // Back-pressure: the manager is full; take the frame back and let the writer
                // free a slot.
                Err(refused) if refused.error == MemoryError::NoFreeSlots => {
                    message = refused.into_message();
                    yield_now().await;
                }
                Err(refused) => return Err(refused.error),
            }
        };
        if out.send(token).await.is_err() {
            break; // the worker is gone; the token in the error frees its slot
        }
    }
    Ok(())
}

/// Upper-cases each frame in place and passes the token on.
async fn worker(
    input: iomgr::sync::Receiver<Token>,
    out: iomgr::sync::Sender<Token>,
) -> Result<(), MemoryError> {
    while let Some(token) = input.recv().await {
        {
            let mut manager = token.manager().borrow_mut();
            let message = manager.read_mut(token.token())?;
            message.payload.make_ascii_uppercase();
        }
        if out.send(token).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Writes each frame to the socket from one reused buffer, then frees the frame's slot.
async fn writer(input: iomgr::sync::Receiver<Token>, socket: UnixStream) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(FRAME);
    let mut sent = 0;
    while let Some(token) = input.recv().await {
        buf.clear();
        buf.extend_from_slice(
            &token
                .manager()
                .borrow()
                .read(token.token())
                .map_err(io::Error::other)?
                .payload,
        );
        let (res, b) = socket.write_all(buf).await;
        res?;
        buf = b;
        token.free().map_err(|(e, _)| io::Error::other(e))?;
        sent += 1;
    }
    socket.shutdown(std::net::Shutdown::Write).await?;
    Ok(sent)
}

/// Reads everything the writer sent and checks every frame.
async fn reader(socket: UnixStream) -> io::Result<u64> {
    let mut frames = 0;
    let mut buf = Vec::with_capacity(FRAME);
    loop {
        buf.clear();
        let (res, b) = socket.read_exact(buf).await;
        buf = b;
        match res {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && buf.is_empty() => {
                return Ok(frames);
            }
            Err(e) => return Err(e),
        }
        let expected = b'A' + (frames % 26) as u8;
        if buf.iter().any(|&b| b != expected) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame {frames} is corrupt"),
            ));
        }
        frames += 1;
    }
}

fn main() -> io::Result<()> {
    Runtime::new()?.block_on(async {
        let manager: Manager = Rc::new(RefCell::new(HeapMemoryManager::with_fixed_capacity(SLOTS)));

        // First, a worker that is aborted with tokens in hand: its slots come back.
        {
            let (tx, rx) = chan::<Token>(4);
            let (out_tx, _out_rx) = chan::<Token>(4);
            for seq in 0..3 {
                let token = OwnedToken::store(manager.clone(), Message::new(seq, vec![0u8; FRAME]))
                    .map_err(|e| io::Error::other(e.error))?;
                tx.send(token)
                    .await
                    .map_err(|_| io::Error::other("worker gone"))?;
            }
            let stuck = spawn(worker(rx, out_tx));
            yield_now().await;
            stuck.abort();
            let _ = stuck.await;
            drop(tx);
        }
        let available = manager.borrow().available();
        println!("after aborting a worker mid-way: {available} of {SLOTS} slots free");
        assert_eq!(available, SLOTS, "no slot leaked");

        // Then the pipeline proper.
        let (to_worker, worker_in) = chan::<Token>(8);
        let (to_writer, writer_in) = chan::<Token>(8);
        let (ours, theirs) = UnixStream::pair()?;
        let produce = spawn(producer(manager.clone(), to_worker));
        let work = spawn(worker(worker_in, to_writer));
        let write = spawn(writer(writer_in, ours));
        let read = spawn(reader(theirs));
        produce.await?.map_err(io::Error::other)?;
        work.await?.map_err(io::Error::other)?;
        let sent = write.await??;
        let received = read.await??;
        println!("{sent} frames of {FRAME} B passed as tokens, {received} received intact");
        assert_eq!((sent, received), (FRAMES, FRAMES));
        assert_eq!(manager.borrow().available(), SLOTS, "every slot freed");
        Ok(())
    })
}
