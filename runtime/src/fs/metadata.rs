//! File metadata from `statx`.

use std::time::{Duration, SystemTime};

/// A file's metadata, as `statx` reported it.
#[derive(Clone, Copy, Debug)]
pub struct Metadata {
    len: u64,
    mode: u32,
    modified: SystemTime,
}

impl Metadata {
    pub(crate) fn from_statx(st: libc::statx) -> Self {
        let modified = SystemTime::UNIX_EPOCH
            + Duration::new(st.stx_mtime.tv_sec.max(0) as u64, st.stx_mtime.tv_nsec);
        Metadata {
            len: st.stx_size,
            mode: u32::from(st.stx_mode),
            modified,
        }
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    /// Permission bits.
    pub fn permissions_mode(&self) -> u32 {
        self.mode & 0o7777
    }

    /// Last modification time.
    pub fn modified(&self) -> SystemTime {
        self.modified
    }
}
