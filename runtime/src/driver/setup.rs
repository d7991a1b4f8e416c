//! Building the ring: the best setup flags the kernel accepts, and errors a person can act on.
//!
//! `SINGLE_ISSUER | DEFER_TASKRUN` (Linux 6.1) lets the kernel run completion work only when
//! we ask for events, on our thread, which is exactly how a thread-per-core runtime works.
//! `COOP_TASKRUN` (5.19) is the next best thing. Older kernels reject unknown flags with
//! `EINVAL`, so each combination is tried in turn, down to no flags at all.
//!
//! The ring sizes are checked here first, against io_uring's own limits: the kernel answers a
//! bad size with the same `EINVAL` as an unknown flag, and an error must name the setting
//! that is wrong rather than blame the kernel.

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

/// Most submission queue entries a ring may have (`IORING_MAX_ENTRIES`).
pub(crate) const MAX_ENTRIES: u32 = 32768;
/// Most completion queue entries a ring may have (`IORING_MAX_CQ_ENTRIES`).
pub(crate) const MAX_CQ_ENTRIES: u32 = 2 * MAX_ENTRIES;

/// Checks the ring sizes the way `io_uring_setup` does (both are rounded up to a power of
/// two, and the CQ may not be smaller than the SQ), with an error that names the setting.
pub(crate) fn check_sizes(options: &SetupOptions) -> io::Result<()> {
    let invalid = |message: String| Err(io::Error::new(io::ErrorKind::InvalidInput, message));
    let entries = options.entries;
    if entries == 0 {
        return invalid(
            "Builder::entries(0): a ring needs at least 1 submission queue entry".to_string(),
        );
    }
    if entries > MAX_ENTRIES {
        return invalid(format!(
            "Builder::entries({entries}): io_uring allows at most {MAX_ENTRIES} submission \
             queue entries"
        ));
    }
    let Some(cq) = options.cq_entries else {
        return Ok(());
    };
    if cq == 0 {
        return invalid(
            "Builder::cq_entries(0): a ring needs at least 1 completion queue entry".to_string(),
        );
    }
    if cq > MAX_CQ_ENTRIES {
        return invalid(format!(
            "Builder::cq_entries({cq}): io_uring allows at most {MAX_CQ_ENTRIES} completion \
             queue entries"
        ));
    }
    if cq.next_power_of_two() < entries.next_power_of_two() {
        return invalid(format!(
            "Builder::cq_entries({cq}) is smaller than the submission queue's entries \
             ({entries}): the completion queue must have at least as many (both are rounded \
             up to a power of two)"
        ));
    }
    Ok(())
}

pub(crate) fn build_ring(options: &SetupOptions) -> io::Result<(IoUring, RingFlags)> {
    check_sizes(options)?;
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
            Err(e) => return Err(explain_setup_error(e, options, read_io_uring_disabled())),
        }
    }
    Err(explain_setup_error(
        last_error.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)),
        options,
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
/// `options` are the (already checked) sizes asked for; `sysctl` is the value of
/// `kernel.io_uring_disabled`, when it could be read.
pub(crate) fn explain_setup_error(
    error: io::Error,
    options: &SetupOptions,
    sysctl: Option<u32>,
) -> io::Error {
    let sizes = match options.cq_entries {
        Some(cq) => format!("{} SQ and {cq} CQ entries", options.entries),
        None => format!("{} SQ entries", options.entries),
    };
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
        // Since Linux 5.12 ring memory is charged to the memory cgroup, not RLIMIT_MEMLOCK.
        Some(libc::ENOMEM) => format!(
            "io_uring_setup failed with ENOMEM: no memory for a ring of {sizes} (the \
             process or its memory cgroup is out of memory); ask for a smaller ring with \
             Builder::entries / Builder::cq_entries"
        ),
        Some(libc::EMFILE) | Some(libc::ENFILE) => {
            "io_uring_setup failed: the process is out of file descriptors".to_string()
        }
        // The sizes were checked before asking, and every optional flag has been dropped.
        Some(libc::EINVAL) => format!(
            "io_uring_setup rejected a ring of {sizes} with no optional setup flags (EINVAL), \
             though the sizes are within io_uring's limits: {error}"
        ),
        _ => format!("io_uring_setup failed for a ring of {sizes}: {error}"),
    };
    io::Error::new(error.kind(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(entries: u32, cq_entries: Option<u32>) -> SetupOptions {
        SetupOptions {
            entries,
            cq_entries,
            single_issuer: true,
            defer_taskrun: true,
            coop_taskrun: true,
        }
    }

    #[test]
    fn disabled_sysctl_is_named_in_the_error() {
        let opts = options(256, None);
        let err = explain_setup_error(io::Error::from_raw_os_error(libc::EPERM), &opts, Some(2));
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(
            err.to_string().contains("kernel.io_uring_disabled"),
            "{err}"
        );
        let err = explain_setup_error(io::Error::from_raw_os_error(libc::EPERM), &opts, Some(1));
        assert!(err.to_string().contains("io_uring_group"), "{err}");
        let err = explain_setup_error(io::Error::from_raw_os_error(libc::ENOSYS), &opts, None);
        assert!(err.to_string().contains("CONFIG_IO_URING"), "{err}");
    }

    #[test]
    fn out_of_memory_names_the_ring_not_rlimit_memlock() {
        let opts = options(4096, Some(8192));
        let err = explain_setup_error(io::Error::from_raw_os_error(libc::ENOMEM), &opts, None);
        assert_eq!(err.kind(), io::ErrorKind::OutOfMemory);
        let msg = err.to_string();
        assert!(!msg.contains("MEMLOCK"), "{msg}");
        assert!(msg.contains("4096 SQ and 8192 CQ entries"), "{msg}");
        assert!(msg.contains("Builder::entries"), "{msg}");
    }

    #[test]
    fn einval_with_valid_sizes_does_not_blame_the_size() {
        let opts = options(256, None);
        let err = explain_setup_error(io::Error::from_raw_os_error(libc::EINVAL), &opts, None);
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(
            !msg.contains("too old") && !msg.contains("out of range"),
            "{msg}"
        );
        assert!(msg.contains("256 SQ entries"), "{msg}");
    }

    #[test]
    fn ring_sizes_are_checked_as_the_kernel_does() {
        assert!(check_sizes(&options(1, None)).is_ok());
        assert!(check_sizes(&options(MAX_ENTRIES, Some(MAX_CQ_ENTRIES))).is_ok());
        // Both round up to 256.
        assert!(check_sizes(&options(200, Some(129))).is_ok());
        for (entries, cq, names) in [
            (0, None, "entries(0)"),
            (MAX_ENTRIES + 1, None, "entries(32769)"),
            (256, Some(0), "cq_entries(0)"),
            (256, Some(128), "cq_entries(128)"),
            (256, Some(MAX_CQ_ENTRIES + 1), "cq_entries(65537)"),
        ] {
            let err = check_sizes(&options(entries, cq)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(names), "{err}");
        }
    }
}
