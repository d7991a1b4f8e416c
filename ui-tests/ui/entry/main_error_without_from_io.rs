#[derive(Debug)]
struct MyError;

#[iomgr::main]
async fn main() -> Result<(), MyError> {
    Ok(())
}
