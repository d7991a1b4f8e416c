//! What a ring knows beyond its queues: the opcodes the kernel supports, and the tables of
//! registered (fixed) buffers and files.
//!
//! **Features.** The opcodes are probed when the ring is built (`features.rs`); a
//! registration is tried when first needed, and a refused one is an `Unsupported` error naming
//! the feature and the kernel it needs ([`Feature`]).
//!
//! **Buffer table.** The ring's registered-buffer table is made sparse, on first use, with
//! [`BUFFER_TABLE`] slots (`IORING_REGISTER_BUFFERS2` with `IORING_RSRC_REGISTER_SPARSE`), so
//! that pools come and go without re-registering each other: a pool takes a run of
//! consecutive slots and fills it with one `IORING_REGISTER_BUFFERS_UPDATE`, and clears it
//! (an empty iovec per slot) when it is dropped. Neither call waits for the ring to go idle.
//!
//! **File table.** Likewise sparse (`IORING_REGISTER_FILES2`), with up to [`FILE_TABLE`] slots
//! (fewer if `RLIMIT_NOFILE` is lower: the kernel refuses a larger table); a file takes one
//! slot (`IORING_REGISTER_FILES_UPDATE`), and the most recently freed slot is reused first.
//!
//! Removing a file from its slot never affects an op the kernel has consumed: such an op
//! holds the kernel's own reference to the file until it completes. An SQE still *queued*
//! that names the slot would, once submitted, reach whatever file takes the slot next (the
//! same hazard as a reused descriptor number, see [`super::fd`]); only an op whose future
//! was forgotten can leave one, and [`Driver::unregister_file`] withdraws it first.

use std::io;
use std::os::fd::RawFd;

use super::Driver;
use super::features::Feature;

/// Slots in a ring's registered-buffer table (the kernel allows 16384).
pub(crate) const BUFFER_TABLE: u32 = 4096;
/// The most slots a ring's registered-file table gets (the kernel's own bound is
/// `RLIMIT_NOFILE`).
pub(crate) const FILE_TABLE: u32 = 16384;

/// A registration table: not made yet, made with `size` slots, or refused by the kernel.
#[derive(Debug)]
enum Table<S> {
    NotYet,
    Made(S),
    Refused(i32),
}

/// The free runs of the buffer table, sorted by start and never adjacent.
#[derive(Debug, Default)]
struct BufferSlots {
    free: Vec<(u32, u32)>,
}

impl BufferSlots {
    fn new(size: u32) -> Self {
        BufferSlots {
            free: vec![(0, size)],
        }
    }

    /// The first run of `count` free slots (first fit).
    fn take(&mut self, count: u32) -> Option<u32> {
        let i = self.free.iter().position(|&(_, len)| len >= count)?;
        let (start, len) = self.free[i];
        if len == count {
            self.free.remove(i);
        } else {
            self.free[i] = (start + count, len - count);
        }
        Some(start)
    }

    fn give_back(&mut self, start: u32, count: u32) {
        let i = self.free.partition_point(|&(s, _)| s < start);
        self.free.insert(i, (start, count));
        // Merge with the next run, then with the previous one.
        if i + 1 < self.free.len() && start + count == self.free[i + 1].0 {
            self.free[i].1 += self.free[i + 1].1;
            self.free.remove(i + 1);
        }
        if i > 0 && self.free[i - 1].0 + self.free[i - 1].1 == start {
            self.free[i - 1].1 += self.free[i].1;
            self.free.remove(i);
        }
    }

    fn free_count(&self) -> u32 {
        self.free.iter().map(|&(_, len)| len).sum()
    }

    fn largest_run(&self) -> u32 {
        self.free.iter().map(|&(_, len)| len).max().unwrap_or(0)
    }
}

/// The file table's slots: never-used ones from `next` on, freed ones on a stack (the most
/// recently freed is reused first).
#[derive(Debug)]
struct FileSlots {
    size: u32,
    next: u32,
    freed: Vec<u32>,
}

/// Per-ring registration state, kept in the [`Driver`].
#[derive(Debug)]
pub(crate) struct Registry {
    buffers: Table<BufferSlots>,
    files: Table<FileSlots>,
    /// Test hook: the next registration syscall fails with this errno.
    #[cfg(test)]
    pub(crate) fail_next: Option<i32>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            buffers: Table::NotYet,
            files: Table::NotYet,
            #[cfg(test)]
            fail_next: None,
        }
    }
}

impl Driver {
    /// `Ok` if the kernel has `feature`, else the error that names it. A registration
    /// feature is checked by making the table (once).
    pub(crate) fn require(&mut self, feature: Feature) -> io::Result<()> {
        self.features.require(feature)?;
        match feature {
            Feature::RegisteredBuffers => self.buffer_table().map(drop),
            Feature::RegisteredFiles => self.file_table().map(drop),
            _ => Ok(()),
        }
    }

    /// Runs a registration syscall (tests may make it fail first).
    fn registration(
        &mut self,
        call: impl FnOnce(&io_uring::IoUring) -> io::Result<()>,
    ) -> io::Result<()> {
        #[cfg(test)]
        if let Some(errno) = self.registry.fail_next.take() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        call(&self.ring)
    }

    fn buffer_table(&mut self) -> io::Result<&mut BufferSlots> {
        if let Table::NotYet = self.registry.buffers {
            let made =
                self.registration(|ring| ring.submitter().register_buffers_sparse(BUFFER_TABLE));
            self.registry.buffers = match made {
                Ok(()) => Table::Made(BufferSlots::new(BUFFER_TABLE)),
                Err(e) => match e.raw_os_error() {
                    // Unknown flag or opcode: a kernel without sparse tables. Keep the answer.
                    Some(errno @ (libc::EINVAL | libc::EOPNOTSUPP)) => Table::Refused(errno),
                    _ => {
                        return Err(explain_register(
                            e,
                            "making the ring's registered-buffer table",
                        ));
                    }
                },
            };
        }
        match &mut self.registry.buffers {
            Table::Made(slots) => Ok(slots),
            Table::Refused(errno) => Err(Feature::RegisteredBuffers.refused(&format!(
                "the kernel refused the table: {}",
                io::Error::from_raw_os_error(*errno)
            ))),
            Table::NotYet => unreachable!(),
        }
    }

    fn file_table(&mut self) -> io::Result<&mut FileSlots> {
        if let Table::NotYet = self.registry.files {
            let size = nofile_limit().clamp(1, FILE_TABLE);
            let made = self.registration(|ring| ring.submitter().register_files_sparse(size));
            self.registry.files = match made {
                Ok(()) => Table::Made(FileSlots {
                    size,
                    next: 0,
                    freed: Vec::new(),
                }),
                Err(e) => match e.raw_os_error() {
                    Some(errno @ (libc::EINVAL | libc::EOPNOTSUPP)) => Table::Refused(errno),
                    _ => {
                        return Err(explain_register(
                            e,
                            "making the ring's registered-file table",
                        ));
                    }
                },
            };
        }
        match &mut self.registry.files {
            Table::Made(slots) => Ok(slots),
            Table::Refused(errno) => Err(Feature::RegisteredFiles.refused(&format!(
                "the kernel refused the table: {}",
                io::Error::from_raw_os_error(*errno)
            ))),
            Table::NotYet => unreachable!(),
        }
    }

    /// Registers `iovecs` in consecutive slots of the buffer table; returns the first slot.
    ///
    /// # Safety
    /// Every iovec must describe memory that stays allocated (and is not used for anything
    /// the kernel may not write) until [`Driver::unregister_buffers`] has cleared its slot
    /// *and* no op that named the slot is still in flight.
    pub(crate) unsafe fn register_buffers(&mut self, iovecs: &[libc::iovec]) -> io::Result<u32> {
        let count = u32::try_from(iovecs.len()).unwrap_or(u32::MAX);
        let slots = self.buffer_table()?;
        let Some(first) = slots.take(count) else {
            let (free, largest) = (slots.free_count(), slots.largest_run());
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "cannot register {count} buffers: the ring's registered-buffer table has \
                     {BUFFER_TABLE} slots, {free} free (at most {largest} in a row); drop other \
                     pools or ask for fewer buffers"
                ),
            ));
        };
        // SAFETY: forwarded from this function's contract.
        let updated = self.registration(|ring| unsafe {
            ring.submitter()
                .register_buffers_update(first, iovecs, None)
        });
        match updated {
            Ok(()) => Ok(first),
            Err(e) => {
                // Nothing was registered (the kernel undoes a partial update).
                if let Table::Made(slots) = &mut self.registry.buffers {
                    slots.give_back(first, count);
                }
                let bytes: usize = iovecs.iter().map(|v| v.iov_len).sum();
                Err(explain_register(
                    e,
                    &format!("registering {count} buffers ({bytes} bytes) with the ring"),
                ))
            }
        }
    }

    /// Clears `count` slots of the buffer table from `first` and frees them for reuse.
    ///
    /// On error the slots stay taken (and the memory must stay allocated: the kernel may
    /// still hold it).
    pub(crate) fn unregister_buffers(&mut self, first: u32, count: u32) -> io::Result<()> {
        const EMPTY: libc::iovec = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let empty = [EMPTY; 64];
        let mut done = 0;
        while done < count {
            let n = (count - done).min(empty.len() as u32);
            // SAFETY: empty iovecs name no memory; they clear the slots.
            let cleared = self.registration(|ring| unsafe {
                ring.submitter()
                    .register_buffers_update(first + done, &empty[..n as usize], None)
            });
            if let Err(e) = cleared {
                // Give back what was cleared; the rest stays taken.
                if let Table::Made(slots) = &mut self.registry.buffers
                    && done > 0
                {
                    slots.give_back(first, done);
                }
                return Err(e);
            }
            done += n;
        }
        if let Table::Made(slots) = &mut self.registry.buffers {
            slots.give_back(first, count);
        }
        Ok(())
    }

    /// Puts `fd` in a free slot of the file table; returns the slot.
    pub(crate) fn register_file(&mut self, fd: RawFd) -> io::Result<u32> {
        let slots = self.file_table()?;
        let slot = match slots.freed.pop() {
            Some(slot) => slot,
            None if slots.next < slots.size => {
                slots.next += 1;
                slots.next - 1
            }
            None => {
                let size = slots.size;
                return Err(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "cannot register the file: all {size} slots of the ring's \
                         registered-file table are taken (the table is as large as \
                         RLIMIT_NOFILE allows, at most {FILE_TABLE}); close registered files"
                    ),
                ));
            }
        };
        let updated = self.registration(|ring| {
            ring.submitter()
                .register_files_update(slot, &[fd])
                .map(drop)
        });
        match updated {
            Ok(()) => Ok(slot),
            Err(e) => {
                if let Table::Made(slots) = &mut self.registry.files {
                    slots.freed.push(slot);
                }
                Err(explain_register(e, "registering a file with the ring"))
            }
        }
    }

    /// Empties file slot `slot` and frees it for reuse, after withdrawing any queued SQE
    /// that names it. Ops the kernel has consumed keep their own reference to the file.
    pub(crate) fn unregister_file(&mut self, slot: u32) -> io::Result<()> {
        self.withdraw_fixed_file(slot);
        self.registration(|ring| {
            ring.submitter()
                .register_files_update(slot, &[-1])
                .map(drop)
        })?;
        if let Table::Made(slots) = &mut self.registry.files {
            slots.freed.push(slot);
        }
        Ok(())
    }

    /// Turns every queued SQE that names file slot `slot` into a `NOP` (keeping its
    /// `user_data`), as [`Driver::withdraw_fd`] does for descriptor numbers.
    fn withdraw_fixed_file(&mut self, slot: u32) {
        if !self.sq_dirty {
            return;
        }
        for position in self.unconsumed() {
            // SAFETY: `position` has not been consumed, and we are on the ring's thread
            // outside `io_uring_enter`.
            unsafe {
                if self.sqes.names_fixed_file(position, slot) {
                    let user_data = self.sqes.user_data(position);
                    self.sqes.make_nop(position, user_data);
                }
            }
        }
    }

    /// Free slots of the buffer table (`None` before it is made), for tests.
    #[cfg(test)]
    pub(crate) fn free_buffer_slots(&self) -> Option<u32> {
        match &self.registry.buffers {
            Table::Made(slots) => Some(slots.free_count()),
            _ => None,
        }
    }
}

/// `RLIMIT_NOFILE`'s soft limit (the kernel refuses a larger file table).
fn nofile_limit() -> u32 {
    // SAFETY: `rlimit` is plain data; getrlimit writes it.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid resource and a writable struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    u32::try_from(limit.rlim_cur).unwrap_or(u32::MAX)
}

/// `RLIMIT_MEMLOCK`'s soft limit in bytes, if it has one.
fn memlock_limit() -> Option<u64> {
    // SAFETY: as in `nofile_limit`.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: as in `nofile_limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return None;
    }
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// A registration error with what was being done and, for the usual causes, what to do.
fn explain_register(error: io::Error, doing: &str) -> io::Error {
    let hint = match error.raw_os_error() {
        // Pinned pages are charged to RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK.
        Some(libc::ENOMEM) => match memlock_limit() {
            Some(limit) => format!(
                ": the locked-memory limit is too small (RLIMIT_MEMLOCK, `ulimit -l`, is {} KiB; \
                 registered buffers are pinned and count against it): raise it, or register \
                 fewer or smaller buffers",
                limit / 1024
            ),
            None => ": the kernel is out of memory for pinning the buffers".to_string(),
        },
        Some(libc::EMFILE) => ": the table would exceed RLIMIT_NOFILE".to_string(),
        Some(libc::EFAULT) => ": the memory is not valid to register".to_string(),
        Some(libc::EEXIST) => {
            ": the ring is single-issuer and this is not its thread (register on the thread \
             that runs the runtime)"
                .to_string()
        }
        _ => String::new(),
    };
    io::Error::new(error.kind(), format!("{doing} failed: {error}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_runs_are_taken_first_fit_and_merged_when_given_back() {
        let mut slots = BufferSlots::new(16);
        assert_eq!(slots.take(4), Some(0));
        assert_eq!(slots.take(4), Some(4));
        assert_eq!(slots.take(8), Some(8));
        assert_eq!(slots.take(1), None);
        slots.give_back(4, 4);
        assert_eq!(slots.take(5), None, "only 4 in a row");
        slots.give_back(0, 4);
        assert_eq!(slots.free, vec![(0, 8)], "merged with the run after it");
        slots.give_back(8, 8);
        assert_eq!(slots.free, vec![(0, 16)], "merged on both sides");
        assert_eq!(slots.take(16), Some(0));
    }

    #[test]
    fn an_unsupported_feature_names_itself_and_its_kernel() {
        let e = Feature::ReadFixed.unsupported(Some((4, 19)));
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert!(
            e.to_string().starts_with("READ_FIXED is not supported"),
            "{e}"
        );
        assert!(e.to_string().contains("needs Linux 5.1 or newer"), "{e}");
        let e = Feature::RegisteredFiles.refused("test");
        assert!(e.to_string().contains("needs Linux 5.19"), "{e}");
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_kernel_without_an_opcode_is_an_error_not_a_panic() {
        let rt = crate::Runtime::new().unwrap();
        rt.block_on(async {
            let shared = crate::runtime::current().unwrap();
            {
                let mut driver = shared.driver.borrow_mut();
                assert!(
                    driver.require(Feature::ReadFixed).is_ok(),
                    "Linux 5.19+ has it"
                );
                driver.features = driver.features.without(Feature::ReadFixed);
            }
            let e = Feature::ReadFixed.check().unwrap_err();
            assert!(e.to_string().contains("READ_FIXED is not supported"), "{e}");
            assert!(e.to_string().contains("Linux 5.1"), "{e}");
            let e = crate::buf::FixedBufPool::new(2, 4096).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::Unsupported);
            assert!(e.to_string().contains("READ_FIXED is not supported"), "{e}");
            assert!(Feature::WriteFixed.check().is_ok());
        });
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_refused_table_or_pinning_failure_is_explained() {
        let rt = crate::Runtime::new().unwrap();
        rt.block_on(async {
            let shared = crate::runtime::current().unwrap();
            // The kernel refuses the sparse file table (as one before 5.19 would).
            shared.driver.borrow_mut().registry.fail_next = Some(libc::EINVAL);
            let e = Feature::RegisteredFiles.check().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::Unsupported);
            assert!(
                e.to_string()
                    .contains("IORING_REGISTER_FILES2) needs Linux 5.19"),
                "{e}"
            );
            // The answer is kept: no second attempt.
            assert!(Feature::RegisteredFiles.check().is_err());

            // Pinning the pool's memory fails as with a small RLIMIT_MEMLOCK.
            assert!(Feature::RegisteredBuffers.check().is_ok());
            let before = shared.driver.borrow().free_buffer_slots();
            shared.driver.borrow_mut().registry.fail_next = Some(libc::ENOMEM);
            let e = crate::buf::FixedBufPool::new(4, 4096).unwrap_err();
            assert!(
                e.to_string()
                    .contains("registering 4 buffers (16384 bytes)"),
                "{e}"
            );
            assert!(
                e.to_string().contains("RLIMIT_MEMLOCK") || e.to_string().contains("out of memory"),
                "{e}"
            );
            assert_eq!(
                shared.driver.borrow().free_buffer_slots(),
                before,
                "the slots came back"
            );
        });
    }
}
