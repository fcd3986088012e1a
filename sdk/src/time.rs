//! [`sleep`]: a pause that suspends the module, not the server.

use std::time::Duration;

use crate::sys;

/// Waits for `duration` on a host timer.
///
/// It looks blocking, but the host suspends the module and its worker thread
/// serves other requests meanwhile. Rounds up to whole milliseconds (the
/// timer's resolution), so it never returns early. On the fake host of the
/// `testing` module, time is virtual: it returns at once and advances
/// `TestResponse::elapsed`.
pub fn sleep(duration: Duration) {
    let ms = duration.as_nanos().div_ceil(1_000_000);
    sys::sleep_ms(i64::try_from(ms).unwrap_or(i64::MAX));
}

#[cfg(test)]
mod tests {
    use super::sleep;
    use crate::testing::TestRequest;
    use std::time::Duration;

    #[test]
    fn sleep_rounds_up_to_whole_milliseconds() {
        let cases = [
            (Duration::ZERO, Duration::ZERO),
            (Duration::from_micros(1), Duration::from_millis(1)),
            (Duration::from_micros(1500), Duration::from_millis(2)),
            (Duration::from_secs(2), Duration::from_secs(2)),
        ];
        for (asked, slept) in cases {
            let response = TestRequest::get("/").call(|| sleep(asked));
            assert_eq!(response.elapsed(), slept, "sleep({asked:?})");
        }
    }

    #[test]
    fn an_enormous_sleep_saturates_instead_of_wrapping() {
        let response = TestRequest::get("/").call(|| sleep(Duration::MAX));
        assert_eq!(
            response.elapsed(),
            Duration::from_millis(u64::try_from(i64::MAX).unwrap())
        );
    }
}
