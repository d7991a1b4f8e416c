// A chunk of a provided-buffer ring goes back to a ring only its runtime's thread touches:
// it may outlive its stream and ring handle (it keeps the memory alive), move into another
// task, or be written to another socket, but it cannot be sent to another thread. Copy the
// bytes out (`chunk.to_vec()`) to hand them to one.
use iomgr::buf::RingBuf;

fn hand_off(chunk: RingBuf) {
    std::thread::spawn(move || drop(chunk));
}

fn main() {
    drop(hand_off);
}
