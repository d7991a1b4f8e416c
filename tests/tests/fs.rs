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

/// An empty `Vec` whose spare capacity holds a recognisable pattern: bytes the `Vec` does not
/// count as initialized, which a correct read never shows.
fn stale_vec(capacity: usize) -> Vec<u8> {
    let mut v = vec![0xAA; capacity];
    v.clear();
    v
}

#[test]
fn reading_into_a_slice_past_the_initialized_bytes_shows_no_unwritten_memory() {
    use iomgr::buf::BufExt;

    let dir = TempDir::new("fs");
    let path = dir.join("twelve");
    std::fs::write(&path, b"abcdefghijkl").unwrap();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let file = File::open(&path).await.unwrap();

        // A read into 32..64 of an empty buffer: the gap 0..32 was never written.
        let (res, slice) = file.read_at(stale_vec(64).slice(32..64), 0).await;
        assert_eq!(res.unwrap(), 12);
        assert_eq!(&slice[..], b"abcdefghijkl");
        let buf = slice.into_inner();
        assert_eq!(buf.len(), 44);
        assert!(
            buf[..32].iter().all(|&b| b == 0),
            "gap shows {:x?}",
            &buf[..32]
        );
        assert_eq!(&buf[32..], b"abcdefghijkl");

        // The same through a vectored read of slices.
        let bufs = vec![stale_vec(16).slice(8..16), stale_vec(16).slice(4..16)];
        let (res, bufs) = file.readv_at(bufs, 0).await;
        assert_eq!(res.unwrap(), 12);
        let [a, b]: [_; 2] = bufs.try_into().unwrap();
        let (a, b) = (a.into_inner(), b.into_inner());
        assert_eq!(a, b"\0\0\0\0\0\0\0\0abcdefgh");
        assert_eq!(b, b"\0\0\0\0ijkl");

        // And through `read_exact` of a user slice (a slice of a slice inside the loop).
        let (res, slice) = file.read_exact_at(stale_vec(16).slice(10..16), 2).await;
        res.unwrap();
        assert_eq!(&slice[..], b"cdefgh");
        assert_eq!(slice.into_inner(), b"\0\0\0\0\0\0\0\0\0\0cdefgh");

        // A slice at or below the initialized bytes reads exactly as before.
        let mut start = stale_vec(16);
        start.extend_from_slice(b"XYZ");
        let (res, slice) = file.read_at(start.slice(1..16), 0).await;
        assert_eq!(res.unwrap(), 12);
        assert_eq!(slice.into_inner(), b"Xabcdefghijkl");

        // A read of nothing (end of file) extends nothing.
        let (res, slice) = file.read_at(stale_vec(16).slice(8..16), 100).await;
        assert_eq!(res.unwrap(), 0);
        assert!(slice.into_inner().is_empty());
    });
}

#[test]
fn reading_a_file_too_large_to_allocate_is_an_error_not_an_abort() {
    use std::time::Duration;

    let dir = TempDir::new("fs");
    let path = dir.join("sparse");
    // 1 TiB of hole: costs no disk, and is far more than this process can allocate
    // (`Vec::with_capacity` of it used to abort the whole process).
    const TIB: u64 = 1 << 40;
    std::fs::File::create(&path).unwrap().set_len(TIB).unwrap();
    let rt = Runtime::new().unwrap();
    let res = rt.block_on(iomgr::time::timeout(
        Duration::from_secs(5),
        iomgr::fs::read(&path),
    ));
    let err = res
        .expect("an unallocatable size must be refused up front, not read")
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("sparse") && msg.contains(&TIB.to_string()),
        "{msg}"
    );

    // A file whose real size is small still reads, whatever capacity the first guess had.
    let small = dir.join("small");
    std::fs::write(&small, vec![7u8; 10_000]).unwrap();
    assert_eq!(
        rt.block_on(iomgr::fs::read(&small)).unwrap(),
        vec![7u8; 10_000]
    );
    // Files that report a size of 0 but have content (procfs) are read to their end.
    for proc_file in ["/proc/self/cmdline", "/proc/self/environ"] {
        let expected = std::fs::read(proc_file).unwrap();
        assert_eq!(rt.block_on(iomgr::fs::read(proc_file)).unwrap(), expected);
    }
}
