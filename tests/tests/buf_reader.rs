//! `BufReader::read_until` / `read_line`: a growing owned buffer (ASIO's dynamic buffer),
//! bytes past the delimiter kept for the next call, and a maximum that turns an endless
//! line into an error instead of unbounded memory.

use std::io::Write;
use std::thread;
use std::time::Duration;

use iomgr::Runtime;
use iomgr::io::BufReader;
use iomgr::net::{TcpListener, TcpStream, UnixStream};

async fn pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (server, client)
}

#[test]
fn lines_split_across_reads_and_several_per_read_all_come_out_whole() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (server, mut client) = pair().await;
        let writer = thread::spawn(move || {
            // Several lines in one write, and one line in many writes.
            client.write_all(b"one\ntwo\nthr").unwrap();
            thread::sleep(Duration::from_millis(5));
            client.write_all(b"ee\n").unwrap();
            let long = "x".repeat(10_000);
            for piece in long.as_bytes().chunks(999) {
                client.write_all(piece).unwrap();
                thread::sleep(Duration::from_micros(300));
            }
            client.write_all(b"\nlast without newline").unwrap();
        });
        let mut reader = BufReader::new(server);
        let mut lines = Vec::new();
        let mut line = String::new();
        loop {
            let (res, l) = reader.read_line(line, 64 * 1024).await;
            line = l;
            if res.unwrap() == 0 {
                break;
            }
            lines.push(std::mem::take(&mut line));
        }
        writer.join().unwrap();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], "one\n");
        assert_eq!(lines[1], "two\n");
        assert_eq!(lines[2], "three\n");
        assert_eq!(lines[3], format!("{}\n", "x".repeat(10_000)));
        assert_eq!(lines[4], "last without newline");
        assert!(reader.buffer().is_empty());
    });
}

#[test]
fn bytes_past_the_delimiter_are_kept_for_the_next_call_and_for_plain_reads() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (res, _) = a.write_all(b"key=value;rest of it").await;
        res.unwrap();
        let mut reader = BufReader::new(b);
        let (res, key) = reader.read_until(b'=', Vec::new(), 100).await;
        assert_eq!(res.unwrap(), 4);
        assert_eq!(key, b"key=");
        assert_eq!(reader.buffer(), b"value;rest of it", "read past, kept");
        let (res, value) = reader.read_until(b';', Vec::new(), 100).await;
        assert_eq!(res.unwrap(), 6);
        assert_eq!(value, b"value;");
        let (res, buf) = reader.read(vec![0u8; 4]).await;
        assert_eq!(&buf[..res.unwrap()], b"rest");
        let (b, rest) = reader.into_parts();
        assert_eq!(rest, b" of it");
        drop((a, b));
    });
}

#[test]
fn an_endless_line_is_invalid_data_at_the_maximum_not_unbounded_memory() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (server, mut client) = pair().await;
        let writer = thread::spawn(move || {
            // Far more than the maximum, never a newline; stops when the reader goes.
            let block = [b'a'; 4096];
            for _ in 0..1024 {
                if client.write_all(&block).is_err() {
                    return;
                }
            }
        });
        let mut reader = BufReader::new(server);
        let (res, buf) = reader.read_line(String::new(), 10_000).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("10000 bytes"), "{err}");
        assert_eq!(buf.len(), 10_000, "holds the first bytes, no more");
        assert!(buf.capacity() <= 2 * 10_000, "grew to {}", buf.capacity());
        drop(reader);
        writer.join().unwrap();
    });
}

#[test]
fn a_line_cut_at_the_maximum_inside_a_character_keeps_its_whole_characters() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        // "ab" then "é" (two bytes): the maximum of 3 falls between the two.
        let (res, _) = a.write_all("abé and more\n".as_bytes().to_vec()).await;
        res.unwrap();
        let mut reader = BufReader::new(b);
        let (res, line) = reader.read_line(String::new(), 3).await;
        assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(
            line, "ab",
            "the first bytes, cut back to a character boundary"
        );
    });
}

#[test]
fn a_line_that_is_not_utf8_is_invalid_data_and_leaves_the_string_as_it_was() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (res, _) = a.write_all(b"\xff\xfe\nok\n".to_vec()).await;
        res.unwrap();
        let mut reader = BufReader::new(b);
        let (res, line) = reader.read_line("kept: ".to_string(), 100).await;
        assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(line, "kept: ");
        let (res, line) = reader.read_line(String::new(), 100).await;
        assert_eq!(res.unwrap(), 3);
        assert_eq!(line, "ok\n");
    });
}
