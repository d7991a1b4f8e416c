//! What this kernel's io_uring can do, found out once per runtime.
//!
//! The opcodes come from `IORING_REGISTER_PROBE` (one system call when the ring is built).
//! Some capabilities are flags of an opcode every kernel has (multishot receive is `RECV`
//! with `IORING_RECV_MULTISHOT`), which the probe cannot see: for those the kernel release
//! (`uname`) decides. An op that needs what the kernel lacks fails with an `Unsupported`
//! error that names the feature and the Linux version that brought it, instead of the bare
//! `EINVAL` the kernel would answer.

use std::fmt;
use std::io;

use io_uring::{IoUring, Probe, opcode};

/// An io_uring capability some ops need; see [`Runtime::supports`](crate::Runtime::supports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Feature {
    /// Provided-buffer rings (`IORING_REGISTER_PBUF_RING`): [`BufRing`](crate::buf::BufRing).
    BufRing,
    /// Multishot receive into a provided-buffer ring (`IORING_RECV_MULTISHOT`).
    RecvMultishot,
    /// Multishot accept (`IORING_ACCEPT_MULTISHOT`).
    AcceptMultishot,
    /// Zero-copy send (`IORING_OP_SEND_ZC`).
    SendZc,
    /// Linked timeouts (`IORING_OP_LINK_TIMEOUT`).
    LinkTimeout,
    /// Reads into registered buffers (`IORING_OP_READ_FIXED`).
    ReadFixed,
    /// Writes from registered buffers (`IORING_OP_WRITE_FIXED`).
    WriteFixed,
    /// A sparse registered-buffer table updated in place (`IORING_REGISTER_BUFFERS2` with
    /// `IORING_RSRC_REGISTER_SPARSE`).
    RegisteredBuffers,
    /// A sparse registered-file table updated in place (`IORING_REGISTER_FILES2` with
    /// `IORING_RSRC_REGISTER_SPARSE`).
    RegisteredFiles,
}

impl Feature {
    /// Every feature, for tables.
    pub const ALL: [Feature; 9] = [
        Feature::BufRing,
        Feature::RecvMultishot,
        Feature::AcceptMultishot,
        Feature::SendZc,
        Feature::LinkTimeout,
        Feature::ReadFixed,
        Feature::WriteFixed,
        Feature::RegisteredBuffers,
        Feature::RegisteredFiles,
    ];

    /// What the feature is, in the kernel's words.
    pub fn name(self) -> &'static str {
        match self {
            Feature::BufRing => "provided-buffer rings (IORING_REGISTER_PBUF_RING)",
            Feature::RecvMultishot => "multishot receive (IORING_RECV_MULTISHOT)",
            Feature::AcceptMultishot => "multishot accept (IORING_ACCEPT_MULTISHOT)",
            Feature::SendZc => "zero-copy send (IORING_OP_SEND_ZC)",
            Feature::LinkTimeout => "linked timeouts (IORING_OP_LINK_TIMEOUT)",
            Feature::ReadFixed => "READ_FIXED",
            Feature::WriteFixed => "WRITE_FIXED",
            Feature::RegisteredBuffers => {
                "a sparse registered-buffer table (IORING_REGISTER_BUFFERS2)"
            }
            Feature::RegisteredFiles => "a sparse registered-file table (IORING_REGISTER_FILES2)",
        }
    }

    /// The first Linux release that has it, as `(major, minor)`.
    pub fn since(self) -> (u32, u32) {
        match self {
            Feature::BufRing => (5, 19),
            Feature::RecvMultishot => (6, 0),
            Feature::AcceptMultishot => (5, 19),
            Feature::SendZc => (6, 0),
            Feature::LinkTimeout => (5, 5),
            Feature::ReadFixed | Feature::WriteFixed => (5, 1),
            Feature::RegisteredBuffers | Feature::RegisteredFiles => (5, 19),
        }
    }

    /// `Ok` if the current runtime's kernel has the feature; otherwise the error iomgr gives
    /// when it is used. A registration feature is checked by making the (empty) table.
    ///
    /// ```
    /// use iomgr::runtime::Feature;
    /// # iomgr::Runtime::new()?.block_on(async {
    /// match Feature::ReadFixed.check() {
    ///     Ok(()) => println!("registered buffers work here"),
    ///     Err(e) => println!("falling back to plain reads: {e}"), // "READ_FIXED ... Linux 5.1"
    /// }
    /// # });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`io::ErrorKind::Unsupported`] naming the feature and the kernel it needs; any error
    /// making the table; an error if no runtime is running on this thread.
    pub fn check(self) -> io::Result<()> {
        let shared = crate::runtime::current().ok_or_else(|| {
            io::Error::other(format!(
                "Feature::check({self:?}) needs a running runtime: call it inside Runtime::block_on"
            ))
        })?;
        shared.driver.borrow_mut().require(self)
    }

    /// The error for a feature the kernel refused when iomgr tried it (`why` says how).
    pub(crate) fn refused(self, why: &str) -> io::Error {
        let (major, minor) = self.since();
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{} needs Linux {major}.{minor} or newer: this kernel's io_uring refused it ({why})",
                self.name()
            ),
        )
    }

    /// The error an op gets when the kernel lacks the feature.
    pub(crate) fn unsupported(self, kernel: Option<(u32, u32)>) -> io::Error {
        let (major, minor) = self.since();
        let running = match kernel {
            Some((a, b)) => format!("this kernel is {a}.{b}"),
            None => "this kernel's version is unknown".to_string(),
        };
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{} is not supported by this kernel's io_uring: it needs Linux {major}.{minor} \
                 or newer ({running})",
                self.name()
            ),
        )
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The capabilities of one ring.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Features {
    /// One bit per [`Feature`] (by its index in [`Feature::ALL`]).
    bits: u32,
    /// The kernel release, if `uname` could be read.
    kernel: Option<(u32, u32)>,
}

impl Features {
    /// Probes `ring` (one `io_uring_register` call) and reads the kernel release.
    pub(crate) fn probe(ring: &IoUring) -> Self {
        let mut probe = Probe::new();
        let probed = ring.submitter().register_probe(&mut probe).is_ok();
        let kernel = kernel_release();
        Self::from_parts(|code| probed && probe.is_supported(code), kernel)
    }

    /// What a ring has, given which opcodes it supports and the kernel release.
    pub(crate) fn from_parts(supports: impl Fn(u8) -> bool, kernel: Option<(u32, u32)>) -> Self {
        // A flag no probe can see: trust the release; without one, assume the minimum
        // iomgr needs (5.19), so an op that needs more fails with a message, not EINVAL.
        let at_least = |f: Feature| kernel.unwrap_or((5, 19)) >= f.since();
        let mut bits = 0;
        for (i, f) in Feature::ALL.into_iter().enumerate() {
            let has = match f {
                Feature::BufRing => at_least(f),
                Feature::RecvMultishot => supports(opcode::Recv::CODE) && at_least(f),
                Feature::AcceptMultishot => supports(opcode::Accept::CODE) && at_least(f),
                Feature::SendZc => supports(opcode::SendZc::CODE),
                Feature::LinkTimeout => supports(opcode::LinkTimeout::CODE),
                Feature::ReadFixed => supports(opcode::ReadFixed::CODE),
                Feature::WriteFixed => supports(opcode::WriteFixed::CODE),
                // A registration no probe can see: the release decides, and making the table
                // (see `register.rs`) has the last word.
                Feature::RegisteredBuffers | Feature::RegisteredFiles => at_least(f),
            };
            if has {
                bits |= 1 << i;
            }
        }
        Features { bits, kernel }
    }

    fn bit(f: Feature) -> u32 {
        let i = Feature::ALL.iter().position(|&g| g == f).unwrap_or(0);
        1 << i
    }

    pub(crate) fn has(&self, f: Feature) -> bool {
        self.bits & Self::bit(f) != 0
    }

    /// `Ok` if the ring has `f`, else the error that names it.
    pub(crate) fn require(&self, f: Feature) -> io::Result<()> {
        if self.has(f) {
            Ok(())
        } else {
            Err(f.unsupported(self.kernel))
        }
    }

    /// The same ring without `f` (tests of the error paths).
    #[cfg(test)]
    pub(crate) fn without(mut self, f: Feature) -> Self {
        self.bits &= !Self::bit(f);
        self
    }
}

/// `(major, minor)` of the running kernel, from `uname`.
fn kernel_release() -> Option<(u32, u32)> {
    // SAFETY: `utsname` is plain bytes; all zeros is a valid value for `uname` to fill.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable `utsname`.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let release: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    parse_release(std::str::from_utf8(&release).ok()?)
}

/// `"6.1.0-13-amd64"` is `(6, 1)`.
fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_parse_to_major_and_minor() {
        assert_eq!(parse_release("6.1.0-13-amd64"), Some((6, 1)));
        assert_eq!(parse_release("5.19.17"), Some((5, 19)));
        assert_eq!(parse_release("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(parse_release("garbage"), None);
    }

    #[test]
    fn a_missing_feature_is_an_error_naming_it_and_the_kernel_it_needs() {
        let old = Features::from_parts(|code| code != opcode::SendZc::CODE, Some((5, 19)));
        assert!(old.has(Feature::BufRing) && old.has(Feature::AcceptMultishot));
        assert!(!old.has(Feature::RecvMultishot), "a flag of 6.0");
        let err = old.require(Feature::SendZc).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        let msg = err.to_string();
        assert!(msg.contains("IORING_OP_SEND_ZC"), "{msg}");
        assert!(msg.contains("Linux 6.0 or newer"), "{msg}");
        assert!(msg.contains("this kernel is 5.19"), "{msg}");
        let err = old.require(Feature::RecvMultishot).unwrap_err();
        assert!(err.to_string().contains("IORING_RECV_MULTISHOT"), "{err}");
        let new = Features::from_parts(|_| true, Some((6, 1)));
        for f in Feature::ALL {
            assert!(new.require(f).is_ok(), "{f}");
        }
        assert!(!new.without(Feature::LinkTimeout).has(Feature::LinkTimeout));
    }

    /// Makes the runtime running on this thread pretend its kernel lacks `f`.
    fn pretend_missing(f: Feature) {
        let shared = crate::runtime::current().expect("inside block_on");
        shared.driver.borrow_mut().disable(f);
    }

    fn assert_names(err: &io::Error, what: &str, version: &str) {
        assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
        let msg = err.to_string();
        assert!(msg.contains(what) && msg.contains(version), "{msg}");
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn ops_needing_a_missing_feature_fail_with_its_name_and_kernel_version() {
        use std::pin::pin;
        use std::time::Duration;

        use crate::buf::BufRing;
        use crate::net::{TcpListener, UnixStream};

        let rt = crate::Runtime::new().unwrap();
        rt.block_on(async {
            let (a, _b) = UnixStream::pair().unwrap();
            let ring = BufRing::new(2, 64).unwrap();

            pretend_missing(Feature::SendZc);
            let (res, buf) = a.send_zc(b"data").await;
            assert_names(&res.unwrap_err(), "IORING_OP_SEND_ZC", "Linux 6.0");
            assert_eq!(buf, b"data", "the buffer comes back");

            pretend_missing(Feature::LinkTimeout);
            let (res, buf) = a.read(vec![0u8; 8]).timeout(Duration::from_secs(1)).await;
            assert_names(&res.unwrap_err(), "IORING_OP_LINK_TIMEOUT", "Linux 5.5");
            assert_eq!(buf.capacity(), 8);

            pretend_missing(Feature::RecvMultishot);
            let mut chunks = pin!(a.recv_multishot(&ring));
            let err = chunks.as_mut().next().await.unwrap().unwrap_err();
            assert_names(&err, "IORING_RECV_MULTISHOT", "Linux 6.0");
            assert!(chunks.as_mut().next().await.is_none());

            pretend_missing(Feature::AcceptMultishot);
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut incoming = pin!(listener.incoming());
            let err = incoming.as_mut().next().await.unwrap().unwrap_err();
            assert_names(&err, "IORING_ACCEPT_MULTISHOT", "Linux 5.19");
            assert!(incoming.as_mut().next().await.is_none());

            pretend_missing(Feature::BufRing);
            let err = BufRing::new(2, 64).unwrap_err();
            assert_names(&err, "IORING_REGISTER_PBUF_RING", "Linux 5.19");
        });
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_timed_op_that_cannot_be_queued_is_answered_with_its_buffer() {
        use std::time::Duration;

        use crate::driver::fault::{self, Fault};
        use crate::net::UnixStream;

        let rt = crate::Runtime::new().unwrap();
        rt.block_on(async {
            let (a, _b) = UnixStream::pair().unwrap();
            let _faults = fault::arm(Fault::PushOp, 1);
            let (res, buf) = a.read(vec![0u8; 8]).timeout(Duration::from_secs(1)).await;
            let err = res.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
            assert_eq!(buf.capacity(), 8, "the buffer comes back");
            assert_eq!(
                crate::runtime::current()
                    .unwrap()
                    .driver
                    .borrow()
                    .in_flight(),
                0
            );
        });
    }
}
