//! `#[iomgr::main]` and `#[iomgr::test]`.

use std::io;
use std::process::Command;
use std::time::Duration;

use iomgr::net::{TcpListener, TcpStream};

#[iomgr::test]
async fn a_test_runs_on_a_runtime() {
    iomgr::time::sleep(Duration::from_millis(1)).await;
    let handle = iomgr::spawn(async { 7 });
    assert_eq!(handle.await.unwrap(), 7);
}

#[iomgr::test(entries = 64, cq_entries = 256)]
async fn a_test_may_return_a_result_and_use_question_marks() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client = iomgr::spawn(async move { TcpStream::connect(addr).await });
    let (_server, _) = listener.accept().await?;
    client.await.unwrap()?;
    Ok(())
}

#[iomgr::test]
async fn return_in_the_body_returns_from_the_test() -> Result<(), String> {
    if iomgr::runtime::Handle::try_current().is_some() {
        return Ok(());
    }
    Err("no runtime".into())
}

#[iomgr::test(single_issuer = false, defer_taskrun = false, coop_taskrun = false)]
async fn flags_may_be_turned_off() {
    iomgr::yield_now().await;
}

#[iomgr::test(entries = 0)]
#[should_panic(expected = "iomgr: cannot start a runtime for this test: ")]
async fn options_reach_the_builder_and_a_bad_one_fails_the_test() {
    unreachable!("the runtime cannot start with a ring of 0 entries");
}

#[test]
fn a_main_whose_runtime_cannot_start_says_why_and_exits_1() {
    let out = Command::new(env!("CARGO_BIN_EXE_main_bad_ring"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.starts_with("error: cannot start the iomgr runtime: ") && stderr.contains("entries"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_main_returning_a_result_returns_the_start_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_main_bad_ring_result"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("Error: ") && stderr.contains("entries"),
        "{stderr}"
    );
}
