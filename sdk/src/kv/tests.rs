//! Key-value stores through the fake host: every call and its `_begin`
//! form, the retention rule for long values, expiry, and errors.

use std::time::Duration;

use super::{Store, ttl_ms};
use crate::testing::TestRequest;
use crate::{ErrorKind, join, join_all, sleep};
use http::StatusCode;

#[test]
fn set_get_delete_and_list_round_trip() {
    let response = TestRequest::get("/").store("").check(|| {
        let store = Store::default();
        assert_eq!(store.get("a").unwrap(), None);
        store.set("a", "1").unwrap();
        store.set("b/x", b"2").unwrap();
        store.set("b/y", vec![3]).unwrap();
        assert_eq!(store.get("a").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(store.get_string("a").unwrap().as_deref(), Some("1"));
        assert_eq!(store.list("").unwrap(), ["a", "b/x", "b/y"]);
        assert_eq!(store.list("b/").unwrap(), ["b/x", "b/y"]);
        assert!(store.list("zzz").unwrap().is_empty());
        assert!(store.delete("a").unwrap());
        assert!(!store.delete("a").unwrap());
    });
    assert_eq!(response.kv_keys(""), ["b/x", "b/y"]);
    assert_eq!(response.kv("default", "b/y"), Some(&[3][..]));
    assert_eq!(response.open_handles(), 0);
}

#[test]
fn the_begin_forms_do_what_the_single_calls_do() {
    let response = TestRequest::get("/").kv("", "old", "x").check(|| {
        let store = Store::default();
        let (set, ttl_set) = join!(
            store.set_begin("a", "1"),
            store.set_with_ttl_begin("t", "2", Duration::from_secs(60)),
        );
        set.unwrap();
        ttl_set.unwrap();
        let (a, missing, deleted, keys) = join!(
            store.get_begin("a"),
            store.get_begin("missing"),
            store.delete_begin("old"),
            store.list_begin(""),
        );
        assert_eq!(a.unwrap(), Some(b"1".to_vec()));
        assert_eq!(missing.unwrap(), None);
        assert!(deleted.unwrap());
        // The list began before the delete ended, but the fake host runs each
        // operation as it begins.
        assert_eq!(keys.unwrap(), ["a", "t"]);
    });
    assert_eq!(response.kv_ttl("", "t"), Some(Duration::from_secs(60)));
    assert_eq!(response.kv_ttl("", "a"), None);
    assert_eq!(response.open_handles(), 0);
}

#[test]
fn a_value_longer_than_the_first_buffer_is_read_whole() {
    let long: Vec<u8> = (0..10_000).map(|i| (i % 256) as u8).collect();
    let expected = long.clone();
    let response = TestRequest::get("/").kv("", "big", long).check(|| {
        let store = Store::default();
        assert_eq!(store.get("big").unwrap().as_ref(), Some(&expected));
        // After a begin the host keeps the value the first buffer could not
        // take, and the retry collects it: the handle is then released.
        assert_eq!(
            store.get_begin("big").wait().unwrap().as_ref(),
            Some(&expected)
        );
        assert_eq!(crate::sys::fake::open_handles(), 0);
    });
    assert_eq!(response.cancelled(), 0);
}

#[test]
fn the_retention_rule_keeps_the_value_until_a_buffer_fits_it() {
    TestRequest::get("/").kv("", "k", "0123456789").check(|| {
        let op = crate::sys::kv_get_begin(b"", b"k");
        let mut small = [0; 4];
        assert_eq!(crate::sys::kv_get_end(op, &mut small), 10);
        assert_eq!(&small, b"0123");
        // Still held: the same handle answers again.
        let mut whole = [0; 10];
        assert_eq!(crate::sys::kv_get_end(op, &mut whole), 10);
        assert_eq!(&whole, b"0123456789");
        // Copied whole, so released.
        assert_eq!(crate::sys::kv_get_end(op, &mut whole), crate::code::INVALID);
    });
}

#[test]
fn a_long_key_list_is_read_whole() {
    let mut request = TestRequest::get("/");
    for n in 0..600 {
        request = request.kv("", &format!("key/{n:04}"), "");
    }
    request.check(|| {
        let store = Store::default();
        let keys = store.list("key/").unwrap();
        assert_eq!(keys.len(), 600);
        assert_eq!(keys[599], "key/0599");
        assert_eq!(store.list_begin("key/").wait().unwrap(), keys);
    });
}

#[test]
fn a_value_set_with_a_ttl_expires() {
    let response = TestRequest::get("/").store("").check(|| {
        let store = Store::default();
        store
            .set_with_ttl("session", "s", Duration::from_secs(10))
            .unwrap();
        sleep(Duration::from_secs(9));
        assert!(store.get("session").unwrap().is_some());
        sleep(Duration::from_secs(1));
        assert_eq!(store.get("session").unwrap(), None);
        assert!(store.list("").unwrap().is_empty());
    });
    assert_eq!(response.kv("", "session"), None);
}

#[test]
fn ttls_round_up_to_milliseconds_and_zero_still_expires() {
    let cases = [
        (Duration::ZERO, 1),
        (Duration::from_nanos(1), 1),
        (Duration::from_micros(1500), 2),
        (Duration::from_secs(3), 3000),
        (Duration::MAX, i64::MAX),
    ];
    for (ttl, ms) in cases {
        assert_eq!(ttl_ms(ttl), ms, "{ttl:?}");
    }
}

#[test]
fn named_stores_are_separate_and_must_be_granted() {
    let response = TestRequest::get("/")
        .kv("sessions", "a", "1")
        .store("")
        .check(|| {
            assert_eq!(Store::default().get("a").unwrap(), None);
            let sessions = Store::open("sessions");
            assert_eq!(sessions.name(), "sessions");
            assert!(sessions.get("a").unwrap().is_some());
            let error = Store::open("cache").get("a").unwrap_err();
            assert_eq!(error.kind(), Some(ErrorKind::Denied));
            assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let text = error.to_string();
            assert!(
                text.starts_with(
                    r#"kv get "a" in store "cache": denied: store "cache" is not granted"#
                ),
                "{text}"
            );
            // Refused at the begin: reported by the wait.
            let error = Store::open("cache").set_begin("a", "1").wait().unwrap_err();
            assert_eq!(error.kind(), Some(ErrorKind::Denied));
        });
    assert_eq!(response.open_handles(), 0);
}

#[test]
fn a_bad_key_is_invalid_and_names_the_default_store() {
    TestRequest::get("/").store("").check(|| {
        let store = Store::default();
        for key in ["", "line\nbreak", &"k".repeat(1025)] {
            let error = store.set(key, "v").unwrap_err();
            assert_eq!(error.kind(), Some(ErrorKind::Invalid), "{key:?}");
            assert!(
                error
                    .to_string()
                    .contains(r#"in store "default": invalid argument: "#),
                "{error}"
            );
        }
        assert_eq!(
            store.get_begin("").wait().unwrap_err().kind(),
            Some(ErrorKind::Invalid)
        );
    });
}

#[test]
fn a_value_over_the_stores_limit_is_too_large() {
    TestRequest::get("/")
        .store("")
        .kv_max_value_size(4)
        .check(|| {
            let store = Store::default();
            store.set("k", "1234").unwrap();
            let error = store.set("k", "12345").unwrap_err();
            assert_eq!(error.kind(), Some(ErrorKind::TooLarge));
            // The handler's value, not the store, is at fault.
            assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        });
}

#[test]
fn get_string_rejects_a_value_that_is_not_utf8() {
    TestRequest::get("/").kv("", "bin", [0xff, 0xfe]).check(|| {
        let error = Store::default().get_string("bin").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(r#"kv get "bin" in store "default": the value is not UTF-8"#),
            "{error}"
        );
    });
}

#[test]
fn join_all_reads_many_keys_at_once() {
    TestRequest::get("/")
        .kv("", "a", "1")
        .kv("", "b", "2")
        .check(|| {
            let store = Store::default();
            let values: Vec<_> = join_all(["a", "b", "c"].map(|key| store.get_begin(key)))
                .into_iter()
                .map(|value| value.unwrap())
                .collect();
            assert_eq!(values, [Some(b"1".to_vec()), Some(b"2".to_vec()), None]);
        });
}
