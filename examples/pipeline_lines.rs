//! A line server written as a pipeline: every line a client sends comes back upper-cased.
//!
//! ```text
//! cargo run --example pipeline_lines                        # server + a few clients, prints what they get
//! cargo run --example pipeline_lines -- --serve 127.0.0.1:7001   # serve only (try `nc 127.0.0.1 7001`)
//! ```
//!
//! Each connection is one named pipeline, `LineServer`: the stream's read half, a line
//! decoder (lines of at most 8 KiB: a longer one ends the connection with an error, it does
//! not grow a buffer without bound), the handler, the line encoder, and the stream's write
//! half. The handler is an ordinary function; a `quit` line filters itself out and a
//! `sum 1 2 3` line is answered by an async function, to show both kinds of stage.

use std::io;
use std::time::Duration;

use iomgr::net::{TcpListener, TcpStream};
use iomgr::pipeline::Lines;
use iomgr::{Runtime, spawn};

/// The handler: upper-cases a line; `None` (for empty lines) sends nothing back.
fn handle(line: String) -> Option<String> {
    if line.is_empty() {
        None
    } else {
        Some(line.to_uppercase())
    }
}

/// An async stage: answers `SUM a b c` lines after "looking the answer up".
async fn sums(line: String) -> String {
    let Some(numbers) = line.strip_prefix("SUM ") else {
        return line;
    };
    iomgr::time::sleep(Duration::from_millis(1)).await;
    let total: i64 = numbers
        .split_whitespace()
        .filter_map(|n| n.parse::<i64>().ok())
        .sum();
    format!("{line} = {total}")
}

iomgr::pipeline! {
    /// One connection of the line server.
    pub LineServer(stream: TcpStream) =
        stream.reader()
        => Lines::new(8 * 1024)
        => handle
        => sums
        => Lines::encoder()
        => stream.writer();
}

async fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let connection = LineServer::new(stream).spawn();
        spawn(async move {
            if let Ok(Err(e)) = connection.await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

async fn client(addr: std::net::SocketAddr, name: &str, lines: &[&str]) -> io::Result<String> {
    let stream = TcpStream::connect(addr).await?;
    let mut request = String::new();
    for line in lines {
        request.push_str(line);
        request.push('\n');
    }
    let (res, _) = stream.write_all(request).await;
    res?;
    stream.shutdown(std::net::Shutdown::Write).await?;
    let mut reply = Vec::new();
    loop {
        let (res, buf) = stream.read(Vec::with_capacity(4096)).await;
        if res? == 0 {
            break;
        }
        reply.extend_from_slice(&buf);
    }
    Ok(format!("{name}:\n{}", String::from_utf8_lossy(&reply)))
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rt = Runtime::new()?;
    if let Some(addr) = args
        .iter()
        .position(|a| a == "--serve")
        .and_then(|i| args.get(i + 1))
    {
        let listener = TcpListener::bind(addr.as_str())?;
        println!("serving upper-cased lines on {}", listener.local_addr()?);
        return rt.block_on(serve(listener));
    }
    println!(
        "a LineServer connection is {} bytes, a constant",
        std::mem::size_of::<LineServer>()
    );
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        spawn(serve(listener));
        let a = spawn(async move { client(addr, "alice", &["hello", "", "sum 1 2 3"]).await });
        let b = spawn(async move { client(addr, "bob", &["pipelines all the way down"]).await });
        for reply in [a.await, b.await] {
            print!("{}", reply.expect("client task")?);
        }
        // A line over the limit ends that connection with an error; the server goes on.
        let long = "x".repeat(10_000);
        let reply = client(addr, "mallory", &[long.as_str()]).await?;
        println!("{reply}(nothing: the line was over 8 KiB)");
        Ok(())
    })
}
