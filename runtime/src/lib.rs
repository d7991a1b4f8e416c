//! iomgr: io_uring programs as coroutines (work in progress).
