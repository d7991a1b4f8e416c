//! [`Message<P>`]: a [`MessageHeader`] plus a payload.

use core::fmt;
use core::ops::{BitOr, BitOrAssign};
use std::time::Instant;

use super::MemoryClass;

/// A payload that knows its size in bytes, recorded in the header by [`Message::new`].
///
/// Implemented for byte containers (the length of the bytes) and for plain values (their
/// `size_of`). For your own type, return the number of bytes the message stands for.
pub trait Payload {
    /// The size of the payload in bytes.
    fn payload_size(&self) -> usize;
}

impl Payload for Vec<u8> {
    fn payload_size(&self) -> usize {
        self.len()
    }
}

impl Payload for Box<[u8]> {
    fn payload_size(&self) -> usize {
        self.len()
    }
}

impl Payload for String {
    fn payload_size(&self) -> usize {
        self.len()
    }
}

impl<const N: usize> Payload for [u8; N] {
    fn payload_size(&self) -> usize {
        N
    }
}

macro_rules! sized_payload {
    ($($ty:ty),*) => {$(
        impl Payload for $ty {
            fn payload_size(&self) -> usize {
                size_of::<$ty>()
            }
        }
    )*};
}
sized_payload!(
    (),
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64
);

/// Bit flags carried in a [`MessageHeader`]: a few are named, the rest are free for
/// applications to use.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MessageFlags(u32);

impl MessageFlags {
    /// No flag set.
    pub const NONE: MessageFlags = MessageFlags(0);
    /// The last message of a stream or batch.
    pub const END_OF_STREAM: MessageFlags = MessageFlags(1);
    /// To be handled before ordinary messages.
    pub const URGENT: MessageFlags = MessageFlags(1 << 1);
    /// The payload was changed in place since it was stored.
    pub const MODIFIED: MessageFlags = MessageFlags(1 << 2);

    /// Flags from raw bits (bits 16..32 are left to applications).
    pub const fn from_bits(bits: u32) -> Self {
        MessageFlags(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: MessageFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: MessageFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: MessageFlags) {
        self.0 &= !other.0;
    }
}

impl BitOr for MessageFlags {
    type Output = MessageFlags;
    fn bitor(self, rhs: MessageFlags) -> MessageFlags {
        MessageFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for MessageFlags {
    fn bitor_assign(&mut self, rhs: MessageFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for MessageFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageFlags({:#x})", self.0)
    }
}

/// What is known about a message without knowing its payload type; `Copy`, so it can be
/// read out through a [`HeaderStore`](super::HeaderStore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageHeader {
    /// Position of the message in its stream, chosen by the producer.
    pub sequence: u64,
    /// When the message was made.
    pub created_at: Instant,
    /// Size of the payload in bytes.
    pub payload_size: usize,
    /// Application and framework flags.
    pub flags: MessageFlags,
    /// Where the message is stored. Managers set it on [`store`](super::MemoryManager::store).
    pub memory_class: MemoryClass,
}

impl MessageHeader {
    /// A header made now, with no flags, in [`MemoryClass::Host`].
    pub fn new(sequence: u64, payload_size: usize) -> Self {
        MessageHeader {
            sequence,
            created_at: Instant::now(),
            payload_size,
            flags: MessageFlags::NONE,
            memory_class: MemoryClass::Host,
        }
    }
}

/// A message: a [`MessageHeader`] and a payload of type `P`.
///
/// ```
/// use iomgr::memory::{Message, MessageFlags};
///
/// let msg = Message::new(7, vec![1u8, 2, 3]).with_flags(MessageFlags::URGENT);
/// assert_eq!(msg.header.sequence, 7);
/// assert_eq!(msg.header.payload_size, 3);
/// assert!(msg.header.flags.contains(MessageFlags::URGENT));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<P> {
    /// The header.
    pub header: MessageHeader,
    /// The payload.
    pub payload: P,
}

impl<P: Payload> Message<P> {
    /// A message made now, with sequence number `sequence`, its payload size taken from
    /// [`Payload::payload_size`].
    pub fn new(sequence: u64, payload: P) -> Self {
        let header = MessageHeader::new(sequence, payload.payload_size());
        Message { header, payload }
    }
}

impl<P> Message<P> {
    /// A message from a header made elsewhere (no clock read, no [`Payload`] bound).
    pub fn from_parts(header: MessageHeader, payload: P) -> Self {
        Message { header, payload }
    }

    /// The same message with `flags` set.
    pub fn with_flags(mut self, flags: MessageFlags) -> Self {
        self.header.flags.insert(flags);
        self
    }

    /// Splits the message into its header and payload.
    pub fn into_parts(self) -> (MessageHeader, P) {
        (self.header, self.payload)
    }
}
