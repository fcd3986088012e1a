//! [`sleep`]: a pause that suspends the module, not the server; the
//! clocks [`now`] and [`elapsed`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// The wall clock, to the millisecond: for dates in a response (`Date`,
/// `Expires`, a timestamp in a record). It follows the host's clock, which
/// may be set back; measure durations with [`elapsed`].
///
/// On the fake host of the `testing` module it starts at a fixed time
/// (`TestRequest::at` sets another) and advances with virtual time.
pub fn now() -> SystemTime {
    let ms = sys::clock_now_ms();
    let offset = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    }
}

/// How long this request has been running, to the microsecond, from a
/// monotonic clock: it never goes back, whatever happens to the wall clock.
/// It counts from when the host began running the request, so it includes
/// time spent waiting on host calls.
///
/// On the fake host it is the virtual time spent so far (in [`sleep`] and
/// waiting for fake upstreams).
pub fn elapsed() -> Duration {
    Duration::from_micros(sys::clock_elapsed_us().max(0).unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::{elapsed, now, sleep};
    use crate::testing::TestRequest;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

    #[test]
    fn the_clocks_advance_with_virtual_time() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let (before, after, measured) = TestRequest::get("/").at(start).run(|| {
            let (before, t0) = (now(), elapsed());
            sleep(Duration::from_millis(1500));
            (before, now(), elapsed() - t0)
        });
        assert_eq!(before, start);
        assert_eq!(after, start + Duration::from_millis(1500));
        assert_eq!(measured, Duration::from_millis(1500));
    }

    #[test]
    fn the_fake_wall_clock_starts_at_a_fixed_time_and_handles_times_before_1970() {
        let fixed = TestRequest::get("/").run(now);
        assert_eq!(fixed, UNIX_EPOCH + Duration::from_secs(1_767_225_600));
        let early: SystemTime = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(TestRequest::get("/").at(early).run(now), early);
    }
}
