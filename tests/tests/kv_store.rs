//! The key-value stores through their public API (`wasmlet::capability::kv`).
//!
//! One table of behaviours runs against both backends: `sqlite::NAME` on a
//! file in a temporary directory, `redis::NAME` on a real `redis-server` of
//! its own (see `wasmlet_tests::redis`; without the binary the Redis half
//! skips, unless `WASMLET_REQUIRE_REDIS=1`). The backend-specific tests
//! follow the table.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use wasmlet::capability::kv::{Backend, KvError, MAX_LIST, Store, StoreSettings};
use wasmlet_tests::redis::RedisServer;

/// Every fixture's `max_value_size`: small, so the limit test stays cheap.
const MAX_VALUE: usize = 64 * 1024;

/// The time to live of the expiry tests: long enough that a key is seen
/// before it expires, short enough to keep the tests quick.
const TTL: Duration = Duration::from_millis(300);

/// How long a test polls for something that should happen in milliseconds.
const DEADLINE: Duration = Duration::from_secs(10);

/// A store under test and what keeps its data alive.
struct Fixture {
    /// How `store` was opened, to open it again.
    settings: StoreSettings,
    store: Store,
    _dir: Option<tempfile::TempDir>,
    redis: Option<RedisServer>,
}

impl Fixture {
    /// A SQLite store in a fresh temporary directory.
    async fn sqlite() -> Option<Fixture> {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let backend = Backend::Sqlite {
            path: dir.path().join("stores/test.sqlite"),
        };
        let mut fixture = Fixture::open(backend).await;
        fixture._dir = Some(dir);
        Some(fixture)
    }

    /// A Redis store on a server of its own; `None` when Redis is not
    /// installed (the harness said why).
    async fn redis() -> Option<Fixture> {
        let server = RedisServer::start()?;
        let backend = Backend::Redis {
            url: server.url(),
            prefix: "wasmlet:test:".into(),
        };
        let mut fixture = Fixture::open(backend).await;
        fixture.redis = Some(server);
        Some(fixture)
    }

    async fn open(backend: Backend) -> Fixture {
        let settings = StoreSettings {
            max_value_size: MAX_VALUE,
            ..StoreSettings::new("test", backend)
        };
        let store = Store::open(&settings).await.expect("the store opens");
        Fixture {
            settings,
            store,
            _dir: None,
            redis: None,
        }
    }

    /// A second, separately opened handle on the same data.
    async fn open_again(&self) -> Store {
        Store::open(&self.settings)
            .await
            .expect("the store opens a second time")
    }
}

/// Defines each behaviour `NAME(Fixture)` as two tests, `sqlite::NAME` and
/// `redis::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(fixture) = super::Fixture::sqlite().await {
                        super::$name(fixture).await;
                    }
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(fixture) = super::Fixture::redis().await {
                        super::$name(fixture).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    getting_a_missing_key_gives_none,
    a_value_set_is_the_value_got_byte_for_byte,
    setting_a_key_again_replaces_its_value,
    deleting_says_whether_the_key_existed,
    listing_gives_the_keys_with_the_prefix_in_byte_order_up_to_the_limit,
    list_prefixes_are_literal_even_with_glob_characters,
    listing_never_returns_more_than_max_list_keys,
    a_key_past_its_ttl_is_gone_from_get_list_and_delete,
    setting_a_key_again_without_a_ttl_makes_it_permanent,
    a_value_over_max_value_size_is_too_large_and_not_stored,
    invalid_keys_and_prefixes_are_refused_by_every_operation,
    two_separately_opened_stores_on_the_same_data_see_each_others_writes,
    clones_of_a_store_serve_many_concurrent_operations,
    increments_count_from_zero_keep_the_ttl_and_lose_no_concurrent_update,
    incrementing_a_value_that_is_not_a_counter_is_refused_and_leaves_it,
);

async fn increments_count_from_zero_keep_the_ttl_and_lose_no_concurrent_update(f: Fixture) {
    assert_eq!(f.store.increment("n", 5).await, Ok(5));
    assert_eq!(f.store.increment("n", 2).await, Ok(7));
    assert_eq!(f.store.get("n").await, Ok(Some(b"7".to_vec())));
    let adds = (0..50).map(|_| {
        let store = f.store.clone();
        tokio::spawn(async move { store.increment("n", 1).await })
    });
    for add in adds {
        add.await.unwrap().unwrap();
    }
    assert_eq!(f.store.get("n").await, Ok(Some(b"57".to_vec())));
    // A counter with a time to live keeps it, and is gone after it.
    f.store
        .set("brief", b"1", Some(Duration::from_millis(300)))
        .await
        .unwrap();
    assert_eq!(f.store.increment("brief", 1).await, Ok(2));
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.store.get("brief").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the counter never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(f.store.increment("brief", 1).await, Ok(1));
}

async fn incrementing_a_value_that_is_not_a_counter_is_refused_and_leaves_it(f: Fixture) {
    f.store.set("word", b"hello", None).await.unwrap();
    assert_eq!(
        f.store.increment("word", 1).await,
        Err(KvError::Invalid(
            "the value of `word` is not a counter (decimal digits of a number below 2^64)".into()
        ))
    );
    f.store
        .set("full", u64::MAX.to_string().as_bytes(), None)
        .await
        .unwrap();
    let overflow = f.store.increment("full", 1).await;
    assert!(
        matches!(&overflow, Err(KvError::Invalid(message)) if message.contains("2^64 - 1")),
        "{overflow:?}"
    );
    assert_eq!(f.store.get("word").await, Ok(Some(b"hello".to_vec())));
    assert!(f.store.increment("", 1).await.is_err());
}

async fn getting_a_missing_key_gives_none(f: Fixture) {
    assert_eq!(f.store.get("missing").await, Ok(None));
}

async fn a_value_set_is_the_value_got_byte_for_byte(f: Fixture) {
    let every_byte: Vec<u8> = (0..=255).collect();
    let longest_key = "k".repeat(1024);
    let cases: [(&str, &[u8]); 5] = [
        ("greeting", b"hello"),
        ("binary", &every_byte),
        ("empty", b""),
        ("日本語/🦀", "ünïcödé".as_bytes()),
        (&longest_key, b"the longest key"),
    ];
    for (key, value) in cases {
        f.store.set(key, value, None).await.unwrap();
    }
    for (key, value) in cases {
        assert_eq!(
            f.store.get(key).await,
            Ok(Some(value.to_vec())),
            "{key:.20}"
        );
    }
    let full = vec![7; MAX_VALUE];
    f.store.set("full", &full, None).await.unwrap();
    assert_eq!(f.store.get("full").await, Ok(Some(full)));
}

async fn setting_a_key_again_replaces_its_value(f: Fixture) {
    f.store.set("k", b"first", None).await.unwrap();
    f.store.set("k", b"second", None).await.unwrap();
    assert_eq!(f.store.get("k").await, Ok(Some(b"second".to_vec())));
    assert_eq!(f.store.list("", 10).await, Ok(vec!["k".to_owned()]));
}

async fn deleting_says_whether_the_key_existed(f: Fixture) {
    f.store.set("k", b"v", None).await.unwrap();
    f.store.set("other", b"v", None).await.unwrap();
    assert_eq!(f.store.delete("k").await, Ok(true));
    assert_eq!(f.store.get("k").await, Ok(None));
    assert_eq!(f.store.delete("k").await, Ok(false));
    assert_eq!(f.store.delete("never-set").await, Ok(false));
    assert_eq!(f.store.get("other").await, Ok(Some(b"v".to_vec())));
}

async fn listing_gives_the_keys_with_the_prefix_in_byte_order_up_to_the_limit(f: Fixture) {
    for key in [
        "user/b", "user/é", "user/a", "user/B", "user/ab", "user", "users/x", "usex", "a", "zzz",
    ] {
        f.store.set(key, b"", None).await.unwrap();
    }
    // Byte order: "B" (0x42) < "a" (0x61) < "ab" < "b" < "é" (0xC3 0xA9).
    let all_users = ["user/B", "user/a", "user/ab", "user/b", "user/é"];
    assert_eq!(f.store.list("user/", 100).await.unwrap(), all_users);
    assert_eq!(f.store.list("user/", 3).await.unwrap(), all_users[..3]);
    assert_eq!(
        f.store.list("user/a", 100).await.unwrap(),
        ["user/a", "user/ab"]
    );
    assert_eq!(
        f.store.list("user", 100).await.unwrap(),
        [
            "user", "user/B", "user/a", "user/ab", "user/b", "user/é", "users/x"
        ]
    );
    assert_eq!(f.store.list("nobody", 100).await, Ok(vec![]));
    assert_eq!(f.store.list("user/", 0).await, Ok(vec![]));
    let everything = f.store.list("", 100).await.unwrap();
    assert_eq!(everything.len(), 10);
    assert!(everything.is_sorted(), "{everything:?}");
    assert_eq!(everything.first().map(String::as_str), Some("a"));
}

async fn list_prefixes_are_literal_even_with_glob_characters(f: Fixture) {
    let keys = [
        "a*b", "a*c", "axb", "q?", "qx", "[x]1", "x1", "b\\s", "bs", "c]", "c",
    ];
    for key in keys {
        f.store.set(key, b"", None).await.unwrap();
    }
    assert_eq!(f.store.list("a*", 100).await.unwrap(), ["a*b", "a*c"]);
    assert_eq!(f.store.list("q?", 100).await.unwrap(), ["q?"]);
    assert_eq!(f.store.list("[x]", 100).await.unwrap(), ["[x]1"]);
    assert_eq!(f.store.list("b\\", 100).await.unwrap(), ["b\\s"]);
    assert_eq!(f.store.list("c]", 100).await.unwrap(), ["c]"]);
    assert_eq!(f.store.list("*", 100).await, Ok(vec![]));
}

async fn listing_never_returns_more_than_max_list_keys(f: Fixture) {
    let keys: Vec<String> = (0..MAX_LIST + 5).map(|i| format!("k{i:05}")).collect();
    for batch in keys.chunks(100) {
        let sets = batch.iter().map(|key| f.store.set(key, b"", None));
        for result in join_all(sets).await {
            result.unwrap();
        }
    }
    let listed = f.store.list("k", usize::MAX).await.unwrap();
    assert_eq!(listed, keys[..MAX_LIST]);
}

async fn a_key_past_its_ttl_is_gone_from_get_list_and_delete(f: Fixture) {
    let set_at = Instant::now();
    f.store.set("session/old", b"v", Some(TTL)).await.unwrap();
    f.store.set("session/kept", b"v", None).await.unwrap();
    let before = f.store.get("session/old").await.unwrap();
    assert!(
        before.is_some() || set_at.elapsed() >= TTL,
        "the key vanished before its time to live"
    );

    let deadline = Instant::now() + DEADLINE;
    while f.store.get("session/old").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the key never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(set_at.elapsed() >= TTL, "the key expired early");
    assert_eq!(
        f.store.list("session/", 100).await.unwrap(),
        ["session/kept"]
    );
    assert_eq!(f.store.delete("session/old").await, Ok(false));
    assert_eq!(f.store.get("session/kept").await, Ok(Some(b"v".to_vec())));
}

async fn setting_a_key_again_without_a_ttl_makes_it_permanent(f: Fixture) {
    f.store
        .set("made-permanent", b"v", Some(TTL))
        .await
        .unwrap();
    f.store.set("expires", b"v", Some(TTL)).await.unwrap();
    f.store.set("made-permanent", b"w", None).await.unwrap();

    let deadline = Instant::now() + DEADLINE;
    while f.store.get("expires").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the key never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(f.store.get("made-permanent").await, Ok(Some(b"w".to_vec())));
}

async fn a_value_over_max_value_size_is_too_large_and_not_stored(f: Fixture) {
    let over = vec![0; MAX_VALUE + 1];
    assert_eq!(
        f.store.set("big", &over, None).await,
        Err(KvError::TooLarge {
            size: MAX_VALUE + 1,
            limit: MAX_VALUE
        })
    );
    assert_eq!(f.store.get("big").await, Ok(None));
    let message = f
        .store
        .set("big", &over, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("65537") && message.contains("65536"),
        "{message}"
    );
}

async fn invalid_keys_and_prefixes_are_refused_by_every_operation(f: Fixture) {
    let too_long = "k".repeat(1025);
    for key in [
        "",
        "new\nline",
        "nul\0",
        "esc\u{1b}",
        "del\u{7f}",
        &too_long,
    ] {
        let invalid = |result: Result<(), KvError>| {
            assert!(
                matches!(result, Err(KvError::Invalid(_))),
                "{key:?}: {result:?}"
            )
        };
        invalid(f.store.get(key).await.map(drop));
        invalid(f.store.set(key, b"v", None).await);
        invalid(f.store.delete(key).await.map(drop));
        if !key.is_empty() {
            invalid(f.store.list(key, 10).await.map(drop));
        }
    }
    assert!(matches!(
        f.store.set("k", b"v", Some(Duration::ZERO)).await,
        Err(KvError::Invalid(_))
    ));
    assert_eq!(f.store.list("", 10).await, Ok(vec![]), "nothing was stored");
}

async fn two_separately_opened_stores_on_the_same_data_see_each_others_writes(f: Fixture) {
    let other = f.open_again().await;
    f.store
        .set("shared", b"from the first", None)
        .await
        .unwrap();
    assert_eq!(
        other.get("shared").await,
        Ok(Some(b"from the first".to_vec()))
    );
    other.set("shared", b"from the second", None).await.unwrap();
    assert_eq!(
        f.store.get("shared").await,
        Ok(Some(b"from the second".to_vec()))
    );
    other
        .set("second/only", b"", Some(TTL * 100))
        .await
        .unwrap();
    assert_eq!(
        f.store.list("", 10).await.unwrap(),
        ["second/only", "shared"]
    );
    assert_eq!(f.store.delete("shared").await, Ok(true));
    assert_eq!(other.get("shared").await, Ok(None));
}

async fn clones_of_a_store_serve_many_concurrent_operations(f: Fixture) {
    let tasks = (0..200).map(|i| {
        let store = f.store.clone();
        tokio::spawn(async move {
            let key = format!("task/{i:03}");
            store.set(&key, key.as_bytes(), None).await.unwrap();
            assert_eq!(store.get(&key).await, Ok(Some(key.clone().into_bytes())));
        })
    });
    for task in join_all(tasks).await {
        task.expect("a task finishes");
    }
    assert_eq!(f.store.list("task/", MAX_LIST).await.unwrap().len(), 200);
}

#[tokio::test]
async fn a_sqlite_store_keeps_its_data_when_reopened() {
    let f = Fixture::sqlite().await.unwrap();
    f.store.set("kept", b"across opens", None).await.unwrap();
    let Fixture {
        settings,
        store,
        _dir,
        ..
    } = f;
    drop(store);
    let reopened = Store::open(&settings).await.unwrap();
    assert_eq!(
        reopened.get("kept").await,
        Ok(Some(b"across opens".to_vec()))
    );
}

#[tokio::test]
async fn a_sqlite_store_whose_directory_cannot_be_created_is_unavailable_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let path = blocker.join("kv.sqlite");
    let settings = StoreSettings::new("blocked", Backend::Sqlite { path });
    let error = Store::open(&settings).await.unwrap_err();
    let KvError::Unavailable(message) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(message.contains("\"blocked\""), "{message}");
    assert!(
        message.contains(&blocker.display().to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn a_redis_url_where_nothing_listens_opens_and_its_operations_fail_naming_it() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/");
    let settings = StoreSettings::new(
        "sessions",
        Backend::Redis {
            url: url.clone(),
            prefix: "wasmlet:sessions:".into(),
        },
    );
    let started = Instant::now();
    // The server being down is no reason to refuse the store (and with it
    // the whole configuration): it may come up later.
    let store = Store::open(&settings).await.unwrap();
    let error = store.get("k").await.unwrap_err();
    let KvError::Unavailable(message) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("\"sessions\""), "{message}");
    assert!(message.contains("Redis server is running"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "giving up took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn redis_stores_with_different_prefixes_do_not_see_each_others_keys() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let open = |name: &'static str| {
        let url = url.clone();
        async move {
            let settings = StoreSettings::new(
                name,
                Backend::Redis {
                    url,
                    prefix: format!("wasmlet:{name}:"),
                },
            );
            Store::open(&settings).await
        }
    };
    let (one, two) = (open("one").await.unwrap(), open("two").await.unwrap());
    one.set("k", b"one's", None).await.unwrap();
    two.set("k", b"two's", None).await.unwrap();
    two.set("only-two", b"", None).await.unwrap();
    assert_eq!(one.get("k").await, Ok(Some(b"one's".to_vec())));
    assert_eq!(one.list("", 10).await.unwrap(), ["k"]);
    assert_eq!(one.delete("only-two").await, Ok(false));
    assert_eq!(two.list("", 10).await.unwrap(), ["k", "only-two"]);
}

#[tokio::test]
async fn a_redis_store_reconnects_after_the_server_restarts() {
    let Some(mut f) = Fixture::redis().await else {
        return;
    };
    f.store.set("before", b"1", None).await.unwrap();
    f.redis.as_mut().unwrap().restart();

    // The operation that finds the connection dropped fails; the store then
    // reconnects by itself, and a later one succeeds.
    let deadline = Instant::now() + DEADLINE;
    loop {
        match f.store.set("after", b"2", None).await {
            Ok(()) => break,
            Err(KvError::Unavailable(message)) => {
                assert!(
                    Instant::now() < deadline,
                    "never reconnected; last error: {message}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(f.store.get("after").await, Ok(Some(b"2".to_vec())));
    assert_eq!(
        f.store.get("before").await,
        Ok(None),
        "the restarted server starts empty"
    );
}
