//! [`MessageToken`]: a slot index plus the generation the slot had when it was filled.

use core::fmt;

/// A small, `Copy` handle to a message stored in a [`MemoryManager`](super::MemoryManager).
///
/// A token is a slot index and a *generation*. Each time a slot is freed its generation
/// goes up, so a token kept past [`free`](super::MemoryManager::free) no longer matches the
/// slot, even after the slot has been filled again: using it gives
/// [`MemoryError::BadToken`](super::MemoryError::BadToken), never someone else's message.
///
/// A token is only meaningful to the manager that issued it. It packs into a `u64`
/// ([`into_raw`](Self::into_raw) / [`from_raw`](Self::from_raw)), for example to ride in an
/// io_uring `user_data` field.
///
/// A slot's generation is a `u32`. It never wraps: a slot whose last generation is freed is
/// retired (never reused), so no token, however old, can reach a later message.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageToken {
    index: u32,
    generation: u32,
}

impl MessageToken {
    /// Builds a token from a slot index and a generation.
    ///
    /// Managers issue tokens; building one by hand is for tests and for decoding.
    /// A hand-made token is checked like any other: it can only reach a message whose slot
    /// currently has that generation.
    pub const fn new(index: u32, generation: u32) -> Self {
        MessageToken { index, generation }
    }

    /// The slot index.
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The generation of the slot when this token was issued.
    pub const fn generation(self) -> u32 {
        self.generation
    }

    /// Packs the token into a `u64`: generation in the high half, index in the low half.
    pub const fn into_raw(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    /// Unpacks a token made by [`into_raw`](Self::into_raw).
    pub const fn from_raw(raw: u64) -> Self {
        MessageToken {
            index: raw as u32,
            generation: (raw >> 32) as u32,
        }
    }

    /// The slot index as a `usize`, for indexing slot arrays.
    pub(crate) const fn slot(self) -> usize {
        self.index as usize
    }
}

impl fmt::Debug for MessageToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageToken({}v{})", self.index, self.generation)
    }
}

impl fmt::Display for MessageToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot {} (generation {})", self.index, self.generation)
    }
}
