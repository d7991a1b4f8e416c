//! Each kind of stage, over in-memory sources and sinks: functions and closures (map,
//! filter, fallible, async), decoders and encoders, borrowed stages, and the results.

use std::io;

use iomgr::Runtime;
use iomgr::pipeline::{
    Chunk, FixedSize, LengthDelimited, Lines, PipelineError, Role, SegmentState, for_each, iter,
};

fn run<T>(f: impl Future<Output = T>) -> T {
    Runtime::new().unwrap().block_on(f)
}

fn double(x: u32) -> u32 {
    x * 2
}

#[test]
fn functions_and_closures_map_filter_and_fail() {
    run(async {
        let mut out = Vec::new();
        iomgr::pipeline! {
            iter(1..=10u32)
            => double
            => |x| if x % 4 == 0 { None } else { Some(x) }
            => |x: u32| x.to_string()
            => &mut out
        }
        .run()
        .await
        .unwrap();
        assert_eq!(out, ["2", "6", "10", "14", "18"]);

        let mut out: Vec<u32> = Vec::new();
        let err = iomgr::pipeline! {
            iter(1..=10u32)
            => |x| if x < 4 { Ok(x) } else { Err(io::Error::new(io::ErrorKind::InvalidInput, "four")) }
            => &mut out
        }
        .await
        .unwrap_err();
        assert_eq!(out, [1, 2, 3]);
        assert_eq!(err.stage(), 1);
        assert_eq!(err.role(), Role::Adapter);
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.expr().starts_with("|x| if x < 4"), "{}", err.expr());
        assert!(err.to_string().contains("stage 1"), "{err}");
    });
}

#[test]
fn async_closures_and_async_fns() {
    async fn slow_len(s: String) -> usize {
        iomgr::yield_now().await;
        s.len()
    }
    run(async {
        let mut out = Vec::new();
        iomgr::pipeline! {
            iter(["a", "bb", "", "dddd"])
            => |s: &str| s.to_string()
            => slow_len
            => async |n| {
                iomgr::yield_now().await;
                if n == 0 { None } else { Some(n * 10) }
            }
            => |n| async move { n + 1 }
            => &mut out
        }
        .await
        .unwrap();
        assert_eq!(out, [11, 21, 41]);
    });
}

#[test]
fn decoders_and_encoders_round_trip() {
    run(async {
        let mut lines: Vec<String> = Vec::new();
        iomgr::pipeline! {
            iter(["x\ny", "y\n", "zzz\r\n"]) => Lines::new(10) => &mut lines
        }
        .await
        .unwrap();
        assert_eq!(lines, ["x", "yy", "zzz"]);

        let codec = LengthDelimited::new(100).u8();
        let mut back: Vec<String> = Vec::new();
        iomgr::pipeline! {
            iter(["one", "two", "three"])
            => codec.encoder()
            => |bytes: Vec<u8>| Chunk::from_vec(bytes)
            => codec
            => |b: Vec<u8>| String::from_utf8(b)
            => Lines::encoder()
            => Lines::new(100)
            => &mut back
        }
        .await
        .unwrap();
        assert_eq!(back, ["one", "two", "three"]);

        let mut frames = Vec::new();
        iomgr::pipeline! {
            iter([b"abcd".to_vec(), b"ef".to_vec()]) => FixedSize::new(3) => &mut frames
        }
        .await
        .unwrap();
        assert_eq!(frames, [b"abc".to_vec(), b"def".to_vec()]);
    });
}

#[test]
fn a_source_ending_mid_frame_is_an_error_naming_the_decoder() {
    run(async {
        let mut lines: Vec<String> = Vec::new();
        let mut err: PipelineError = iomgr::pipeline! {
            iter(["whole\npart"]) => Lines::new(64) => &mut lines
        }
        .await
        .unwrap_err();
        assert_eq!(lines, ["whole"]);
        assert_eq!(err.stage(), 1);
        assert_eq!(err.expr(), "Lines::new(64)");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(err.take_item::<Vec<u8>>().unwrap(), b"part");
    });
}

#[test]
fn borrowed_stages_and_for_each() {
    run(async {
        let mut decoder = Lines::new(8);
        let mut seen = 0;
        iomgr::pipeline! {
            iter(["a\nb\n"]) => &mut decoder => for_each(|_line: String| seen += 1)
        }
        .await
        .unwrap();
        assert_eq!(seen, 2);
    });
}

#[test]
fn a_pipeline_reports_its_stages_and_segments() {
    let mut out: Vec<u8> = Vec::new();
    let p = iomgr::pipeline! { iter([1u8, 2]) => |x| x + 1 => |x| x * 2 => &mut out };
    assert_eq!(
        p.stages(),
        ["iter([1u8, 2])", "|x| x + 1", "|x| x * 2", "&mut out"]
    );
    assert_eq!(p.segments(), [SegmentState::Idle; 3]);
    let debug = format!("{p:?}");
    assert!(debug.contains("|x| x + 1"), "{debug}");
    run(p).unwrap();
    assert_eq!(out, [4, 6]);
}
