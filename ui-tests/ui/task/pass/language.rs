//! Every construct of the accepted language, in one task that runs.

use std::future::ready;

#[derive(Debug)]
enum Msg {
    Add(u32),
    Skip,
    Stop,
}

#[iomgr::task]
async fn machine(msgs: Vec<Msg>, limit: u32) -> Result<u32, String> {
    let mut total: u32 = 0;
    let mut queue = msgs.into_iter();
    'outer: loop {
        let Some(msg) = queue.next() else { break };
        match msg {
            Msg::Add(n) if n > limit => return Err(format!("{n} is over {limit}")),
            Msg::Add(n) => total += ready(n).await,
            Msg::Skip => continue 'outer,
            Msg::Stop => break 'outer,
        }
        if let Some(bonus) = ready(Some(1)).await {
            total += bonus;
        } else if total > 100 {
            total = 0;
        } else {
            total += 2;
        }
    }
    let mut countdown = 3;
    while countdown > 0 {
        countdown -= ready(1).await;
    }
    let mut sum = 0;
    for i in 0..3u32 {
        sum += ready(i).await;
    }
    let parsed: u32 = ready("7").await.parse().map_err(|e: std::num::ParseIntError| e.to_string())?;
    let found = 'search: {
        for x in [1u32, 2, 3] {
            if ready(x == 2).await {
                break 'search Some(x);
            }
        }
        None
    };
    let total = total + sum + parsed + found.unwrap_or(0);
    let total = {
        let shadow = total;
        shadow + ready(0).await
    };
    Ok(total)
}

fn main() {
    let rt = iomgr::Runtime::new().unwrap();
    let msgs = vec![Msg::Add(3), Msg::Skip, Msg::Add(4), Msg::Stop, Msg::Add(100)];
    assert_eq!(rt.block_on(machine(msgs, 50)), Ok(3 + 1 + 4 + 1 + 3 + 7 + 2));
    assert_eq!(rt.block_on(machine(vec![Msg::Add(60)], 50)), Err("60 is over 50".to_string()));
    const _: () = assert!(std::mem::size_of::<MachineTask>() < 1024);
}
