//! What the contract tests share: the `suite!` macro that runs each test
//! on every backend, the fixtures, and checks of error kinds.

// Each test target uses its own part of this module.
#![allow(dead_code, unused_imports)]

pub use coform_storage::testing::fixtures::*;
use coform_storage::StoreError;

/// Instantiates each named test once per backend: `embedded::*` on a
/// fresh SQLite data dir, `memory::*` on a `MemoryStore`, `mongo::*` on a
/// fresh database of the SecantusDB server shared by the test process
/// (dropped afterwards). A test is an async fn of the calling module that
/// takes `$wrap(store)`: by default `Arc::new(store)`, which coerces to an
/// `Arc<dyn Trait>` of any store trait.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        suite!(wrap = std::sync::Arc::new; $($name),*);
    };
    (wrap = $wrap:expr; $($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = coform_storage::embedded::EmbeddedStore::open(
                        dir.path(),
                        coform_storage::Durability::Normal,
                    )
                    .unwrap();
                    super::$name($wrap(store)).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($wrap(coform_storage::memory::MemoryStore::new())).await;
                }
            )*
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let url = coform_storage::testing::MongoServer::shared().fresh_database_url();
                    let store = coform_storage::mongo::MongoStore::connect(&url).await.unwrap();
                    super::$name($wrap(store)).await;
                    coform_storage::testing::drop_database(&url).await.unwrap();
                }
            )*
        }
    };
}

pub fn is_conflict<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

pub fn is_not_found<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound(_)))
}

pub fn is_last_owner<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Constraint("last_owner")))
}
