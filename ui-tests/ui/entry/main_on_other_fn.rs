#[iomgr::main]
async fn serve() {}

fn main() {}
