struct Conn;

impl Conn {
    #[iomgr::task]
    async fn serve(&self) {}
}

fn main() {}
