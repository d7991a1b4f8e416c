use iomgr::pipeline::iter;

iomgr::pipeline! {
    pub Doubler<T>(items: Vec<T>) = iter(items) => |x: T| x => iomgr::pipeline::for_each(|_x: T| ());
}

fn main() {}
