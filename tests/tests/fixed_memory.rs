//! `RegisteredMemoryManager`: messages in registered memory, written to files and sockets
//! with `WRITE_FIXED`/`SEND` and read into with `READ_FIXED` where they lie, with the
//! manager's generation-checked tokens and errors.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use iomgr::Runtime;
use iomgr::buf::{FixedIoBuf, IoBuf};
use iomgr::fs::OpenOptions;
use iomgr::memory::{
    HeaderStore, MemoryClass, MemoryError, MemoryManager, Message, OwnedToken,
    RegisteredMemoryManager,
};
use iomgr::net::UnixStream;
use iomgr_tests::{TempDir, until};

#[test]
fn a_message_goes_to_a_file_and_comes_from_a_socket_without_a_copy() {
    let dir = TempDir::new("regmem");
    let path = dir.join("out");
    Runtime::new().unwrap().block_on(async {
        let mut manager = RegisteredMemoryManager::new(8, 4096).unwrap();
        assert_eq!(manager.memory_class(), MemoryClass::IoUringRegistered);
        let token = manager
            .store_bytes(7, b"stored once, written in place")
            .unwrap();
        let header = manager.header(token).unwrap();
        assert_eq!((header.sequence, header.payload_size), (7, 29));
        assert_eq!(header.memory_class, MemoryClass::IoUringRegistered);
        let where_it_lies = manager.read(token).unwrap().payload.stable_ptr();

        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(&path)
            .await
            .unwrap();
        let lent = manager.lend(token).unwrap();
        assert_eq!(
            lent.stable_ptr(),
            where_it_lies,
            "the op gets the slot's memory itself"
        );
        assert!(
            manager
                .pool()
                .slots()
                .contains(&u32::from(lent.buf_index()))
        );
        let (res, lent) = file.write_fixed_at(lent, 0).await; // WRITE_FIXED
        assert_eq!(res.unwrap(), 29);
        drop(lent);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"stored once, written in place"
        );

        // Receive a message straight into a slot (READ_FIXED on a socket).
        let (a, b) = UnixStream::pair().unwrap();
        let (res, _) = a.write(b"received in place".as_slice()).await;
        res.unwrap();
        let incoming = manager.alloc(8).unwrap();
        assert_eq!(manager.header(incoming).unwrap().payload_size, 0);
        let (res, lent) = b.read_fixed(manager.lend(incoming).unwrap()).await;
        assert_eq!(res.unwrap(), 17);
        assert_eq!(&lent[..], b"received in place");
        drop(lent);
        assert_eq!(manager.header(incoming).unwrap().payload_size, 17);
        assert_eq!(
            &manager.read(incoming).unwrap().payload[..],
            b"received in place"
        );

        // ...and send it on from there.
        let (res, lent) = b.write_all_fixed(manager.lend(incoming).unwrap()).await;
        res.unwrap();
        drop(lent);
        let (res, buf) = a.read(vec![0u8; 64]).await;
        assert_eq!(&buf[..res.unwrap()], b"received in place");

        // A stored message can be read back from a file into its slot too.
        let (res, lent) = file.read_fixed_at(manager.lend(token).unwrap(), 12).await;
        assert_eq!(res.unwrap(), 17);
        drop(lent);
        assert_eq!(
            manager.header(token).unwrap().payload_size,
            29,
            "length kept"
        );
        assert_eq!(
            &manager.read(token).unwrap().payload[..17],
            b" written in place"
        );
        manager.free(token).unwrap();
        manager.free(incoming).unwrap();
        assert_eq!(manager.available(), 8);
    });
}

#[test]
fn a_lent_message_cannot_be_read_freed_or_lent_again() {
    Runtime::new().unwrap().block_on(async {
        let mut manager = RegisteredMemoryManager::new(2, 64).unwrap();
        let token = manager.store_bytes(1, b"busy").unwrap();
        let lent = manager.lend(token).unwrap();
        assert_eq!(lent.token(), token);
        assert_eq!(
            manager.read(token).err(),
            Some(MemoryError::AlreadyBorrowed)
        );
        assert_eq!(
            manager.lend(token).err(),
            Some(MemoryError::AlreadyBorrowed)
        );
        assert_eq!(
            manager.read_mut(token).err(),
            Some(MemoryError::AlreadyBorrowed)
        );
        assert_eq!(manager.free(token), Err(MemoryError::BorrowActive));
        assert_eq!(
            manager.header(token).unwrap().payload_size,
            4,
            "the header stays readable"
        );
        assert_eq!(manager.available(), 1);
        drop(lent);
        assert_eq!(&manager.read(token).unwrap().payload[..], b"busy");
        {
            // A read guard blocks lending, so the kernel never writes under a reader.
            let guard = manager.read(token).unwrap();
            assert_eq!(
                manager.lend(token).err(),
                Some(MemoryError::AlreadyBorrowed)
            );
            drop(guard);
        }
        manager.free(token).unwrap();
    });
}

#[test]
fn tokens_are_generation_checked_and_errors_are_values() {
    Runtime::new().unwrap().block_on(async {
        let mut manager = RegisteredMemoryManager::new(2, 16).unwrap();
        let a = manager.store_bytes(1, b"a").unwrap();
        let b = manager.alloc(2).unwrap();
        assert_eq!(manager.alloc(3), Err(MemoryError::NoFreeSlots));
        assert_eq!(manager.buffer().err(), Some(MemoryError::NoFreeSlots));
        manager.free(a).unwrap();
        assert_eq!(manager.free(a), Err(MemoryError::BadToken), "freed twice");
        assert_eq!(
            manager.store_bytes(4, &[0u8; 17]),
            Err(MemoryError::TooLarge)
        );
        let c = manager.store_bytes(5, b"c").unwrap();
        assert_eq!(c.index(), a.index(), "the slot was reused");
        assert_eq!(
            manager.read(a).err(),
            Some(MemoryError::BadToken),
            "stale token"
        );
        assert_eq!(manager.lend(a).err(), Some(MemoryError::BadToken));
        assert_eq!(&manager.read(c).unwrap().payload[..], b"c");

        // try_store hands a message back; a buffer from elsewhere is registered memory too.
        let elsewhere = iomgr::buf::FixedBufPool::new(1, 16).unwrap();
        let refused = manager
            .try_store(Message::new(9, elsewhere.try_get().unwrap()))
            .unwrap_err();
        assert_eq!(refused.error, MemoryError::NoFreeSlots);
        let message = manager.take(b).unwrap();
        assert_eq!(message.header.sequence, 2);
        drop(message);
        let d = manager.store(refused.into_message()).unwrap();
        assert_eq!(
            manager.header(d).unwrap().memory_class,
            MemoryClass::IoUringRegistered
        );
        assert_eq!(elsewhere.available(), 0, "its buffer is stored here now");
        manager.free(d).unwrap();
        assert_eq!(elsewhere.available(), 1);
        assert_eq!(manager.available(), 1);
        manager
            .read_mut(c)
            .unwrap()
            .payload
            .extend_from_slice(b"++");
        assert_eq!(&manager.read(c).unwrap().payload[..], b"c++");
    });
}

#[test]
fn an_op_dropped_in_flight_gives_the_payload_back_after_its_last_cqe() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let mut manager = RegisteredMemoryManager::new(2, 64).unwrap();
        let token = manager.store_bytes(1, b"keep me").unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        {
            // Nothing to read: the read waits in the kernel, then times out and is dropped.
            let read = a.read_fixed(manager.lend(token).unwrap());
            let _ = iomgr::time::timeout(Duration::from_millis(2), read).await;
        }
        assert_eq!(
            manager.read(token).err(),
            Some(MemoryError::AlreadyBorrowed)
        );
        until(100, "the cancelled read gave the slot back", || {
            manager.read(token).is_ok()
        })
        .await;
        // The read was cancelled before any data came: the message is as it was.
        assert_eq!(&manager.read(token).unwrap().payload[..], b"keep me");
        manager.free(token).unwrap();
        drop(b);
    });
    assert_eq!(rt.ops_in_flight(), 0);
}

#[test]
fn owned_tokens_and_generic_code_work_with_it() {
    fn stored<M: MemoryManager<iomgr::buf::FixedBuf>>(manager: &M) -> usize {
        manager.capacity() - manager.available()
    }
    Runtime::new().unwrap().block_on(async {
        let manager = RegisteredMemoryManager::new(4, 128).unwrap();
        let buf = {
            let mut buf = manager.buffer().unwrap();
            buf.extend_from_slice(b"owned");
            buf
        };
        let shared = Rc::new(RefCell::new(manager));
        {
            let owned = OwnedToken::store(shared.clone(), Message::new(1, buf)).unwrap();
            assert_eq!(stored(&*shared.borrow()), 1);
            let lent = shared.borrow().lend(owned.token()).unwrap();
            assert_eq!(&lent[..], b"owned");
        }
        assert_eq!(
            stored(&*shared.borrow()),
            0,
            "dropping the owned token freed the slot"
        );
        assert_eq!(
            shared.borrow().pool().available(),
            4,
            "and its buffer is back in the pool"
        );
    });
}
