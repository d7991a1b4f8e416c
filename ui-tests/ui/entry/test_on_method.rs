struct Fixture;

impl Fixture {
    #[iomgr::test]
    async fn check(&self) {}
}

fn main() {}
