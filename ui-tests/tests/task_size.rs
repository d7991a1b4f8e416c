//! A generic task's size is a budget (`#[iomgr::task(size = N)]`, 1024 by default), checked
//! when the task is *built* for a concrete type (a post-monomorphization const evaluation,
//! which `cargo check`, and so trybuild, skips). This test builds a tiny crate whose task does
//! not fit its budget and reads the error a user would see.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn a_generic_task_over_its_size_fails_the_build_with_both_sizes() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap().to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let dir = target.join("task-size-check");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"size-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
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

#[iomgr::task(size = 64)]
async fn uses_big<T: Default>() -> u8 {
    let _t = T::default();
    big().await
}

fn main() {
    let _ = iomgr::Runtime::new().unwrap().block_on(uses_big::<u32>());
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
        stderr.contains("attempt to compute `64_usize - 1032_usize`, which would overflow"),
        "{stderr}"
    );
    // The error names the task and its type argument, and the line shown says what to write.
    assert!(stderr.contains("uses_big<u32>"), "{stderr}");
    assert!(
        stderr.contains("`#[iomgr::task(size = <the 2nd number>)]`"),
        "{stderr}"
    );
}
