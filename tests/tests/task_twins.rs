//! `#[iomgr::task]` beside the same `async fn`: output and drop log must match. These came
//! from reviews of the lowering (some were miscompiles of the old syntax-level lowering);
//! each stays as a regression test.
// The bodies deliberately use odd control flow and shadowing, so lints about style are off.
#![allow(dead_code, unused_variables, unused_assignments, clippy::all)]

use iomgr_tests::twins::{assert_same, log, tick};

struct Guard(&'static str);
impl Drop for Guard {
    fn drop(&mut self) {
        log(format!("drop guard {}", self.0));
    }
}
impl std::borrow::Borrow<str> for Guard {
    fn borrow(&self) -> &str {
        self.0
    }
}

macro_rules! twin {
    ($(#[$m:meta])* $task:ident, $plain:ident, ($($arg:ident : $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$m])*
        async fn $task($($arg: $ty),*) -> $ret $body
        async fn $plain($($arg: $ty),*) -> $ret $body
    };
}
/// Both twins, run to completion and dropped at every pending point, give the same output
/// and the same events.
macro_rules! same {
    ($task:ident, $plain:ident, ($($arg:expr),*)) => {
        assert_same(stringify!($task), || $task($($arg),*), || $plain($($arg),*))
    };
}

twin!(#[iomgr::task] mac_drop_t, mac_drop_p, () -> u32 {
    let g = Guard("g");
    assert!(!g.0.is_empty());
    let x = tick("t", 1).await;
    log("after await");
    x
});

#[test]
fn f4_local_named_in_macro_dropped_early() {
    same!(mac_drop_t, mac_drop_p, ());
}

twin!(#[iomgr::task] join_drop_t, join_drop_p, () -> String {
    let parts = vec![Guard("a"), Guard("b")];
    let s = parts.join(",");
    let _ = tick("t", 1).await;
    log("after await");
    s
});

#[test]
fn f5_join_is_not_consuming() {
    same!(join_drop_t, join_drop_p, ());
}

twin!(#[iomgr::task] rename_t, rename_p, () -> u32 {
    let x_2 = 40u32;
    let x = 1u32;
    let x = 2u32;
    let _ = tick("t", 0).await;
    x + x_2
});
#[test]
fn f10_rename_captures_user_local() {
    same!(rename_t, rename_p, ());
}

twin!(#[iomgr::task] dropmid_t, dropmid_p, (a: Guard, b: Guard) -> u32 {
    let c = Guard("c");
    let (d, e) = (Guard("d"), Guard("e"));
    let x = tick("mid", 1).await;
    let _ = (&a, &b, &c, &d, &e);
    x
});
#[test]
fn t_drop_order_when_dropped_unpolled_and_suspended() {
    same!(dropmid_t, dropmid_p, (Guard("a"), Guard("b")));
}

twin!(#[iomgr::task] shadow_t, shadow_p, () -> u32 {
    let g = Guard("1");
    let g = Guard("2");
    let x = tick("a", 1).await;
    {
        let g = Guard("3");
        let _ = tick("b", 2).await;
    }
    log(g.0);
    x
});
#[test]
fn t_shadowing_drop_order() {
    same!(shadow_t, shadow_p, ());
}

twin!(#[iomgr::task] nested_t, nested_p, (n: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let _g = Guard("fn");
    'outer: for i in 0..n {
        let _gi = Guard("i");
        let mut j = 0;
        while j < n {
            j += 1;
            let v = tick("v", i * 10 + j).await;
            match v % 4 {
                0 => continue 'outer,
                1 => {
                    let _gm = Guard("m");
                    if tick("w", v).await > 30 {
                        return out;
                    }
                    out.push(v);
                }
                2 => break,
                _ => {
                    loop {
                        let w = tick("l", v).await;
                        if w % 2 == 1 { break 'outer; }
                        break;
                    }
                    out.push(1000 + v);
                }
            }
        }
        out.push(i);
    }
    out
});
#[test]
fn t_nested_labelled_control_flow() {
    for n in 0..6 {
        same!(nested_t, nested_p, (n));
    }
}

twin!(#[iomgr::task] early_ret_t, early_ret_p, (xs: Vec<&'static str>) -> Result<u32, std::num::ParseIntError> {
    let _a = Guard("a");
    let mut total = 0;
    for s in xs {
        let _b = Guard("b");
        let v: u32 = s.parse()?;
        let t = tick("t", v).await;
        if t == 7 {
            let _c = Guard("c");
            return Ok(total + tick("r", 1).await);
        }
        total += t;
    }
    Ok(total)
});
#[test]
fn t_early_return_and_question_mark_in_loop() {
    // `same!` compares the two results; each run's result is checked there.
    let ok = same!(early_ret_t, early_ret_p, (vec!["1", "2"]));
    assert!(ok.is_ok());
    let _ = same!(early_ret_t, early_ret_p, (vec!["1", "7", "3"]));
    let err = same!(early_ret_t, early_ret_p, (vec!["1", "x", "3"]));
    assert!(err.is_err(), "`?` returns the parse error early");
}

twin!(#[iomgr::task] assign_in_fut_t, assign_in_fut_p, (v: Vec<u32>) -> (usize, usize) {
    let mut v = v;
    let n = { v = vec![9]; std::future::ready(v.len()) }.await;
    (n, v.len())
});

#[test]
fn f3_assignment_inside_awaited_expression() {
    same!(assign_in_fut_t, assign_in_fut_p, (vec![1, 2, 3]));
}

twin!(#[iomgr::task] scrut_tmp_t, scrut_tmp_p, () -> u32 {
    let r = match Guard("tmp").0.len() {
        n => {
            let x = tick("t", n as u32).await;
            log("arm after await");
            x
        }
    };
    r
});

#[test]
fn f6_scrutinee_temporary_lifetime() {
    same!(scrut_tmp_t, scrut_tmp_p, ());
}

twin!(#[iomgr::task] break_in_fut_t, break_in_fut_p, (stop: bool) -> u32 {
    let mut n = 0;
    loop {
        let g = Guard("g");
        n += tick("t", if stop { break } else { 1 }).await;
        drop(g);
        if n > 2 { break; }
    }
    log("after loop");
    n
});
#[test]
fn f9_break_inside_awaited_expression() {
    same!(break_in_fut_t, break_in_fut_p, (true));
}
