//! The driver's own window on the SQE array, for withdrawing SQEs the kernel has not read.
//!
//! An SQE sits in the submission queue from the moment an op queues it until the kernel
//! consumes it in `io_uring_enter`. Without `SQPOLL` (which iomgr never sets) the kernel reads
//! SQEs only inside that call, made by the ring's own thread, so between two enters the
//! unconsumed entries are plain memory that only this thread touches. The driver maps the
//! SQE array a second time (the kernel allows any number of mappings of `IORING_OFF_SQES`)
//! to rewrite such an entry as a `NOP`: an op dropped before submission then never runs and
//! its memory is never read, and a descriptor being closed is never reached through an SQE
//! queued by a forgotten op. The `io-uring` crate keeps its own pointer private.
//!
//! Positions are SQ ring positions: the entry at position `p` is `sqes[p & mask]`, because
//! the `io-uring` crate fills the SQ index array with the identity mapping and writes the
//! entry at `tail & mask`.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::ptr::NonNull;

use io_uring::{IoUring, opcode, squeue};

/// `IORING_OFF_SQES`: the mmap offset of the SQE array.
const OFF_SQES: libc::off_t = 0x1000_0000;

/// The fields of `struct io_uring_sqe` the driver reads (the 64-byte layout of the kernel ABI).
#[repr(C)]
struct RawSqe {
    opcode: u8,
    flags: u8,
    _ioprio: u16,
    fd: i32,
    _off: u64,
    _addr: u64,
    _len: u32,
    _op_flags: u32,
    user_data: u64,
    _rest: [u64; 3],
}

const _: () = assert!(size_of::<RawSqe>() == size_of::<squeue::Entry>());

/// `IOSQE_FIXED_FILE`: `fd` is an index into the registered files, not a descriptor.
const FIXED_FILE: u8 = 1;

/// A second mapping of a ring's SQE array; unmapped on drop.
pub(super) struct SqeArray {
    base: NonNull<RawSqe>,
    entries: u32,
}

impl SqeArray {
    /// Maps `ring`'s SQE array.
    pub(super) fn map(ring: &IoUring) -> io::Result<Self> {
        let entries = ring.params().sq_entries();
        debug_assert!(entries.is_power_of_two());
        let bytes = entries as usize * size_of::<RawSqe>();
        // SAFETY: a fresh shared mapping of the ring's SQE array; the arguments are the ones
        // the kernel documents for IORING_OFF_SQES, and the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                ring.as_raw_fd(),
                OFF_SQES,
            )
        };
        if ptr == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("mapping the io_uring SQE array failed: {e}"),
            ));
        }
        let base = NonNull::new(ptr.cast::<RawSqe>()).expect("mmap returned null");
        Ok(SqeArray { base, entries })
    }

    fn at(&self, position: u32) -> *mut RawSqe {
        // SAFETY: the index is masked into the mapped array.
        unsafe {
            self.base
                .as_ptr()
                .add((position & (self.entries - 1)) as usize)
        }
    }

    /// The `user_data` of the entry at `position`.
    ///
    /// # Safety
    /// `position` must be one the kernel has not consumed (see the module docs), read on the
    /// ring's thread outside `io_uring_enter`.
    pub(super) unsafe fn user_data(&self, position: u32) -> u64 {
        // SAFETY: the slot is mapped, and by the contract nobody writes it concurrently.
        unsafe { (*self.at(position)).user_data }
    }

    /// Whether the entry at `position` names descriptor `fd` (not a registered-file index).
    ///
    /// # Safety
    /// As for [`SqeArray::user_data`].
    pub(super) unsafe fn names_fd(&self, position: u32, fd: RawFd) -> bool {
        // SAFETY: as for `user_data`.
        let sqe = unsafe { &*self.at(position) };
        sqe.fd == fd
            && sqe.flags & FIXED_FILE == 0
            && !matches!(
                sqe.opcode,
                opcode::Nop::CODE
                    | opcode::AsyncCancel::CODE
                    | opcode::Timeout::CODE
                    | opcode::TimeoutRemove::CODE
                    | opcode::LinkTimeout::CODE
            )
    }

    /// Whether the entry at `position` names slot `slot` of the registered-file table.
    ///
    /// # Safety
    /// As for [`SqeArray::user_data`].
    pub(super) unsafe fn names_fixed_file(&self, position: u32, slot: u32) -> bool {
        // SAFETY: as for `user_data`.
        let sqe = unsafe { &*self.at(position) };
        sqe.fd as u32 == slot
            && sqe.flags & FIXED_FILE != 0
            && !matches!(sqe.opcode, opcode::Nop::CODE | opcode::AsyncCancel::CODE)
    }

    /// Replaces the entry at `position` by a `NOP` carrying `user_data`.
    ///
    /// # Safety
    /// As for [`SqeArray::user_data`].
    pub(super) unsafe fn make_nop(&self, position: u32, user_data: u64) {
        let nop = opcode::Nop::new().build().user_data(user_data);
        // SAFETY: the slot is mapped and holds an entry the kernel has not read; both types
        // are the same 64-byte `io_uring_sqe` (asserted above).
        unsafe { std::ptr::write(self.at(position).cast::<squeue::Entry>(), nop) };
    }
}

impl Drop for SqeArray {
    fn drop(&mut self) {
        let bytes = self.entries as usize * size_of::<RawSqe>();
        // SAFETY: unmaps exactly the mapping made in `map`; nothing refers to it any more.
        unsafe { libc::munmap(self.base.as_ptr().cast(), bytes) };
    }
}
