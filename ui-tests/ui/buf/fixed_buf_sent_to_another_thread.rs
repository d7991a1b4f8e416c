// A registered buffer belongs to its runtime's thread and ring: it cannot be sent away.
use iomgr::buf::FixedBufPool;

fn send_away(pool: &FixedBufPool) {
    let buf = pool.try_get().unwrap();
    std::thread::spawn(move || drop(buf));
}

fn main() {
    drop(send_away);
}
