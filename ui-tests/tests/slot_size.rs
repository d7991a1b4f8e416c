//! The awaiter-slot size check runs when a task is *built* (it is a post-monomorphization
//! const evaluation, which `cargo check`, and so trybuild, skips). This test builds a tiny
//! crate with a future too large for its slot and reads the error a user would see.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn a_future_too_large_for_its_slot_fails_the_build_with_both_sizes() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap().to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let dir = target.join("task-slot-check");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"slot-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
             [dependencies]\niomgr = {{ path = {:?} }}\n\n[workspace]\n",
            workspace.join("runtime")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        r#"async fn big() -> u8 {
    let buf = [1u8; 1024];
    std::future::ready(()).await;
    buf[10]
}

#[iomgr::task(slot = 8)]
async fn uses_big() -> u8 {
    big().await
}

fn main() {
    let _ = iomgr::Runtime::new().unwrap().block_on(uses_big());
}
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the build should fail");
    assert!(
        stderr.contains("attempt to compute `8_usize - 1026_usize`, which would overflow"),
        "{stderr}"
    );
    // The note names the future's type and points at the user's `.await`.
    assert!(stderr.contains("AwaitSlot::<8>::put"), "{stderr}");
    assert!(stderr.contains("src/main.rs:9:11"), "{stderr}");
    // The comment at the check tells how to make room.
    assert!(
        stderr.contains("#[iomgr::task(slot = <bytes>)]"),
        "{stderr}"
    );
}
