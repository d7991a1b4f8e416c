//! Property test: random chains of adapters (maps, filters, async stages, one-to-many
//! stages, frames cut at random places and decoded again) over random inputs, with sources
//! and sinks that stall at random, give exactly what the same computation gives as a plain
//! loop.
//!
//! Seeded and replayable: `PIPELINE_SEED=<n> cargo test -p iomgr-tests --test
//! pipeline_property` runs the one case that failed; `PIPELINE_CASES=<n>` runs more.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use iomgr::Runtime;
use iomgr::pipeline::{Adapter, Chunk, Input, LengthDelimited, Lines, Sink, Source, StageError};

/// xorshift64*: small, seeded, good enough to pick cases.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What one slot of the chain does to an item.
#[derive(Clone, Copy, Debug)]
enum Op {
    Keep,
    Map(u64, u64),
    Filter(u64),
}

impl Op {
    fn random(rng: &mut Rng) -> Op {
        match rng.below(3) {
            0 => Op::Keep,
            1 => Op::Map(rng.below(1000) + 1, rng.below(1000)),
            _ => Op::Filter(rng.below(5) + 2),
        }
    }

    fn apply(self, x: u64) -> Option<u64> {
        match self {
            Op::Keep => Some(x),
            Op::Map(a, b) => Some(x.wrapping_mul(a).wrapping_add(b) % 1_000_000_007),
            Op::Filter(m) => (!x.is_multiple_of(m)).then_some(x),
        }
    }
}

/// One case: the inputs, what each slot does, and how the stages misbehave.
#[derive(Debug)]
struct Case {
    inputs: Vec<u64>,
    ops: [Op; 5],
    /// Items for which the one-to-many stage gives a second item.
    twice_mod: u64,
    seed: u64,
}

impl Case {
    fn random(seed: u64) -> Case {
        let mut rng = Rng::new(seed);
        let len = rng.below(120) as usize;
        Case {
            inputs: (0..len).map(|_| rng.below(1 << 40)).collect(),
            ops: [(); 5].map(|_| Op::random(&mut rng)),
            twice_mod: rng.below(4) + 1,
            seed,
        }
    }

    /// The computation as a plain loop.
    fn expected(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for &x in &self.inputs {
            let Some(x) = self.ops[0].apply(x) else {
                continue;
            };
            let Some(x) = self.ops[1].apply(x) else {
                continue;
            };
            let mut expanded = vec![x];
            if x.is_multiple_of(self.twice_mod) {
                expanded.push(x + 1);
            }
            for x in expanded {
                let Some(x) = self.ops[2].apply(x) else {
                    continue;
                };
                let Some(x) = self.ops[3].apply(x) else {
                    continue;
                };
                let Some(x) = self.ops[4].apply(x) else {
                    continue;
                };
                out.push(x);
            }
        }
        out
    }
}

/// A source of the case's inputs that is pending (and wakes itself) at random.
struct Jittery {
    items: std::vec::IntoIter<u64>,
    rng: Rng,
}

impl Source for Jittery {
    type Item = u64;
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<u64>, StageError>> {
        if self.rng.chance(30) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Ok(self.items.next()))
    }
}

/// Gives each item, and `x + 1` after it when `x % m == 0`: a one-to-many adapter.
struct Twice {
    m: u64,
    pending: Option<u64>,
}

impl Adapter for Twice {
    type In = u64;
    type Out = u64;
    fn poll_next(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        input: &mut Input<'_, u64>,
    ) -> Poll<Result<Option<u64>, StageError>> {
        if let Some(x) = self.pending.take() {
            return Poll::Ready(Ok(Some(x)));
        }
        match input.take() {
            Some(x) => {
                if x.is_multiple_of(self.m) {
                    self.pending = Some(x + 1);
                }
                Poll::Ready(Ok(Some(x)))
            }
            None if input.is_ended() => Poll::Ready(Ok(None)),
            None => Poll::Pending,
        }
    }
}

/// Cuts byte buffers into pieces of random sizes (and merges nothing): frames arrive split
/// anywhere, as from a socket.
struct Rechunk {
    rng: Rng,
    held: Vec<u8>,
    pos: usize,
}

impl Adapter for Rechunk {
    type In = Vec<u8>;
    type Out = Chunk;
    fn poll_next(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        input: &mut Input<'_, Vec<u8>>,
    ) -> Poll<Result<Option<Chunk>, StageError>> {
        let this = &mut *self;
        if this.pos == this.held.len() {
            match input.take() {
                Some(bytes) => {
                    this.held = bytes;
                    this.pos = 0;
                }
                None if input.is_ended() => return Poll::Ready(Ok(None)),
                None => return Poll::Pending,
            }
        }
        let n = (this.rng.below(7) as usize + 1).min(this.held.len() - this.pos);
        let piece = this.held[this.pos..this.pos + n].to_vec();
        this.pos += n;
        Poll::Ready(Ok(Some(Chunk::from_vec(piece))))
    }
}

/// Collects items, stalling (and waking itself) at random.
struct Sluggish {
    got: Rc<Cell<Vec<u64>>>,
    rng: Rng,
}

impl Sink for Sluggish {
    type Item = u64;
    fn poll_sink(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        input: &mut Input<'_, u64>,
    ) -> Poll<Result<(), StageError>> {
        if self.rng.chance(30) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match input.take() {
            Some(x) => {
                let mut got = self.got.take();
                got.push(x);
                self.got.set(got);
                Poll::Pending
            }
            None if input.is_ended() => Poll::Ready(Ok(())),
            None => Poll::Pending,
        }
    }
}

/// Yields `n` times: an async stage that is really pending.
async fn yields(n: u64) {
    for _ in 0..n {
        iomgr::yield_now().await;
    }
}

fn run(case: &Case) -> Vec<u64> {
    let mut rng = Rng::new(case.seed ^ 0xABCD);
    let ops = case.ops;
    let got = Rc::new(Cell::new(Vec::new()));
    let source = Jittery {
        items: case.inputs.clone().into_iter(),
        rng: Rng::new(rng.next()),
    };
    let sink = Sluggish {
        got: got.clone(),
        rng: Rng::new(rng.next()),
    };
    let delays = Rng::new(rng.next());
    let codec = LengthDelimited::new(8).u8();
    let pipeline = iomgr::pipeline! {
        source
        => |x| ops[0].apply(x)
        => async |x| {
            yields(x % 3).await;
            ops[1].apply(x)
        }
        => Twice { m: case.twice_mod, pending: None }
        => |x: u64| x.to_string()
        => Lines::encoder()
        => Rechunk { rng: Rng::new(rng.next()), held: Vec::new(), pos: 0 }
        => Lines::new(24)
        => |line: String| line.parse::<u64>()
        => |x| ops[2].apply(x)
        => {
            let mut delays = delays.clone();
            move |x: u64| {
                let n = delays.below(3);
                async move {
                    yields(n).await;
                    ops[3].apply(x)
                }
            }
        }
        => |x: u64| x.to_le_bytes().to_vec()
        => codec.encoder()
        => Rechunk { rng: Rng::new(rng.next()), held: Vec::new(), pos: 0 }
        => codec
        => |v: Vec<u8>| {
            <[u8; 8]>::try_from(v)
                .map(u64::from_le_bytes)
                .map_err(|v| std::io::Error::other(format!("a frame of {} bytes", v.len())))
        }
        => |x| ops[4].apply(x)
        => sink
    };
    Runtime::new()
        .unwrap()
        .block_on(pipeline)
        .unwrap_or_else(|e| panic!("case {case:?} failed: {e}"));
    got.take()
}

#[test]
fn random_chains_give_what_a_plain_loop_gives() {
    let seeds: Vec<u64> = match std::env::var("PIPELINE_SEED") {
        Ok(seed) => vec![seed.parse().expect("PIPELINE_SEED is a number")],
        Err(_) => {
            let cases = std::env::var("PIPELINE_CASES")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(300);
            (1..=cases).collect()
        }
    };
    for seed in seeds {
        let case = Case::random(seed);
        assert_eq!(
            run(&case),
            case.expected(),
            "seed {seed} (replay: PIPELINE_SEED={seed}): {case:?}"
        );
    }
}
