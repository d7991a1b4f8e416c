//! Task dumps: every live task with its name, where it was spawned, and where an
//! `#[iomgr::task]` waits.

use std::time::Duration;

use iomgr::Runtime;
use iomgr::runtime::TaskDump;
use iomgr::sync::{Receiver, chan};

const WAITS_AT: u32 = line!() + 4;
#[iomgr::task]
async fn waits_on_a_channel(rx: Receiver<u32>) -> u32 {
    let ticks = iomgr::time::sleep(Duration::from_millis(1)).await;
    let first = rx.recv().await.unwrap_or(0);
    let () = ticks;
    first
}

#[iomgr::task(pool = 4)]
async fn pooled(rx: Receiver<u32>) -> u32 {
    rx.recv().await.unwrap_or(0)
}

async fn plain(rx: Receiver<u32>) -> u32 {
    rx.recv().await.unwrap_or(0)
}

fn find<'a>(dump: &'a [TaskDump], name: &str) -> &'a TaskDump {
    dump.iter()
        .find(|t| t.name() == name)
        .unwrap_or_else(|| panic!("no task `{name}` in {dump:#?}"))
}

#[test]
fn a_dump_names_each_task_where_it_was_spawned_and_where_it_waits() {
    let rt = Runtime::new().unwrap();
    let (tx1, rx1) = chan(1);
    let (tx2, rx2) = chan(1);
    let (tx3, rx3) = chan(1);
    let spawned_line = line!() + 2;
    let (a, b, c) = rt.block_on(async {
        let a = iomgr::spawn(waits_on_a_channel(rx1));
        let b = pooled(rx2).spawn().unwrap();
        let c = iomgr::spawn(plain(rx3));
        // Let every task run until it waits on its channel.
        iomgr::time::sleep(Duration::from_millis(20)).await;
        (a, b, c)
    });
    let dump = rt.dump();
    assert_eq!(dump.len(), 3, "{dump:#?}");

    let task = find(&dump, "waits_on_a_channel");
    let point = task.waiting_at.expect("a #[task] says where it waits");
    assert_eq!(point.file, file!());
    assert_eq!(point.line, WAITS_AT, "{task}");
    assert_eq!(point.expr, "rx.recv()");
    assert_eq!(task.spawned_at.file(), file!());
    assert_eq!(task.spawned_at.line(), spawned_line);
    assert!(!task.ready);
    let line = task.to_string();
    assert!(
        line.contains("`waits_on_a_channel`") && line.contains(&format!(":{WAITS_AT}:")),
        "{line}"
    );

    let task = find(&dump, "pooled");
    assert_eq!(
        task.spawned_at.line(),
        spawned_line + 1,
        "the pool's caller"
    );
    assert_eq!(task.waiting_at.unwrap().expr, "rx.recv()");

    // A plain async fn: its type and where it was spawned, no numbered `.await`.
    let task = find(&dump, "plain::{{closure}}");
    assert!(task.waiting_at.is_none());
    assert_eq!(task.spawned_at.line(), spawned_line + 2);
    assert!(task.to_string().contains("waiting (no numbered .await)"));

    rt.block_on(async {
        tx1.send(1).await.unwrap();
        tx2.send(2).await.unwrap();
        tx3.send(3).await.unwrap();
        assert_eq!(
            (a.await.unwrap(), b.await.unwrap(), c.await.unwrap()),
            (1, 2, 3)
        );
    });
    assert!(rt.dump().is_empty());
}

#[test]
fn a_handle_dumps_a_running_runtime_from_another_thread() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let (tx, rx) = chan::<u32>(1);
    let asker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        handle.dump().wait().unwrap()
    });
    let dump = rt.block_on(async {
        let task = iomgr::spawn(waits_on_a_channel(rx));
        // The runtime keeps running while the other thread asks.
        while !asker.is_finished() {
            iomgr::time::sleep(Duration::from_millis(1)).await;
        }
        tx.send(5).await.unwrap();
        assert_eq!(task.await.unwrap(), 5);
        asker.join().unwrap()
    });
    let task = find(&dump, "waits_on_a_channel");
    assert_eq!(task.waiting_at.unwrap().line, WAITS_AT);
}
