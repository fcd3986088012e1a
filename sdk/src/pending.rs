//! [`Pending`]: an operation the host runs while the handler goes on, and
//! [`join_all`], [`try_join_all`] and [`join!`](crate::join!) to wait for
//! several.
//!
//! Every slow host call has a `_begin` form ([`http::begin`](crate::http::begin),
//! [`Store::get_begin`](crate::kv::Store::get_begin),
//! [`fs::read_begin`](crate::fs::read_begin), …) that starts the operation
//! and returns at once with a [`Pending`]. The host runs every begun
//! operation concurrently, so a handler that begins three 300 ms fetches and
//! then waits for each waits about 300 ms, not 900: waiting in order costs
//! the slowest operation, not the sum.

use std::fmt;
use std::mem::ManuallyDrop;

use crate::host_error::Operation;
use crate::{Error, Result, sys};

/// A handle the host gave out: an operation from a `_begin`, or an outbound
/// response. Closed when dropped, which cancels an operation still running,
/// so nothing a handler abandons keeps working (or keeps one of the
/// request's 64 handle slots).
pub(crate) struct Handle(i32);

impl Handle {
    /// Owns the positive handle `raw`.
    pub(crate) fn new(raw: i32) -> Self {
        Self(raw)
    }

    /// The number, for a call that uses the handle and leaves it open.
    pub(crate) fn raw(&self) -> i32 {
        self.0
    }

    /// Gives the number up without closing it, for an `_end` call, which
    /// releases it on the host.
    pub(crate) fn into_raw(self) -> i32 {
        ManuallyDrop::new(self).0
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // `INVALID` only if the host released it already; nothing to do then.
        sys::close(self.0);
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An operation the host is running: [`wait`](Pending::wait) for its
/// result.
///
/// Made by the `_begin` functions, which return at once; the host works on
/// every pending operation at the same time while the handler goes on
/// (computing, or beginning more). Waiting suspends the module, never the
/// server.
///
/// Dropping a `Pending` without waiting cancels the operation (the host
/// aborts a fetch in flight). A `_begin` the host refused at once (a host
/// not granted, too many open handles) still returns a `Pending`, whose
/// `wait` returns that error: a batch of begins can be built without a `?`
/// on each.
///
/// ```
/// use wasmlet_sdk::{Request, Result, handler, http, join};
///
/// #[handler(get)]
/// fn compare(_req: Request) -> Result<String> {
///     // Both requests are in flight before either is waited for.
///     let (a, b) = join!(
///         http::get_begin("https://a.example/price"),
///         http::get_begin("https://b.example/price"),
///     );
///     Ok(format!("{} / {}\n", a?.text()?, b?.text()?))
/// }
/// # use wasmlet_sdk::testing::{Reply, TestRequest};
/// # let response = TestRequest::get("/")
/// #     .upstream(|req| Reply::text(req.uri().host().unwrap().to_owned()))
/// #     .call(handle_get);
/// # assert_eq!(response.text(), "a.example / b.example\n");
/// ```
#[must_use = "an operation is cancelled when its `Pending` is dropped: call `wait`"]
pub struct Pending<T> {
    state: State<T>,
}

enum State<T> {
    /// The host accepted the operation; `end` waits for it.
    Running {
        op: Handle,
        end: Box<dyn FnOnce(i32) -> Result<T>>,
    },
    /// The host refused the `_begin`, or the SDK could not form the call.
    Failed(Error),
}

impl<T> Pending<T> {
    /// The operation a `_begin` returned `code` for: a positive handle, whose
    /// result `end` collects, or a negative code, which `wait` reports.
    pub(crate) fn begin(
        code: i32,
        operation: Operation,
        end: impl FnOnce(i32, Operation) -> Result<T> + 'static,
    ) -> Self {
        if code <= 0 {
            return Self::failed(operation.error(code));
        }
        Self {
            state: State::Running {
                op: Handle::new(code),
                end: Box::new(move |op| end(op, operation)),
            },
        }
    }

    /// An operation that never started: `wait` returns `error`.
    pub(crate) fn failed(error: impl Into<Error>) -> Self {
        Self {
            state: State::Failed(error.into()),
        }
    }

    /// Waits for the operation and returns its result. Other pending
    /// operations keep running meanwhile.
    pub fn wait(self) -> Result<T> {
        match self.state {
            State::Running { op, end } => end(op.into_raw()),
            State::Failed(error) => Err(error),
        }
    }
}

impl<T> fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Running { op, .. } => f.debug_tuple("Pending").field(op).finish(),
            State::Failed(error) => f.debug_tuple("Pending::Failed").field(error).finish(),
        }
    }
}

/// Waits for every operation, in order, and returns each result.
///
/// Every operation is begun before the first wait (an iterator of begins is
/// collected first), and the host runs them concurrently, so this takes
/// about as long as the slowest one.
///
/// ```
/// use wasmlet_sdk::{Request, Result, handler, http, join_all};
///
/// #[handler(get)]
/// fn statuses(req: Request) -> Result<String> {
///     let urls = req.query_all("url");
///     let results = join_all(urls.iter().map(|url| http::get_begin(url.as_ref())));
///     let mut out = String::new();
///     for (url, result) in urls.iter().zip(results) {
///         match result {
///             Ok(response) => out += &format!("{url} {}\n", response.status().as_u16()),
///             Err(error) => out += &format!("{url} failed: {error}\n"),
///         }
///     }
///     Ok(out)
/// }
/// # use wasmlet_sdk::testing::{Reply, TestRequest};
/// # let response = TestRequest::get("/?url=http://a.example/&url=http://b.example/")
/// #     .upstream(|req| match req.uri().host() {
/// #         Some("a.example") => Reply::text("hi"),
/// #         _ => Reply::failed("connection refused"),
/// #     })
/// #     .call(handle_get);
/// # assert_eq!(
/// #     response.text(),
/// #     "http://a.example/ 200\nhttp://b.example/ failed: GET http://b.example/: failed: connection refused\n"
/// # );
/// ```
pub fn join_all<T>(pending: impl IntoIterator<Item = Pending<T>>) -> Vec<Result<T>> {
    // Collected first: a lazy iterator would begin each operation only after
    // the previous one was waited for, one at a time.
    let pending: Vec<Pending<T>> = pending.into_iter().collect();
    pending.into_iter().map(Pending::wait).collect()
}

/// Waits for every operation, in order, until one fails: all the results,
/// or the first error. On an error the operations not yet waited for are
/// dropped, which cancels them.
///
/// Like [`join_all`], it begins everything before the first wait.
pub fn try_join_all<T>(pending: impl IntoIterator<Item = Pending<T>>) -> Result<Vec<T>> {
    let pending: Vec<Pending<T>> = pending.into_iter().collect();
    pending.into_iter().map(Pending::wait).collect()
}

/// A tuple of [`Pending`]s, waited for together: what [`join!`](crate::join!)
/// calls. Implemented for tuples of 1 to 8 operations, of any result types.
pub trait Join {
    /// The tuple of results, in the same order.
    type Output;

    /// Waits for each operation, in order; they all run concurrently.
    fn join(self) -> Self::Output;
}

macro_rules! impl_join {
    ($($t:ident $v:ident),+) => {
        impl<$($t),+> Join for ($(Pending<$t>,)+) {
            type Output = ($(Result<$t>,)+);

            fn join(self) -> Self::Output {
                let ($($v,)+) = self;
                ($($v.wait(),)+)
            }
        }
    };
}

impl_join!(A a);
impl_join!(A a, B b);
impl_join!(A a, B b, C c);
impl_join!(A a, B b, C c, D d);
impl_join!(A a, B b, C c, D d, E e);
impl_join!(A a, B b, C c, D d, E e, F f);
impl_join!(A a, B b, C c, D d, E e, F f, G g);
impl_join!(A a, B b, C c, D d, E e, F f, G g, H h);

/// Begins several operations and waits for them all: `join!(a, b, c)`
/// evaluates every argument (each a [`Pending`], of any result types) before
/// waiting for any, and returns a tuple of their `Result`s in the same order.
///
/// The host runs them concurrently, so the whole takes about as long as the
/// slowest.
///
/// ```
/// use wasmlet_sdk::kv::Store;
/// use wasmlet_sdk::{Result, http, join};
///
/// fn page() -> Result<String> {
///     let store = Store::default();
///     let (visits, weather) = join!(
///         store.get_begin("visits"),
///         http::get_begin("https://weather.example/today"),
///     );
///     let visits = visits?.unwrap_or_default().len();
///     Ok(format!("{visits} {}\n", weather?.text()?))
/// }
/// # use wasmlet_sdk::testing::{Reply, TestRequest};
/// # let page = TestRequest::get("/")
/// #     .kv("", "visits", "xyz")
/// #     .upstream(|_| Reply::text("sunny"))
/// #     .run(page);
/// # assert_eq!(page.unwrap(), "3 sunny\n");
/// ```
#[macro_export]
macro_rules! join {
    ($($pending:expr),+ $(,)?) => {
        $crate::Join::join(($($pending,)+))
    };
}

#[cfg(test)]
mod tests {
    use super::{Handle, Pending, join_all, try_join_all};
    use crate::host_error::{Capability, Operation};
    use crate::sys::fake;
    use crate::testing::TestRequest;
    use crate::{ErrorKind, code};

    fn operation() -> Operation {
        Operation::new(Capability::Kv, "test op".to_owned())
    }

    /// A `Pending` over a real fake-host operation whose result is `value`.
    fn begun(key: &str) -> Pending<Option<Vec<u8>>> {
        crate::kv::Store::default().get_begin(key)
    }

    #[test]
    fn a_refused_begin_reports_its_error_at_wait() {
        TestRequest::get("/").check(|| {
            let pending: Pending<()> = Pending::begin(code::BUSY, operation(), |_, _| Ok(()));
            let error = pending.wait().unwrap_err();
            assert_eq!(error.kind(), Some(ErrorKind::Busy));
            assert!(
                error
                    .to_string()
                    .starts_with("test op: too many open handles")
            );
        });
    }

    #[test]
    fn dropping_a_pending_operation_cancels_it_and_frees_its_handle() {
        let response = TestRequest::get("/").store("").check(|| {
            let pending = begun("a");
            assert_eq!(fake::open_handles(), 1);
            drop(pending);
            assert_eq!(fake::open_handles(), 0);
        });
        assert_eq!(response.cancelled(), 1);
    }

    #[test]
    fn waiting_releases_the_handle_without_a_close() {
        let response = TestRequest::get("/").kv("", "a", "1").check(|| {
            let value = begun("a").wait().unwrap();
            assert_eq!(value.as_deref(), Some(&b"1"[..]));
            assert_eq!(fake::open_handles(), 0);
        });
        assert_eq!(response.cancelled(), 0);
        assert_eq!(response.open_handles(), 0);
    }

    #[test]
    fn join_all_returns_each_result_in_order() {
        TestRequest::get("/")
            .kv("", "a", "1")
            .kv("", "c", "3")
            .check(|| {
                let results = join_all(["a", "b", "c"].map(begun));
                let values: Vec<_> = results.into_iter().map(Result::unwrap).collect();
                assert_eq!(values, [Some(b"1".to_vec()), None, Some(b"3".to_vec())]);
            });
    }

    #[test]
    fn join_all_begins_everything_before_the_first_wait() {
        TestRequest::get("/").store("").check(|| {
            let mut most_open = 0;
            let iter = ["a", "b", "c"].into_iter().map(|key| {
                let pending = begun(key);
                most_open = most_open.max(fake::open_handles());
                pending
            });
            join_all(iter);
            assert_eq!(most_open, 3);
        });
    }

    #[test]
    fn try_join_all_stops_at_the_first_error_and_cancels_the_rest() {
        let response = TestRequest::get("/").store("").check(|| {
            let pending = vec![
                begun("a"),
                Pending::failed(crate::Error::msg("refused")),
                begun("c"),
            ];
            let error = try_join_all(pending).unwrap_err();
            assert_eq!(error.to_string(), "refused");
        });
        assert_eq!(response.cancelled(), 1);
        assert_eq!(response.open_handles(), 0);
    }

    #[test]
    fn join_macro_waits_for_a_tuple_of_different_types() {
        TestRequest::get("/").kv("", "a", "1").check(|| {
            let store = crate::kv::Store::default();
            let (value, deleted, keys) = crate::join!(
                store.get_begin("a"),
                store.delete_begin("missing"),
                store.list_begin(""),
            );
            assert_eq!(value.unwrap(), Some(b"1".to_vec()));
            assert!(!deleted.unwrap());
            assert_eq!(keys.unwrap(), ["a"]);
        });
    }

    #[test]
    fn a_dropped_handle_is_closed_and_a_released_one_is_not() {
        let response = TestRequest::get("/").store("").check(|| {
            let op = crate::sys::kv_get_begin(b"", b"a");
            let handle = Handle::new(op);
            assert_eq!(format!("{handle:?}"), format!("#{op}"));
            assert_eq!(handle.into_raw(), op);
            assert_eq!(fake::open_handles(), 1);
            drop(Handle::new(op));
            assert_eq!(fake::open_handles(), 0);
        });
        assert_eq!(response.cancelled(), 1);
    }
}
