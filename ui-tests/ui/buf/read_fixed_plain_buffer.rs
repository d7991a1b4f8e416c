// `read_fixed` reads into a registered buffer: a plain `Vec<u8>` is not one.
use iomgr::fs::File;

async fn handler(file: File) {
    let buf = vec![0u8; 4096];
    let _ = file.read_fixed_at(buf, 0).await;
}

fn main() {
    drop(handler);
}
