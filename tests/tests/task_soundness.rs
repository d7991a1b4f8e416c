//! Soundness regressions for `#[iomgr::task]`, found in review: polling a task again after
//! a panic or an early exit inside an awaited expression must panic cleanly, never poll an
//! empty awaiter slot (which once read uninitialized or freed memory).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

struct Ready(u32);
impl Future for Ready {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(self.0)
    }
}

fn boom(n: usize) -> Ready {
    if n > 0 {
        panic!("boom (expected in this test)");
    }
    Ready(0)
}

#[iomgr::task]
async fn panics_building_future(v: Vec<u8>) -> u32 {
    let x = boom(v.len()).await;
    x + v.len() as u32
}

#[iomgr::task]
async fn question_in_future_expression(s: &'static str) -> Result<u32, std::num::ParseIntError> {
    let n = Ready(s.parse::<u32>()?).await;
    Ok(n)
}

struct PanicOnDrop(Box<u32>);
impl Future for PanicOnDrop {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(*self.0)
    }
}
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("drop (expected in this test)");
    }
}

#[iomgr::task]
#[allow(clippy::let_and_return)]
async fn future_panics_in_drop() -> u32 {
    let a = PanicOnDrop(Box::new(1)).await;
    a
}

/// Polls `fut` once more and checks that it panics instead of touching an empty slot.
fn second_poll_panics<F: Future>(fut: Pin<&mut F>) {
    let mut cx = Context::from_waker(Waker::noop());
    let second = catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx).is_ready()));
    assert!(
        second.is_err(),
        "a finished or broken task must panic when polled again"
    );
}

#[test]
fn repoll_after_a_panic_while_building_the_awaited_future() {
    let mut task = pin!(panics_building_future(vec![1, 2, 3]));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(catch_unwind(AssertUnwindSafe(|| task.as_mut().poll(&mut cx).is_ready())).is_err());
    second_poll_panics(task);
}

#[test]
fn repoll_after_question_mark_inside_the_awaited_expression() {
    let mut task = pin!(question_in_future_expression("x"));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(task.as_mut().poll(&mut cx), Poll::Ready(Err(_))));
    second_poll_panics(task);
}

#[test]
fn repoll_after_the_awaited_future_panicked_in_its_destructor() {
    let mut task = pin!(future_panics_in_drop());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(catch_unwind(AssertUnwindSafe(|| task.as_mut().poll(&mut cx).is_ready())).is_err());
    second_poll_panics(task);
}
