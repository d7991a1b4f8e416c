//! Building the ring: the best setup flags the kernel accepts, and errors a person can act on.
//!
//! `SINGLE_ISSUER | DEFER_TASKRUN` (Linux 6.1) lets the kernel run completion work only when
//! we ask for events, on our thread, which is exactly how a thread-per-core runtime works.
//! `COOP_TASKRUN` (5.19) is the next best thing. Older kernels reject unknown flags with
//! `EINVAL`, so each combination is tried in turn, down to no flags at all.

use std::io;

use io_uring::IoUring;

/// Which optional setup flags to ask for (each is dropped if the kernel refuses it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SetupOptions {
    pub(crate) entries: u32,
    pub(crate) cq_entries: Option<u32>,
    pub(crate) single_issuer: bool,
    pub(crate) defer_taskrun: bool,
    pub(crate) coop_taskrun: bool,
}

/// The flags a ring was finally built with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingFlags {
    /// `IORING_SETUP_SINGLE_ISSUER` is in effect.
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN` is in effect.
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN` is in effect.
    pub coop_taskrun: bool,
}

pub(crate) fn build_ring(options: &SetupOptions) -> io::Result<(IoUring, RingFlags)> {
    let full = RingFlags {
        single_issuer: options.single_issuer,
        defer_taskrun: options.defer_taskrun && options.single_issuer,
        coop_taskrun: options.coop_taskrun,
    };
    let candidates = [
        full,
        RingFlags {
            defer_taskrun: false,
            ..full
        },
        RingFlags {
            single_issuer: false,
            defer_taskrun: false,
            ..full
        },
        RingFlags::default(),
    ];
    let mut last_error = None;
    for flags in candidates {
        let mut builder = IoUring::builder();
        if flags.single_issuer {
            builder.setup_single_issuer();
        }
        if flags.defer_taskrun {
            builder.setup_defer_taskrun();
        }
        if flags.coop_taskrun {
            builder.setup_coop_taskrun();
        }
        if let Some(cq) = options.cq_entries {
            builder.setup_cqsize(cq);
        }
        builder.setup_clamp();
        match builder.build(options.entries) {
            Ok(ring) => return Ok((ring, flags)),
            // EINVAL: a flag this kernel does not know; try fewer.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_error = Some(e),
            Err(e) => return Err(explain_setup_error(e, read_io_uring_disabled())),
        }
    }
    Err(explain_setup_error(
        last_error.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)),
        None,
    ))
}

fn read_io_uring_disabled() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Turns an `io_uring_setup` failure into an error whose message names the cause.
///
/// `sysctl` is the value of `kernel.io_uring_disabled`, when it could be read.
pub(crate) fn explain_setup_error(error: io::Error, sysctl: Option<u32>) -> io::Error {
    let message = match error.raw_os_error() {
        Some(libc::ENOSYS) => "io_uring is not available: this kernel was built without it \
             (io_uring_setup returned ENOSYS); iomgr needs Linux 5.19 or newer with CONFIG_IO_URING"
            .to_string(),
        Some(libc::EPERM) => match sysctl {
            Some(2) => "io_uring is disabled on this machine: the sysctl kernel.io_uring_disabled \
                 is 2 (disabled for every process); ask the administrator to set it to 0"
                .to_string(),
            Some(1) => "io_uring is restricted on this machine: the sysctl \
                 kernel.io_uring_disabled is 1, so only members of kernel.io_uring_group may \
                 create rings; add this user to that group or set the sysctl to 0"
                .to_string(),
            _ => "io_uring_setup was refused (EPERM): io_uring is disabled for this process \
                 (the kernel.io_uring_disabled sysctl, a seccomp filter or a container policy)"
                .to_string(),
        },
        Some(libc::ENOMEM) => "io_uring_setup failed with ENOMEM: the ring could not be \
             allocated; lower the ring size (Builder::entries) or raise RLIMIT_MEMLOCK"
            .to_string(),
        Some(libc::EMFILE) | Some(libc::ENFILE) => {
            "io_uring_setup failed: the process is out of file descriptors".to_string()
        }
        Some(libc::EINVAL) => "io_uring_setup rejected the ring parameters (EINVAL): the kernel \
             is too old for iomgr (needs 5.19+) or the ring size is out of range"
            .to_string(),
        _ => format!("io_uring_setup failed: {error}"),
    };
    io::Error::new(error.kind(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_sysctl_is_named_in_the_error() {
        let err = explain_setup_error(io::Error::from_raw_os_error(libc::EPERM), Some(2));
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(
            err.to_string().contains("kernel.io_uring_disabled"),
            "{err}"
        );
        let err = explain_setup_error(io::Error::from_raw_os_error(libc::EPERM), Some(1));
        assert!(err.to_string().contains("io_uring_group"), "{err}");
        let err = explain_setup_error(io::Error::from_raw_os_error(libc::ENOSYS), None);
        assert!(err.to_string().contains("CONFIG_IO_URING"), "{err}");
    }
}
