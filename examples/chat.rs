//! A line-based chat server: every connection is a task, and messages fan out through
//! channels.
//!
//! ```text
//! cargo run --example chat                          # server + three scripted clients
//! cargo run --example chat -- --serve 127.0.0.1:7001  # serve until killed; try `nc`
//! ```
//!
//! How it is put together (all on one runtime, so everything is `Rc` and `chan`):
//!
//! - a **hub** task owns the room: it receives [`Event`]s on one [`chan`] and keeps, for each
//!   member, the [`Sender`] of that member's outbox;
//! - each connection has a **reader** task that splits what it reads into lines and sends
//!   them to the hub, and a **writer** task that drains the connection's outbox onto the
//!   socket;
//! - the hub fans a line out with `try_send`: a member whose outbox is full (a client that
//!   does not read) misses lines instead of stalling the room.
//!
//! When a client leaves, its reader tells the hub, the hub drops the outbox's sender, the
//! outbox channel closes, and the writer finishes after writing what was queued: closing a
//! channel never loses what was already sent.

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use iomgr::net::{TcpListener, TcpStream};
use iomgr::sync::{Receiver, Sender, chan};
use iomgr::{Runtime, spawn};

/// Lines a slow member may have queued before it starts missing some.
const OUTBOX: usize = 64;

/// What the hub hears about.
enum Event {
    Join { id: u64, outbox: Sender<Rc<str>> },
    Line { id: u64, text: String },
    Leave { id: u64 },
}

/// Owns the room: who is in it, and where their lines go.
async fn hub(events: Receiver<Event>) {
    let mut members: HashMap<u64, Sender<Rc<str>>> = HashMap::new();
    let mut missed = 0u64;
    while let Some(event) = events.recv().await {
        let (from, text): (u64, Rc<str>) = match event {
            Event::Join { id, outbox } => {
                let _ = outbox.try_send(format!("welcome, you are user{id}\n").into());
                members.insert(id, outbox);
                (id, format!("* user{id} joined\n").into())
            }
            Event::Line { id, text } => (id, format!("user{id}: {text}\n").into()),
            Event::Leave { id } => {
                members.remove(&id); // its outbox closes: the writer drains it and ends
                (id, format!("* user{id} left\n").into())
            }
        };
        for (&id, outbox) in &members {
            if id != from && outbox.try_send(text.clone()).is_err() {
                missed += 1;
            }
        }
    }
    if missed > 0 {
        eprintln!("hub: {missed} line(s) dropped for members that did not keep up");
    }
}

/// Reads lines from one connection and hands them to the hub.
async fn reader(id: u64, stream: Rc<TcpStream>, events: Sender<Event>) -> io::Result<()> {
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let (res, b) = stream.read(buf).await;
        let n = res?;
        if n == 0 {
            return Ok(());
        }
        pending.extend_from_slice(&b[..n]);
        buf = b;
        while let Some(end) = pending.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            if !text.is_empty() && events.send(Event::Line { id, text }).await.is_err() {
                return Ok(()); // the hub is gone
            }
        }
    }
}

/// Writes whatever arrives in one connection's outbox, until the outbox closes.
async fn writer(stream: Rc<TcpStream>, outbox: Receiver<Rc<str>>) -> io::Result<()> {
    while let Some(text) = outbox.recv().await {
        let (res, _) = stream.write_all(text.as_bytes().to_vec()).await;
        res?;
    }
    Ok(())
}

/// Accepts members forever.
async fn serve(listener: TcpListener, events: Sender<Event>) -> io::Result<()> {
    let next_id = Cell::new(1);
    loop {
        let (stream, _) = listener.accept().await?;
        let id = next_id.replace(next_id.get() + 1);
        let stream = Rc::new(stream);
        let (outbox_tx, outbox_rx) = chan::<Rc<str>>(OUTBOX);
        if events
            .send(Event::Join {
                id,
                outbox: outbox_tx,
            })
            .await
            .is_err()
        {
            return Ok(());
        }
        spawn(writer(stream.clone(), outbox_rx));
        let events = events.clone();
        spawn(async move {
            let _ = reader(id, stream, events.clone()).await;
            let _ = events.send(Event::Leave { id }).await;
        });
    }
}

/// Starts the hub and the accept loop on the current runtime.
fn start(listener: TcpListener) {
    let (events_tx, events_rx) = chan::<Event>(256);
    spawn(hub(events_rx));
    spawn(serve(listener, events_tx));
}

/// The client side of a connection: one line at a time, keeping what was read past it.
struct LineReader {
    stream: TcpStream,
    pending: Vec<u8>,
    buf: Option<Vec<u8>>,
}

impl LineReader {
    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        Ok(LineReader {
            stream: TcpStream::connect(addr).await?,
            pending: Vec::new(),
            buf: Some(vec![0u8; 1024]),
        })
    }

    async fn say(&self, text: &str) -> io::Result<()> {
        self.stream
            .write_all(format!("{text}\n").into_bytes())
            .await
            .0
    }

    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.pending.iter().position(|&c| c == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            let buf = self.buf.take().expect("one read at a time");
            let (res, b) = self.stream.read(buf).await;
            let n = res?;
            self.pending.extend_from_slice(&b[..n]);
            self.buf = Some(b);
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

fn demo(rt: &Runtime) -> io::Result<()> {
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        start(listener);
        println!("chat server on {addr}; three clients join and talk");

        let mut a = LineReader::connect(addr).await?;
        println!("a: {}", a.line().await?);
        let mut b = LineReader::connect(addr).await?;
        println!("b: {}", b.line().await?);
        println!("a: {}", a.line().await?); // b joined

        // c joins, talks and leaves in its own task.
        let c = spawn(async move {
            let mut c = LineReader::connect(addr).await?;
            let welcome = c.line().await?;
            c.say("hi all, I am c").await?;
            io::Result::Ok(welcome)
        });
        println!("c: {}", c.await.expect("client c")?);

        let mut heard = Vec::new();
        for _ in 0..3 {
            heard.push((a.line().await?, b.line().await?));
        }
        for (from_a, from_b) in &heard {
            println!("a: {from_a}\nb: {from_b}");
            assert_eq!(
                from_a, from_b,
                "every member hears the same, in the same order"
            );
        }
        assert_eq!(heard[0].0, "* user3 joined");
        assert_eq!(heard[1].0, "user3: hi all, I am c");
        assert_eq!(heard[2].0, "* user3 left");

        a.say("bye from a").await?;
        assert_eq!(b.line().await?, "user1: bye from a");
        println!("b: user1: bye from a\nok");
        Ok(())
    })
}

fn main() -> io::Result<()> {
    let rt = Runtime::new()?;
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => demo(&rt),
        (Some("--serve"), Some(addr)) => rt.block_on(async {
            let listener = TcpListener::bind(addr.as_str())?;
            println!("chat server on {}", listener.local_addr()?);
            start(listener);
            std::future::pending::<io::Result<()>>().await
        }),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: chat [--serve ADDR]",
        )),
    }
}
