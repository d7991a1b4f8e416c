//! An error from every stage position stops the pipeline with a `PipelineError` that names
//! that stage (its position, role and expression) and hands back the item it had in hand.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use iomgr::Runtime;
use iomgr::pipeline::{LengthDelimited, Lines, PipelineError, Role, Source, StageError};
use iomgr::sync::chan;

/// Gives `0, 1, 2, ...` and fails instead of giving `fail_at`.
struct Counter {
    next: u32,
    fail_at: Option<u32>,
}

impl Source for Counter {
    type Item = u32;

    fn poll_next(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Result<Option<u32>, StageError>> {
        let n = self.next;
        self.next += 1;
        Poll::Ready(match n {
            _ if Some(n) == self.fail_at => Err(io::Error::other("the counter broke").into()),
            0..10 => Ok(Some(n)),
            _ => Ok(None),
        })
    }
}

fn err(kind: io::ErrorKind) -> io::Error {
    io::Error::new(kind, "injected")
}

/// Six stages of every kind; the stage `fail_at` fails on the item 5.
async fn run(fail_at: usize) -> (Result<(), PipelineError>, Vec<Vec<u8>>) {
    let (tx, rx) = chan::<Vec<u8>>(64);
    let rx = if fail_at == 6 {
        drop(rx); // the sink's channel is closed: its first send fails
        None
    } else {
        Some(rx)
    };
    let source = Counter {
        next: 0,
        fail_at: (fail_at == 0).then_some(5),
    };
    let result = iomgr::pipeline! {
        source
        => |n: u32| if fail_at == 1 && n == 5 { Err(err(io::ErrorKind::InvalidInput)) } else { Ok(n) }
        => async |n| {
            iomgr::yield_now().await;
            if fail_at == 2 && n == 5 { Err(err(io::ErrorKind::TimedOut)) } else { Ok(n) }
        }
        => |n| if fail_at == 3 && n == 5 { "x".repeat(100) + "\n" } else { format!("{n}\n") }
        => Lines::new(10)
        => |line: String| if fail_at == 5 && line == "5" { vec![0u8; 300] } else { line.into_bytes() }
        => LengthDelimited::new(200).u8().encoder()
        => &tx
    }
    .await;
    drop(tx);
    let mut sent = Vec::new();
    if let Some(rx) = rx {
        while let Ok(v) = rx.try_recv() {
            sent.push(v);
        }
    }
    (result, sent)
}

#[test]
fn an_error_from_every_stage_position_names_that_stage() {
    Runtime::new().unwrap().block_on(async {
        let (ok, sent) = run(usize::MAX).await;
        ok.unwrap();
        assert_eq!(sent.len(), 10);
        assert_eq!(sent[3], [1, b'3']);

        let cases: [(usize, usize, Role, io::ErrorKind, &str); 6] = [
            (0, 0, Role::Source, io::ErrorKind::Other, "source"),
            (1, 1, Role::Adapter, io::ErrorKind::InvalidInput, "|n: u32|"),
            (2, 2, Role::Adapter, io::ErrorKind::TimedOut, "async |n|"),
            (
                3,
                4,
                Role::Adapter,
                io::ErrorKind::InvalidData,
                "Lines::new(10)",
            ),
            (
                5,
                6,
                Role::Adapter,
                io::ErrorKind::InvalidData,
                "LengthDelimited::new(200)",
            ),
            (6, 7, Role::Sink, io::ErrorKind::BrokenPipe, "&tx"),
        ];
        for (fail_at, stage, role, kind, expr) in cases {
            let (result, sent) = run(fail_at).await;
            let e = result.unwrap_err();
            assert_eq!(e.stage(), stage, "{e}");
            assert_eq!(e.role(), role, "{e}");
            assert_eq!(e.kind(), kind, "{e}");
            assert!(e.expr().starts_with(expr), "{:?} for {e}", e.expr());
            assert!(e.to_string().contains(&format!("stage {stage}")), "{e}");
            // The pipeline stopped at once: what reached the sink is a prefix of the items
            // before the failing one (those still between stages were dropped).
            assert!(sent.len() <= 5, "{e}");
            for (i, item) in sent.iter().enumerate() {
                assert_eq!(item[1..], *i.to_string().as_bytes(), "{e}");
            }
            let as_io: io::Error = e.into();
            assert_eq!(as_io.kind(), kind);
        }
    });
}

#[test]
fn the_failing_stage_hands_back_its_item() {
    Runtime::new().unwrap().block_on(async {
        // A decoder hands back the buffer it was reading.
        let mut out: Vec<String> = Vec::new();
        let mut e = iomgr::pipeline! {
            iomgr::pipeline::iter([b"ok\ntoo long for this\n".to_vec()]) => Lines::new(5) => &mut out
        }
        .await
        .unwrap_err();
        assert_eq!(out, ["ok"]);
        assert!(e.has_item());
        assert!(e.take_item::<String>().is_none(), "not a String");
        assert_eq!(e.take_item::<Vec<u8>>().unwrap(), b"ok\ntoo long for this\n");
        assert!(!e.has_item());

        // A channel sink hands back the item it could not send.
        let (tx, rx) = chan::<String>(1);
        drop(rx);
        let mut e = iomgr::pipeline! {
            iomgr::pipeline::iter(["lost?"]) => |s: &str| s.to_string() => tx
        }
        .await
        .unwrap_err();
        assert_eq!(e.take_item::<String>().unwrap(), "lost?");
    });
}
