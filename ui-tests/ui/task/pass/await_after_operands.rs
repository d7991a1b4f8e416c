//! Operands evaluated before an `.await` in the same expression are kept across it, in
//! evaluation order, as in an `async fn`.

fn base(log: &mut Vec<&'static str>) -> u32 {
    log.push("base");
    1
}

async fn second(log: &mut Vec<&'static str>) -> u32 {
    log.push("await");
    2
}

#[iomgr::task]
async fn sum() -> (u32, Vec<&'static str>) {
    let mut log = Vec::new();
    let a = base(&mut log);
    let total = a + base(&mut log) + std::future::ready(2).await;
    let v = [base(&mut log), std::future::ready(5).await, 7];
    let _ = second(&mut log).await;
    (total + v.iter().sum::<u32>(), log)
}

fn main() {
    let (total, log) = iomgr::Runtime::new().unwrap().block_on(sum());
    assert_eq!(total, 4 + 13);
    assert_eq!(log, ["base", "base", "base", "await"]);
}
