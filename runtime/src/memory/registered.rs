//! [`RegisteredMemoryManager`]: messages whose payloads live in memory registered with the
//! ring, so the kernel reads and writes them in place (`READ_FIXED` / `WRITE_FIXED`).

use core::cell::{Cell, Ref, RefCell, RefMut};
use core::fmt;
use core::ops::{Deref, DerefMut};
use std::io;
use std::rc::Rc;

use super::slot_table::{NO_SLOT, retires};
use super::{
    HeaderStore, MemoryClass, MemoryError, MemoryManager, Message, MessageHeader, MessageToken,
    Payload, StoreError,
};
use crate::buf::{
    FixedBuf, FixedBufPool, FixedIoBuf, FixedIoBufMut, IoBuf, IoBufMut, fixed_sealed,
};

impl Payload for FixedBuf {
    fn payload_size(&self) -> usize {
        self.len()
    }
}

/// A manager of `slots` messages whose payloads are [`FixedBuf`]s: buffers registered with
/// the current runtime's ring ([`MemoryClass::IoUringRegistered`]).
///
/// It keeps the manager contract (generation-checked [`MessageToken`]s, errors as values)
/// and adds [`lend`](Self::lend): the payload of a stored message as an owned registered
/// buffer ([`LentSlot`]) that any `*_fixed` op takes. The kernel then reads or writes the
/// message where it lies, with no copy; the slot comes back when the lent buffer is dropped
/// (for an op dropped mid-flight: when the kernel is done, as for any buffer).
///
/// ```no_run
/// use iomgr::memory::{HeaderStore, MemoryManager, RegisteredMemoryManager};
/// # type Error = Box<dyn std::error::Error>;
/// # iomgr::Runtime::new()?.block_on(async {
/// # let (stream, peer) = iomgr::net::UnixStream::pair()?;
/// # let file = iomgr::fs::File::create("/tmp/log").await?;
/// let mut manager = RegisteredMemoryManager::new(64, 16 * 1024)?;
///
/// // Receive a message straight into registered memory (READ_FIXED)...
/// let token = manager.alloc(1)?;
/// let (res, lent) = stream.read_fixed(manager.lend(token)?).await;
/// let n = res?;
/// drop(lent); // the payload, now n bytes long, is back in its slot
/// assert_eq!(manager.header(token)?.payload_size, n);
///
/// // ...and write it out from there (WRITE_FIXED): no copy either way.
/// let (res, lent) = file.write_fixed_at(manager.lend(token)?, 0).await;
/// res?;
/// drop(lent);
/// manager.free(token)?;
/// # Ok::<(), Error>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// While a message is lent, [`read`](MemoryManager::read) and
/// [`read_mut`](MemoryManager::read_mut) give [`MemoryError::AlreadyBorrowed`] and
/// [`free`](MemoryManager::free) gives [`MemoryError::BorrowActive`]; its header stays
/// readable. Cloning the manager gives another handle to the same slots.
#[derive(Clone)]
pub struct RegisteredMemoryManager {
    inner: Rc<Inner>,
}

struct Inner {
    pool: FixedBufPool,
    slots: Box<[RefCell<SlotState>]>,
    free_head: Cell<u32>,
    occupied: Cell<usize>,
    retired: Cell<usize>,
}

enum SlotState {
    Vacant {
        generation: u32,
        next_free: u32,
    },
    Occupied {
        generation: u32,
        message: Message<FixedBuf>,
    },
    /// The payload is out, in a [`LentSlot`]; the header stays.
    Lent {
        generation: u32,
        header: MessageHeader,
    },
}

impl RegisteredMemoryManager {
    /// A manager of `slots` messages of up to `slot_size` bytes each, with a
    /// [`FixedBufPool`] of as many buffers registered with the current runtime's ring.
    ///
    /// # Errors
    /// As [`FixedBufPool::new`].
    pub fn new(slots: usize, slot_size: usize) -> io::Result<Self> {
        let pool = FixedBufPool::new(slots, slot_size)?;
        let count = slots as u32;
        let slots = (0..count)
            .map(|i| {
                RefCell::new(SlotState::Vacant {
                    generation: 0,
                    next_free: if i + 1 < count { i + 1 } else { NO_SLOT },
                })
            })
            .collect();
        Ok(RegisteredMemoryManager {
            inner: Rc::new(Inner {
                pool,
                slots,
                free_head: Cell::new(0),
                occupied: Cell::new(0),
                retired: Cell::new(0),
            }),
        })
    }

    /// The pool the payload buffers come from.
    pub fn pool(&self) -> &FixedBufPool {
        &self.inner.pool
    }

    /// The size of each slot's buffer.
    pub fn slot_size(&self) -> usize {
        self.inner.pool.buf_size()
    }

    /// An empty registered buffer from the manager's pool, to fill and
    /// [`store`](MemoryManager::store).
    ///
    /// # Errors
    /// [`MemoryError::NoFreeSlots`] if every buffer is in use.
    pub fn buffer(&self) -> Result<FixedBuf, MemoryError> {
        self.inner
            .pool
            .try_get()
            .map_err(|_| MemoryError::NoFreeSlots)
    }

    /// Stores an empty message (its payload an empty registered buffer), to read into
    /// through [`lend`](Self::lend).
    ///
    /// # Errors
    /// [`MemoryError::NoFreeSlots`] if every slot (or buffer) is in use.
    pub fn alloc(&mut self, sequence: u64) -> Result<MessageToken, MemoryError> {
        let buf = self.buffer()?;
        self.store(Message::new(sequence, buf))
    }

    /// Copies `bytes` into a registered buffer and stores them (the one copy, on the way
    /// in: from then on the kernel reads the message where it lies).
    ///
    /// # Errors
    /// [`MemoryError::NoFreeSlots`] if every slot is in use; [`MemoryError::TooLarge`] if
    /// `bytes` is longer than [`slot_size`](Self::slot_size).
    pub fn store_bytes(
        &mut self,
        sequence: u64,
        bytes: &[u8],
    ) -> Result<MessageToken, MemoryError> {
        if bytes.len() > self.slot_size() {
            return Err(MemoryError::TooLarge);
        }
        let mut buf = self.buffer()?;
        buf.extend_from_slice(bytes);
        self.store(Message::new(sequence, buf))
    }

    /// Lends the payload of the message named by `token` as an owned registered buffer,
    /// for `read_fixed`/`write_fixed` (or any op). The slot gets it back when the
    /// [`LentSlot`] is dropped, its header's `payload_size` set to the buffer's new length.
    ///
    /// # Errors
    /// As [`read`](MemoryManager::read); [`MemoryError::AlreadyBorrowed`] also while a read
    /// guard to the message is alive or it is lent already.
    pub fn lend(&self, token: MessageToken) -> Result<LentSlot, MemoryError> {
        let slot = self.slot(token)?;
        let mut state = slot
            .try_borrow_mut()
            .map_err(|_| MemoryError::AlreadyBorrowed)?;
        match &*state {
            SlotState::Occupied { generation, .. } if *generation == token.generation() => {}
            other => return Err(self.refusal(other, token)),
        }
        let generation = token.generation();
        let placeholder = SlotState::Vacant {
            generation,
            next_free: NO_SLOT,
        };
        let SlotState::Occupied { message, .. } = core::mem::replace(&mut *state, placeholder)
        else {
            unreachable!("checked above")
        };
        let (header, payload) = message.into_parts();
        *state = SlotState::Lent { generation, header };
        Ok(LentSlot {
            inner: self.inner.clone(),
            token,
            buf: Some(payload),
        })
    }

    /// How many messages are stored (lent ones included).
    pub fn len(&self) -> usize {
        self.inner.occupied.get()
    }

    /// Whether no message is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frees the slot of `token` and hands its message back.
    ///
    /// # Errors
    /// As [`MemoryManager::free`].
    pub fn take(&mut self, token: MessageToken) -> Result<Message<FixedBuf>, MemoryError> {
        let slot = self.slot(token)?;
        let mut state = slot
            .try_borrow_mut()
            .map_err(|_| MemoryError::BorrowActive)?;
        match &*state {
            SlotState::Occupied { generation, .. } if *generation == token.generation() => {}
            SlotState::Lent { generation, .. } if *generation == token.generation() => {
                return Err(MemoryError::BorrowActive);
            }
            other => return Err(self.refusal(other, token)),
        }
        let vacant = self.release(token);
        match core::mem::replace(&mut *state, vacant) {
            SlotState::Occupied { message, .. } => Ok(message),
            _ => unreachable!("checked above"),
        }
    }

    fn slot(&self, token: MessageToken) -> Result<&RefCell<SlotState>, MemoryError> {
        self.inner
            .slots
            .get(token.index() as usize)
            .ok_or(MemoryError::BadToken)
    }

    /// Why `token` does not reach a message in a slot found in `state`.
    fn refusal(&self, state: &SlotState, token: MessageToken) -> MemoryError {
        match state {
            SlotState::Vacant { generation, .. } if *generation == token.generation() => {
                MemoryError::NotAllocated
            }
            SlotState::Lent { generation, .. } if *generation == token.generation() => {
                MemoryError::AlreadyBorrowed
            }
            _ => MemoryError::BadToken,
        }
    }

    /// The vacant state the slot of `token` takes when its message goes, linked into the
    /// free list (or retired at its last generation).
    fn release(&self, token: MessageToken) -> SlotState {
        let inner = &self.inner;
        inner.occupied.set(inner.occupied.get() - 1);
        if retires(token) {
            inner.retired.set(inner.retired.get() + 1);
            return SlotState::Vacant {
                generation: token.generation(),
                next_free: NO_SLOT,
            };
        }
        let next_free = inner.free_head.replace(token.index());
        SlotState::Vacant {
            generation: token.generation() + 1,
            next_free,
        }
    }
}

impl HeaderStore for RegisteredMemoryManager {
    fn header(&self, token: MessageToken) -> Result<MessageHeader, MemoryError> {
        let slot = self.slot(token)?;
        let state = slot
            .try_borrow()
            .map_err(|_| MemoryError::AlreadyBorrowed)?;
        match &*state {
            SlotState::Occupied {
                generation,
                message,
            } if *generation == token.generation() => Ok(message.header),
            SlotState::Lent { generation, header } if *generation == token.generation() => {
                Ok(*header)
            }
            other => Err(self.refusal(other, token)),
        }
    }
}

impl MemoryManager<FixedBuf> for RegisteredMemoryManager {
    type ReadGuard<'a> = Ref<'a, Message<FixedBuf>>;
    type WriteGuard<'a> = RefMut<'a, Message<FixedBuf>>;

    fn try_store(
        &mut self,
        mut message: Message<FixedBuf>,
    ) -> Result<MessageToken, StoreError<FixedBuf>> {
        let inner = &self.inner;
        let index = inner.free_head.get();
        if index == NO_SLOT {
            return Err(StoreError {
                error: MemoryError::NoFreeSlots,
                message,
            });
        }
        message.header.memory_class = MemoryClass::IoUringRegistered;
        let mut state = inner.slots[index as usize].borrow_mut();
        let SlotState::Vacant {
            generation,
            next_free,
        } = *state
        else {
            unreachable!("the free list links only vacant slots")
        };
        *state = SlotState::Occupied {
            generation,
            message,
        };
        inner.free_head.set(next_free);
        inner.occupied.set(inner.occupied.get() + 1);
        Ok(MessageToken::new(index, generation))
    }

    fn read(&self, token: MessageToken) -> Result<Ref<'_, Message<FixedBuf>>, MemoryError> {
        let state = self
            .slot(token)?
            .try_borrow()
            .map_err(|_| MemoryError::AlreadyBorrowed)?;
        Ref::filter_map(state, |state| match state {
            SlotState::Occupied {
                generation,
                message,
            } if *generation == token.generation() => Some(message),
            _ => None,
        })
        .map_err(|state| self.refusal(&state, token))
    }

    fn read_mut(
        &mut self,
        token: MessageToken,
    ) -> Result<RefMut<'_, Message<FixedBuf>>, MemoryError> {
        let state = self
            .slot(token)?
            .try_borrow_mut()
            .map_err(|_| MemoryError::AlreadyBorrowed)?;
        RefMut::filter_map(state, |state| match state {
            SlotState::Occupied {
                generation,
                message,
            } if *generation == token.generation() => Some(message),
            _ => None,
        })
        .map_err(|state| self.refusal(&state, token))
    }

    fn free(&mut self, token: MessageToken) -> Result<(), MemoryError> {
        self.take(token).map(drop)
    }

    fn available(&self) -> usize {
        self.capacity() - self.inner.occupied.get() - self.inner.retired.get()
    }

    fn capacity(&self) -> usize {
        self.inner.slots.len()
    }

    fn memory_class(&self) -> MemoryClass {
        MemoryClass::IoUringRegistered
    }
}

impl fmt::Debug for RegisteredMemoryManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredMemoryManager")
            .field("capacity", &self.capacity())
            .field("stored", &self.len())
            .field("slot_size", &self.slot_size())
            .finish()
    }
}

/// The payload of a stored message, lent out of its slot by
/// [`RegisteredMemoryManager::lend`]: an owned registered buffer for `read_fixed` and
/// `write_fixed`. Dropping it puts the payload back, with its new length.
pub struct LentSlot {
    inner: Rc<Inner>,
    token: MessageToken,
    /// `Some` until dropped.
    buf: Option<FixedBuf>,
}

impl LentSlot {
    /// The token of the message lent.
    pub fn token(&self) -> MessageToken {
        self.token
    }

    fn buf(&self) -> &FixedBuf {
        self.buf
            .as_ref()
            .expect("LentSlot used after it was returned")
    }

    fn buf_mut(&mut self) -> &mut FixedBuf {
        self.buf
            .as_mut()
            .expect("LentSlot used after it was returned")
    }
}

impl Drop for LentSlot {
    fn drop(&mut self) {
        let Some(buf) = self.buf.take() else {
            return;
        };
        let slot = &self.inner.slots[self.token.index() as usize];
        // Nothing else borrows a lent slot (every access checks its state first), so this
        // cannot fail; if it somehow did, the payload is dropped back to its pool instead.
        let Ok(mut state) = slot.try_borrow_mut() else {
            return;
        };
        let SlotState::Lent { generation, header } = &*state else {
            return;
        };
        let mut header = *header;
        header.payload_size = buf.len();
        *state = SlotState::Occupied {
            generation: *generation,
            message: Message::from_parts(header, buf),
        };
    }
}

impl Deref for LentSlot {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf()
    }
}

impl DerefMut for LentSlot {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.buf_mut()
    }
}

impl fmt::Debug for LentSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LentSlot")
            .field("token", &self.token)
            .field("buf", &self.buf)
            .finish()
    }
}

// SAFETY: delegates to the `FixedBuf`, which the lent slot owns until dropped.
unsafe impl IoBuf for LentSlot {
    fn stable_ptr(&self) -> *const u8 {
        self.buf().stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.buf().bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.buf().bytes_total()
    }
}

// SAFETY: delegates to the `FixedBuf`.
unsafe impl IoBufMut for LentSlot {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf_mut().stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.buf_mut().set_init(pos) }
    }
}

impl fixed_sealed::Sealed for LentSlot {}

impl FixedIoBuf for LentSlot {
    fn buf_index(&self) -> u16 {
        self.buf().buf_index()
    }
    fn ring_id(&self) -> u32 {
        FixedIoBuf::ring_id(self.buf())
    }
}

impl FixedIoBufMut for LentSlot {}
