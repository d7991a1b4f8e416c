//! A generic task's size depends on its type parameters, so it is a budget: 1024 bytes unless
//! `size = N` says otherwise (too small a budget fails the build, naming the size needed). A
//! task whose body names its own type needs `size = N` too.
//!
//! Inside its body, a task's function name means the plain `async fn`, as it would without
//! the attribute; `self::name` is the task's constructor.

use std::fmt::Display;

#[iomgr::task]
async fn show<T: Display>(value: T, suffix: impl Display) -> String {
    std::future::ready(()).await;
    format!("{value}{suffix}")
}

#[iomgr::task(size = 64)]
async fn countdown(n: u32) -> u32 {
    if n > 0 {
        // Spawning its own kind as a task: the body names `CountdownTask`.
        let child: CountdownTask = self::countdown(n - 1);
        return iomgr::spawn(child).await.unwrap() + 1;
    }
    std::future::ready(0).await
}

fn main() {
    let rt = iomgr::Runtime::new().unwrap();
    assert_eq!(rt.block_on(show(4, "!")), "4!");
    assert_eq!(std::mem::size_of::<ShowTask<u8, &str>>(), 1024);
    assert_eq!(rt.block_on(countdown(3)), 3);
}
