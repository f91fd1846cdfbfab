//! What the moto tests of the shared crate have in common.

/// The users' role every test creates in moto (the samples' and the demo's).
pub use testkit::DEMO_ROLE as ROLE;

/// moto with the users' role and counted clients for the code under test; each test module
/// adds the use cases it builds on it.
pub struct World(pub testkit::CountedMoto);

impl std::ops::Deref for World {
    type Target = testkit::CountedMoto;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

pub async fn world() -> World {
    World(testkit::CountedMoto::start(ROLE).await)
}
