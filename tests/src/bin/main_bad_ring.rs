//! `#[iomgr::main]` whose runtime cannot start (a ring of 0 entries), returning nothing: the
//! `entry` test checks that it says why on stderr and exits with status 1.

#[iomgr::main(entries = 0)]
async fn main() {
    println!("unreachable: the runtime did not start");
}
