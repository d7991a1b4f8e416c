//! Tests of the combinators, with futures that record when they are dropped.

use std::cell::{Cell, RefCell};
use std::future::{Future, pending, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::{Either, join, join_all, race, race_all, select, try_join};
use crate::sync::test_util::{LocalExecutor, block_on};
use crate::sync::{chan, promise};

/// Sets its flag when dropped.
struct Flag(Rc<Cell<bool>>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A future that never finishes and flags its drop.
fn never_flagged(flag: &Rc<Cell<bool>>) -> impl Future<Output = u32> + 'static {
    let f = Flag(flag.clone());
    async move {
        let _f = f;
        pending::<u32>().await
    }
}

/// Ready after `n` polls (waking itself each time).
struct After(u32);
impl Future for After {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.0 == 0 {
            Poll::Ready(7)
        } else {
            self.0 -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[test]
fn join_waits_for_both_and_keeps_order() {
    let (fa, pa) = promise::<u32>();
    let (fb, pb) = promise::<&str>();
    let ex = LocalExecutor::new();
    let out = ex.spawn(join(fa, fb));
    assert_eq!(ex.run_until_stalled(), 1);
    pb.set("b").unwrap();
    assert_eq!(ex.run_until_stalled(), 1, "still waiting for the first");
    pa.set(1).unwrap();
    assert_eq!(ex.run_until_stalled(), 0);
    let (a, b) = out.borrow_mut().take().unwrap();
    assert_eq!((a.unwrap(), b.unwrap()), (1, "b"));
}

#[test]
fn join_all_returns_outputs_in_input_order() {
    let futs: Vec<_> = (0..5u32)
        .map(|i| async move { After(5 - i).await + i })
        .collect();
    assert_eq!(block_on(join_all(futs)), vec![7, 8, 9, 10, 11]);
    assert!(block_on(join_all(Vec::<std::future::Ready<u8>>::new())).is_empty());
}

#[test]
fn try_join_returns_the_first_error_and_drops_the_other() {
    let dropped = Rc::new(Cell::new(false));
    let other = never_flagged(&dropped);
    let r = block_on(try_join(async { Err::<u8, _>("boom") }, async move {
        Ok::<_, &str>(other.await)
    }));
    assert_eq!(r, Err("boom"));
    assert!(dropped.get(), "the unfinished future was dropped");
    let ok = block_on(try_join(async { Ok::<_, ()>(After(2).await) }, async {
        Ok(After(1).await + 1)
    }));
    assert_eq!(ok, Ok((7, 8)));
    // An error from the second future wins too, and the first is dropped.
    let dropped = Rc::new(Cell::new(false));
    let first = never_flagged(&dropped);
    let r = block_on(try_join(async move { Ok::<u32, u8>(first.await) }, async {
        Err::<(), u8>(3)
    }));
    assert_eq!(r, Err(3));
    assert!(dropped.get());
}

#[test]
fn select_says_who_won_and_drops_the_loser_at_once() {
    let dropped = Rc::new(Cell::new(false));
    let mut sel = Box::pin(select(never_flagged(&dropped), After(2)));
    let out = block_on(sel.as_mut());
    assert_eq!(out, Either::Right(7));
    assert!(
        dropped.get(),
        "the loser is dropped before the output is returned"
    );
    drop(sel);
    // Ties go to the first future.
    assert_eq!(block_on(select(ready(1), ready("b"))), Either::Left(1));
}

#[test]
fn a_receive_that_loses_a_race_takes_nothing() {
    let (tx, rx) = chan::<u32>(2);
    tx.try_send(1).unwrap();
    let v = block_on(race(ready(0), async { rx.recv().await.unwrap() }));
    assert_eq!(v, 0);
    assert_eq!(rx.len(), 1, "the losing receive did not consume the item");
    let v = block_on(race(pending(), async { rx.recv().await.unwrap() }));
    assert_eq!(v, 1);
}

#[test]
fn race_all_gives_the_index_and_drops_the_rest() {
    let flags: Vec<_> = (0..3).map(|_| Rc::new(Cell::new(false))).collect();
    let mut futs: Vec<Pin<Box<dyn Future<Output = u32>>>> = flags
        .iter()
        .map(|f| Box::pin(never_flagged(f)) as _)
        .collect();
    futs.insert(2, Box::pin(After(3)));
    let mut r = Box::pin(race_all(futs));
    assert_eq!(block_on(r.as_mut()), (2, 7));
    assert!(flags.iter().all(|f| f.get()), "all losers dropped");
}

#[test]
#[should_panic(expected = "race_all of no futures")]
fn race_all_of_nothing_panics_with_a_clear_message() {
    block_on(race_all(Vec::<std::future::Ready<u8>>::new()));
}

#[test]
fn select_macro_runs_the_winning_branch_after_dropping_the_losers() {
    let dropped = Rc::new(Cell::new(false));
    let seen_dropped = Rc::new(Cell::new(false));
    let (tx, rx) = chan::<u32>(1);
    let out = block_on(async {
        tx.send(5).await.unwrap();
        crate::select! {
            v = never_flagged(&dropped) => v,
            (a, b) = async { (rx.recv().await.unwrap(), 1) } => {
                seen_dropped.set(dropped.get());
                // The branch body may await.
                tx.send(a + b).await.unwrap();
                rx.recv().await.unwrap()
            },
            _ = After(10) => 0,
        }
    });
    assert_eq!(out, 6);
    assert!(
        seen_dropped.get(),
        "losers were dropped before the branch ran"
    );
}

#[test]
fn select_macro_single_branch_and_last_branch_wins() {
    assert_eq!(
        block_on(async {
            crate::select! { v = ready(3) => v + 1 }
        }),
        4
    );
    let got = block_on(async {
        crate::select! {
            _ = pending::<()>() => "first",
            _ = pending::<u8>() => "second",
            s = After(1) => if s == 7 { "last" } else { "wrong" },
        }
    });
    assert_eq!(got, "last");
}

#[test]
fn select_macro_body_can_return_from_the_enclosing_fn() {
    async fn find() -> Result<u32, String> {
        let v = crate::select! {
            r = async { Err::<u32, String>("failed".into()) } => r?,
            _ = pending::<()>() => 0,
        };
        Ok(v)
    }
    assert_eq!(block_on(find()), Err("failed".to_string()));
}

#[test]
fn combinators_accept_not_unpin_futures_and_cancel_promises() {
    let (fut, p) = promise::<u8>();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let loser = async move {
        let v = fut.await;
        l.borrow_mut().push("loser finished");
        v
    };
    let winner = async {
        After(1).await;
        8u8
    };
    match block_on(select(loser, winner)) {
        Either::Right(8) => {}
        _ => panic!("the second future should win"),
    }
    assert!(
        p.is_abandoned(),
        "the losing future (and its promise future) was dropped"
    );
    assert!(log.borrow().is_empty());
}
