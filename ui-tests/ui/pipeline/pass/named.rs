//! The item form: named pipelines, with constant sizes, stored in structs, awaited, run and
//! spawned.

use iomgr::net::TcpStream;
use iomgr::pipeline::{Lines, iter};

fn shout(line: String) -> String {
    line.to_uppercase()
}

iomgr::pipeline! {
    /// Echoes lines, upper-cased.
    pub LineEcho(stream: TcpStream) =
        stream.reader() => Lines::new(8192) => shout => Lines::encoder() => stream.writer();

    /// Sums the numbers below `n` into a shared cell.
    pub(crate) SumBelow(n: u64, total: std::rc::Rc<std::cell::Cell<u64>>) =
        iter(0..n) => iomgr::pipeline::for_each(move |x: u64| total.set(total.get() + x));

    Nothing() = iter(Vec::<u8>::new()) => iomgr::pipeline::for_each(|_: u8| ())
}

#[allow(dead_code)]
struct Connection {
    echo: LineEcho,
}

const _: () = assert!(std::mem::size_of::<LineEcho>() > 0);

fn main() {
    iomgr::Runtime::new().unwrap().block_on(async {
        let total = std::rc::Rc::new(std::cell::Cell::new(0));
        SumBelow::new(10, total.clone()).await.unwrap();
        assert_eq!(total.get(), 45);
        SumBelow::new(3, total.clone()).run().await.unwrap();
        SumBelow::new(3, total.clone()).spawn().await.unwrap().unwrap();
        assert_eq!(total.get(), 51);
        Nothing::new().await.unwrap();
        println!("{:?}", Nothing::new());
    });
}
