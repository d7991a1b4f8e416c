//! `#[iomgr::main]` whose runtime cannot start, returning a `Result`: the start-up error is
//! `main`'s error.

#[iomgr::main(entries = 0)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("unreachable: the runtime did not start");
    Ok(())
}
