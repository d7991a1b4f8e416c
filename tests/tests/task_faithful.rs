//! The reproducers of issue 9, each a twin: a `#[iomgr::task]` and the same `async fn` must
//! give the same value and the same events, run to completion and dropped at every pending
//! point. The old syntax-level lowering got every one of these wrong (a different value, a
//! different drop order) or rejected it with an error about generated names.
// The bodies are written as the reproducers were reported, lints notwithstanding.
#![allow(
    dead_code,
    unused_variables,
    unused_assignments,
    unused_mut,
    clippy::all,
    clippy::pedantic
)]

use iomgr_tests::twin;
use iomgr_tests::twins::{Guard, assert_same, log, tick};

// ---- wrong values ---------------------------------------------------------------------

twin!(shadow_block_t, shadow_block_p, () -> u32 {
    let len = 10;
    {
        let len = len * 2;
        tick("t", 0).await;
        log(format!("inner {len}"));
    }
    len
});
twin!(shadow_for_t, shadow_for_p, () -> u32 {
    let i = 100;
    for i in 0..3 {
        tick("t", i).await;
    }
    i
});
twin!(shadow_arm_t, shadow_arm_p, (opt: Option<u32>) -> u32 {
    let off = 100;
    match opt {
        Some(off) => {
            tick("t", off).await;
        }
        None => {}
    }
    off
});
twin!(shadow_if_let_t, shadow_if_let_p, (opt: Option<u32>) -> u32 {
    let v = 1;
    if let Some(v) = opt && v > 2 {
        tick("t", v).await;
    }
    while let Some(v) = None::<u32> {
        tick("w", v).await;
    }
    v
});

#[test]
fn a_shadowing_binding_in_an_inner_scope_does_not_replace_the_outer_local() {
    assert_eq!(assert_same("block", shadow_block_t, shadow_block_p), 10);
    assert_eq!(assert_same("for", shadow_for_t, shadow_for_p), 100);
    assert_eq!(
        assert_same("arm", || shadow_arm_t(Some(7)), || shadow_arm_p(Some(7))),
        100
    );
    assert_eq!(
        assert_same(
            "if let",
            || shadow_if_let_t(Some(7)),
            || shadow_if_let_p(Some(7))
        ),
        1
    );
}

twin!(let_in_block_t, let_in_block_p, () -> u32 {
    let len = 10;
    {
        let a = tick("t", 1).await;
        let len = a * 3;
        log(format!("inner {len}"));
    }
    len
});

#[test]
fn a_let_in_a_block_with_an_await_ends_with_the_block() {
    assert_eq!(
        assert_same("let in block", let_in_block_t, let_in_block_p),
        10
    );
}

const K: u32 = 1;
twin!(item_in_block_t, item_in_block_p, () -> u32 {
    {
        const K: u32 = 2;
        tick("t", K).await;
    }
    K
});

#[test]
fn an_item_in_a_block_keeps_its_scope() {
    assert_eq!(
        assert_same("const in block", item_in_block_t, item_in_block_p),
        1
    );
}

twin!(assign_in_awaited_t, assign_in_awaited_p, () -> (u32, u32) {
    let mut c = 0;
    let x = tick("t", { c = 5; 1 }).await;
    (c, x)
});

#[test]
fn an_assignment_inside_the_awaited_expression_is_kept() {
    assert_eq!(
        assert_same("assign", assign_in_awaited_t, assign_in_awaited_p),
        (5, 1)
    );
}

// ---- drop order -----------------------------------------------------------------------

twin!(let_underscore_t, let_underscore_p, () -> u32 {
    let g = Guard("g");
    let _ = g;
    tick("t", 1).await;
    log("end of body");
    2
});
twin!(ref_binding_t, ref_binding_p, (opt: Option<Guard>) -> u32 {
    if let Some(ref g) = opt {
        tick("t", 1).await;
        log(g.0);
    }
    tick("u", 2).await
});
twin!(closure_borrows_t, closure_borrows_p, () -> usize {
    let g = Guard("g");
    let f = || g.0.len();
    tick("t", 1).await;
    f()
});

struct Counted {
    count: u32,
    guard: Guard,
}
twin!(move_closure_copy_field_t, move_closure_copy_field_p, () -> u32 {
    let s = Counted { count: 3, guard: Guard("s") };
    let f = move || s.count;
    tick("t", 1).await;
    log("after await");
    f()
});
twin!(moved_in_one_branch_t, moved_in_one_branch_p, (cond: bool) -> u32 {
    let g = Guard("g");
    if cond {
        drop(g);
    }
    tick("t", 1).await
});
twin!(misleading_names_t, misleading_names_p, () -> usize {
    let g = Guard("g");
    let h = Guard("h");
    let n = g.into_name().len() + h.expect("x");
    tick("t", 1).await;
    log("after await");
    n
});
twin!(for_rest_after_break_t, for_rest_after_break_p, () -> u32 {
    for g in vec![Guard("a"), Guard("b"), Guard("c")] {
        tick("t", 1).await;
        log(g.0);
        break;
    }
    tick("u", 2).await
});
async fn guards() -> Vec<Guard> {
    vec![Guard("v1"), Guard("v2")]
}
twin!(method_on_await_t, method_on_await_p, () -> usize {
    let n = guards().await.len();
    tick("t", 1).await;
    n
});
twin!(return_inside_awaited_t, return_inside_awaited_p, (stop: bool) -> u32 {
    let g = Guard("g");
    let x = tick("t", if stop { return 0 } else { 1 }).await;
    x
});
twin!(break_inside_awaited_t, break_inside_awaited_p, (stop: bool) -> u32 {
    let mut n = 0;
    loop {
        let g = Guard("g");
        n += tick("t", if stop { break } else { 1 }).await;
        drop(g);
        if n > 2 {
            break;
        }
    }
    n
});
twin!(question_inside_awaited_t, question_inside_awaited_p, (v: Option<u32>) -> Option<u32> {
    let g = Guard("g");
    Some(tick("t", v?).await)
});
twin!(temporary_in_awaited_t, temporary_in_awaited_p, () -> u32 {
    let x = tick("t", Guard("tmp").expect("") as u32).await;
    log("next statement");
    x
});
twin!(temporary_in_scrutinee_t, temporary_in_scrutinee_p, () -> u32 {
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
fn drops_happen_where_the_async_fn_does_them() {
    assert_same("let _ = g", let_underscore_t, let_underscore_p);
    assert_same(
        "ref binding",
        || ref_binding_t(Some(Guard("g"))),
        || ref_binding_p(Some(Guard("g"))),
    );
    assert_same("closure borrows", closure_borrows_t, closure_borrows_p);
    assert_same(
        "move closure, copy field",
        move_closure_copy_field_t,
        move_closure_copy_field_p,
    );
    for cond in [false, true] {
        assert_same(
            "moved in one branch",
            || moved_in_one_branch_t(cond),
            || moved_in_one_branch_p(cond),
        );
    }
    assert_same("misleading names", misleading_names_t, misleading_names_p);
    assert_same(
        "for, rest after break",
        for_rest_after_break_t,
        for_rest_after_break_p,
    );
    assert_same("method on .await", method_on_await_t, method_on_await_p);
    for stop in [false, true] {
        assert_same(
            "return inside awaited",
            || return_inside_awaited_t(stop),
            || return_inside_awaited_p(stop),
        );
        assert_same(
            "break inside awaited",
            || break_inside_awaited_t(stop),
            || break_inside_awaited_p(stop),
        );
    }
    for v in [None, Some(4)] {
        assert_same(
            "? inside awaited",
            || question_inside_awaited_t(v),
            || question_inside_awaited_p(v),
        );
    }
    assert_same(
        "temporary in awaited",
        temporary_in_awaited_t,
        temporary_in_awaited_p,
    );
    assert_same(
        "temporary in scrutinee",
        temporary_in_scrutinee_t,
        temporary_in_scrutinee_p,
    );
}

// ---- valid code the old lowering rejected ---------------------------------------------

async fn send(s: String) -> usize {
    s.len()
}
async fn pair() -> (Result<u32, String>, Guard) {
    (Ok(3), Guard("pair"))
}
static TABLE: [u32; 3] = [1, 2, 3];

twin!(borrow_in_awaited_t, borrow_in_awaited_p, (cmd: String) -> usize {
    let w = cmd.as_str();
    send(format!("{w}")).await
});
twin!(field_of_await_t, field_of_await_p, () -> Result<u32, String> {
    let x = pair().await.0?;
    let y = tick("t", x).await;
    Ok(x + y)
});
twin!(partial_moves_t, partial_moves_p, () -> String {
    let p = (Guard("p0"), Guard("p1"));
    let s = Counted { count: 1, guard: Guard("s") };
    let a = p.0;
    let b = s.guard;
    tick("t", 1).await;
    format!("{} {} {}", a.0, b.0, s.count)
});
twin!(static_and_literal_borrows_t, static_and_literal_borrows_p, (arg: String) -> usize {
    let t = &TABLE;
    let s: &str = "lit";
    let tail = &arg[1..];
    tick("t", 1).await;
    t.len() + s.len() + tail.len()
});
twin!(late_init_t, late_init_p, (c: bool) -> u32 {
    let x;
    let y = tick("t", 1).await;
    if c { x = y; } else { x = 2; }
    x
});
twin!(continue_in_awaited_t, continue_in_awaited_p, () -> u32 {
    let mut n = 0;
    for i in 0..4 {
        n += tick("t", if i % 2 == 0 { continue } else { i }).await;
    }
    n
});
twin!(async_block_borrows_t, async_block_borrows_p, () -> usize {
    let v = vec![Guard("a"), Guard("b")];
    let n = async { v.len() }.await;
    tick("t", 1).await;
    n + v.len()
});
twin!(temporary_vec_ref_t, temporary_vec_ref_p, () -> usize {
    async fn count(v: &Vec<Guard>) -> usize {
        v.len()
    }
    count(&vec![Guard("x"), Guard("y")]).await
});
twin!(elided_lifetime_in_let_t, elided_lifetime_in_let_p, (text: String) -> usize {
    let c: std::str::Chars = text.chars();
    tick("t", 1).await;
    c.count()
});
twin!(consuming_method_t, consuming_method_p, (x: u64) -> u32 {
    let y: u32 = x.try_into().unwrap_or(0);
    tick("t", y).await
});
twin!(pin_across_await_t, pin_across_await_p, () -> u32 {
    let t = std::pin::pin!(tick("pinned", 5));
    tick("t", 1).await;
    t.await
});

twin!(select_macro_t, select_macro_p, (first: bool) -> &'static str {
    let _g = Guard("g");
    let a = tick("a", 1);
    let b = tick("b", 2);
    if first {
        iomgr::select! {
            x = a => if x == 1 { "a" } else { "?" },
            _ = b => "b",
        }
    } else {
        iomgr::select! {
            _ = std::future::pending::<()>() => "never",
            y = b => { log(format!("b won with {y}")); tick("after", 0).await; "b" },
        }
    }
});

#[test]
fn valid_code_compiles_and_means_the_same() {
    for first in [true, false] {
        assert_same(
            "select!",
            || select_macro_t(first),
            || select_macro_p(first),
        );
    }
    assert_same(
        "borrow in awaited",
        || borrow_in_awaited_t("ab".into()),
        || borrow_in_awaited_p("ab".into()),
    );
    assert_eq!(
        assert_same("field of .await", field_of_await_t, field_of_await_p),
        Ok(6)
    );
    assert_same("partial moves", partial_moves_t, partial_moves_p);
    assert_same(
        "static and literal borrows",
        || static_and_literal_borrows_t("xyz".into()),
        || static_and_literal_borrows_p("xyz".into()),
    );
    for c in [false, true] {
        assert_same("late init", || late_init_t(c), || late_init_p(c));
    }
    assert_same(
        "continue in awaited",
        continue_in_awaited_t,
        continue_in_awaited_p,
    );
    assert_same(
        "async block borrows",
        async_block_borrows_t,
        async_block_borrows_p,
    );
    assert_same(
        "temporary vec ref",
        temporary_vec_ref_t,
        temporary_vec_ref_p,
    );
    assert_same(
        "elided lifetime in let",
        || elided_lifetime_in_let_t("abc".into()),
        || elided_lifetime_in_let_p("abc".into()),
    );
    assert_same(
        "consuming method",
        || consuming_method_t(9),
        || consuming_method_p(9),
    );
    assert_same("pin across await", pin_across_await_t, pin_across_await_p);
}

// ---- over a socket ----------------------------------------------------------------------

twin!(socket_shadow_t, socket_shadow_p, (s: iomgr::net::TcpStream, body: Vec<u8>) -> std::io::Result<usize> {
    let n = body.len();
    {
        let (r, b) = s.read(vec![0u8; 64]).await;
        let n = r?;
        log(format!("read {n}: {:?}", &b[..n]));
    }
    let (r, _) = s.write_all(body).await;
    r?;
    Ok(n)
});

#[test]
#[cfg_attr(miri, ignore = "needs an io_uring")]
fn a_socket_handler_returns_what_its_async_fn_returns() {
    use iomgr::net::{TcpListener, TcpStream};
    let rt = iomgr::Runtime::new().unwrap();
    let run = |task: bool| {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let client = iomgr::spawn(async move {
                let c = TcpStream::connect(addr).await.unwrap();
                let (r, _) = c.write_all(b"ping".to_vec()).await;
                r.unwrap();
                let (r, b) = c.read(vec![0u8; 64]).await;
                b[..r.unwrap()].to_vec()
            });
            let (s, _) = listener.accept().await.unwrap();
            let body = b"a longer body".to_vec();
            let n = if task {
                socket_shadow_t(s, body).await
            } else {
                socket_shadow_p(s, body).await
            };
            (n.unwrap(), client.await.unwrap())
        })
    };
    let _ = iomgr_tests::twins::take_log();
    let task = run(true);
    let task_log = iomgr_tests::twins::take_log();
    let plain = run(false);
    let plain_log = iomgr_tests::twins::take_log();
    assert_eq!(task, plain);
    assert_eq!(task.0, 13, "the body's length, not the bytes read");
    assert_eq!(task_log, plain_log);
}

// A parameter named like its function, and one with a pattern.
#[iomgr::task]
async fn same_name(same_name: u32, (a, b): (u32, u32)) -> u32 {
    tick("t", same_name).await + a + b
}

#[test]
fn a_parameter_may_share_the_functions_name() {
    assert_eq!(iomgr_tests::twins::run(same_name(1, (2, 3))), 6);
}

// Found by task-fuzz (seed 1, program 4): `break 'label <awaited>` made the macro panic, its
// rewrite of the `.await` read as a labelled block (`break 'l ::iomgr::..`).
twin!(break_label_await_t, break_label_await_p, (n: u32) -> u32 {
    let r = 'l: loop {
        if n > 2 {
            break 'l async { tick("t", n).await }.await;
        }
        break 'l tick("u", 1).await;
    };
    r
});

#[test]
fn a_labelled_break_may_carry_an_awaited_value() {
    for n in [1, 5] {
        iomgr_tests::twins::assert_same(
            "break 'label .await",
            || break_label_await_t(n),
            || break_label_await_p(n),
        );
    }
}
