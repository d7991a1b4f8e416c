struct Server;

impl Server {
    #[iomgr::task]
    async fn handle(n: u32) -> u32 {
        std::future::ready(n).await
    }
}

fn main() {
    let _ = Server::handle(1);
}
