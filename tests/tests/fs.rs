//! Files in a temp dir: open, positional and vectored I/O, sync, metadata, errors.

use std::io;

use iomgr::Runtime;
use iomgr::fs::{File, OpenOptions};
use iomgr_tests::TempDir;

#[test]
fn write_then_read_back_at_offsets() {
    let dir = TempDir::new("fs");
    let path = dir.join("data");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .unwrap();
        let (res, _) = file.write_at(b"hello world".as_slice(), 0).await;
        assert_eq!(res.unwrap(), 11);
        let (res, _) = file.write_at(b"WORLD".to_vec(), 6).await;
        assert_eq!(res.unwrap(), 5);
        file.sync_all().await.unwrap();
        file.sync_data().await.unwrap();
        let (res, buf) = file.read_at(Vec::with_capacity(64), 0).await;
        assert_eq!(res.unwrap(), 11);
        assert_eq!(buf, b"hello WORLD");
        let (res, buf) = file.read_at(vec![0u8; 4], 6).await;
        assert_eq!(res.unwrap(), 4);
        assert_eq!(buf, b"WORL");
        let (res, _) = file.read_at(vec![0u8; 4], 1000).await;
        assert_eq!(res.unwrap(), 0, "reading past the end is end of file");
        let (res, buf) = file.read_exact_at(Vec::with_capacity(5), 6).await;
        res.unwrap();
        assert_eq!(buf, b"WORLD");
        let (res, buf) = file.read_exact_at(Vec::with_capacity(8), 6).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(buf, b"WORLD", "what was read comes back");
        let meta = file.metadata().await.unwrap();
        assert_eq!(meta.len(), 11);
        assert!(meta.is_file() && !meta.is_dir());
        file.close().await.unwrap();
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"hello WORLD");
}

#[test]
fn vectored_file_io() {
    let dir = TempDir::new("fs");
    let path = dir.join("vectored");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .unwrap();
        let (res, _) = file
            .writev_at(vec![b"abc".to_vec(), b"defg".to_vec()], 2)
            .await;
        assert_eq!(res.unwrap(), 7);
        let (res, bufs) = file
            .readv_at([Vec::with_capacity(4), Vec::with_capacity(10)], 0)
            .await;
        assert_eq!(res.unwrap(), 9);
        assert_eq!(bufs[0], b"\0\0ab");
        assert_eq!(bufs[1], b"cdefg");
    });
}

#[test]
fn whole_file_helpers_round_trip_large_data() {
    let dir = TempDir::new("fs");
    let path = dir.join("big");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let rt = Runtime::new().unwrap();
    let back = rt.block_on(async {
        let data = iomgr::fs::write(&path, data.clone()).await.unwrap();
        assert_eq!(data.len(), 3_000_000);
        iomgr::fs::read(&path).await.unwrap()
    });
    assert_eq!(back, data);
}

#[test]
fn errors_name_the_path_and_the_cause() {
    let dir = TempDir::new("fs");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let missing = dir.join("does-not-exist");
        let err = File::open(&missing).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("does-not-exist"), "{err}");

        let err = File::open("bad\0path").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);

        let err = OpenOptions::new().open(dir.join("x")).await.unwrap_err();
        assert!(err.to_string().contains("read, write or append"), "{err}");

        let existing = dir.join("exists");
        std::fs::write(&existing, b"x").unwrap();
        let err = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&existing)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);

        // Writing to a read-only file hands the buffer back with the error.
        let file = File::open(&existing).await.unwrap();
        let (res, buf) = file.write_at(b"nope".to_vec(), 0).await;
        assert!(res.is_err());
        assert_eq!(buf, b"nope");
    });
}

#[test]
fn append_mode_appends() {
    let dir = TempDir::new("fs");
    let path = dir.join("log");
    std::fs::write(&path, b"one\n").unwrap();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let file = OpenOptions::new().append(true).open(&path).await.unwrap();
        let (res, _) = file.write_at(b"two\n".as_slice(), 0).await;
        res.unwrap();
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\n");
}
