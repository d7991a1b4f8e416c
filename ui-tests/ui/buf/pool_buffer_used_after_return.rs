// A pool buffer goes back to its pool when dropped: it cannot be used after that.
use iomgr::buf::{BufPool, FixedBufPool};

fn pooled() {
    let buf = BufPool::get(4096);
    drop(buf); // returned to the pool
    let _ = buf.len();
}

fn fixed(pool: &FixedBufPool) {
    let mut buf = pool.try_get().unwrap();
    drop(buf); // returned to the pool
    buf.extend_from_slice(b"too late");
}

fn main() {
    drop((pooled, fixed));
}
