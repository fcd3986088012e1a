//! `wasi:keyvalue@0.2.0-draft` (`store`, `atomics`, `batch`) for components,
//! WASI 0.2 and 0.3 alike, on the stores the handler's configuration grants:
//! the same [`Store`]s core handlers reach through `kv_get` and friends, so
//! a core handler and a component granted one store see each other's keys.
//!
//! `open("")` opens the store named `default`, as an empty name does for
//! `kv_get`; a store the handler is not granted is `error::access-denied`
//! (and a warning in the server's log, as for a core handler), never a trap.
//! Every other failure is `error::other` with the capability layer's
//! message: an invalid key, a value over the store's `max-value-size`, a
//! backend that is down. `list-keys` answers the first [`MAX_LIST`] keys in
//! byte order and no cursor; a call with a cursor gets no keys. The
//! operations run under the request's timeout like everything the guest
//! does.
//!
//! wasmtime's own `wasmtime-wasi-keyvalue` crate is not used: it keeps its
//! keys in memory per store and has synchronous host functions only, where
//! these await SQLite's thread or Redis.

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::WasiState;
use super::component_grants::Grants;
use crate::capability::kv::{KvError, MAX_LIST, Store};
use crate::site::DEFAULT_STORE;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: { "wasi:keyvalue/store.bucket": super::Bucket },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};
use store::{Error, KeyResponse};

/// An open bucket: a granted store.
#[expect(
    unreachable_pub,
    reason = "`bindgen!` re-exports it, which needs `pub`"
)]
pub struct Bucket {
    store: Store,
}

/// What the key-value functions work on: the grants and the resource table.
pub(crate) struct KvView<'a> {
    grants: &'a Grants,
    table: &'a mut ResourceTable,
}

struct HasKv;

impl HasData for HasKv {
    type Data<'a> = KvView<'a>;
}

/// Defines `wasi:keyvalue/store`, `atomics` and `batch` in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<WasiState>) -> wasmtime::Result<()> {
    fn view(state: &mut WasiState) -> KvView<'_> {
        let (grants, table) = state.grants_and_table();
        KvView { grants, table }
    }
    store::add_to_linker::<_, HasKv>(linker, view)?;
    atomics::add_to_linker::<_, HasKv>(linker, view)?;
    batch::add_to_linker::<_, HasKv>(linker, view)
}

/// A failure of the capability layer, as the guest gets it.
fn other(e: KvError) -> Error {
    Error::Other(e.to_string())
}

type Answer<T> = wasmtime::Result<Result<T, Error>>;

impl KvView<'_> {
    /// The store behind `bucket`, cheap to clone.
    fn store(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<Store> {
        Ok(self.table.get(bucket)?.store.clone())
    }
}

impl store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> Answer<Resource<Bucket>> {
        let name = if identifier.is_empty() {
            DEFAULT_STORE
        } else {
            identifier.as_str()
        };
        let Some(store) = self.grants.policy.stores.get(name).cloned() else {
            self.grants.denied(&format!(
                "the store `{name}` is not granted to {}; {}",
                self.grants.who.handler,
                self.grants.policy.grant_hint("[kv] stores")
            ));
            return Ok(Err(Error::AccessDenied));
        };
        Ok(Ok(self.table.push(Bucket { store })?))
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Option<Vec<u8>>> {
        let store = self.store(&bucket)?;
        Ok(store.get(&key).await.map_err(other))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        let store = self.store(&bucket)?;
        Ok(store.set(&key, &value, None).await.map_err(other))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<()> {
        let store = self.store(&bucket)?;
        Ok(store.delete(&key).await.map(drop).map_err(other))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<bool> {
        let store = self.store(&bucket)?;
        Ok(store.get(&key).await.map(|v| v.is_some()).map_err(other))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Answer<KeyResponse> {
        let store = self.store(&bucket)?;
        // The first page is the only one: see the file's doc.
        if cursor.is_some() {
            return Ok(Ok(KeyResponse {
                keys: Vec::new(),
                cursor: None,
            }));
        }
        let keys = store.list("", MAX_LIST).await.map_err(other);
        Ok(keys.map(|keys| KeyResponse { keys, cursor: None }))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Answer<u64> {
        let store = self.store(&bucket)?;
        Ok(store.increment(&key, delta).await.map_err(other))
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<Option<(String, Vec<u8>)>>> {
        let store = self.store(&bucket)?;
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            match store.get(&key).await {
                Ok(value) => found.push(value.map(|value| (key, value))),
                Err(e) => return Ok(Err(other(e))),
            }
        }
        Ok(Ok(found))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        let store = self.store(&bucket)?;
        for (key, value) in key_values {
            if let Err(e) = store.set(&key, &value, None).await {
                return Ok(Err(other(e)));
            }
        }
        Ok(Ok(()))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<()> {
        let store = self.store(&bucket)?;
        for key in keys {
            if let Err(e) = store.delete(&key).await {
                return Ok(Err(other(e)));
            }
        }
        Ok(Ok(()))
    }
}
