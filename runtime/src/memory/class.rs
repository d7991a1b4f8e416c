//! Where a manager keeps its messages: [`MemoryClass`].

use core::fmt;

/// The storage domain a manager's slots live in.
///
/// Code that hands messages to the kernel can decide placement by class: a message in
/// [`MemoryClass::IoUringRegistered`] memory can be read or written with `READ_FIXED` /
/// `WRITE_FIXED`, while [`MemoryClass::Host`] memory goes through the ordinary ops.
///
/// The enum is `#[non_exhaustive]`: more classes (device memory, huge pages) may come, so
/// match it with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum MemoryClass {
    /// Ordinary process memory (stack, static or heap): the static, heap and concurrent
    /// managers use it.
    #[default]
    Host,
    /// Memory registered with an io_uring (`IORING_REGISTER_BUFFERS`), usable by fixed-buffer
    /// ops without the kernel pinning pages per request.
    ///
    /// [`RegisteredMemoryManager`](super::RegisteredMemoryManager) stores its payloads here.
    IoUringRegistered,
}

impl MemoryClass {
    /// Whether the kernel can use this memory with fixed-buffer ops (`READ_FIXED`,
    /// `WRITE_FIXED`).
    pub const fn is_registered(self) -> bool {
        matches!(self, MemoryClass::IoUringRegistered)
    }
}

impl fmt::Display for MemoryClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemoryClass::Host => "host memory",
            MemoryClass::IoUringRegistered => "io_uring-registered memory",
        })
    }
}
