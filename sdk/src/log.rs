//! Log lines to the runtime, which records them with the handler's path.
//!
//! The [`error!`](crate::error!), [`warn!`](crate::warn!),
//! [`info!`](crate::info!) and [`debug!`](crate::debug!) macros take
//! `format!` arguments; [`write()`] takes a plain string.

use std::fmt;

use crate::sys;

/// A log line's level, as the `log` import numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i32)]
pub enum Level {
    /// An error an operator should see.
    Error = 1,
    /// Something unexpected that the handler recovered from.
    Warn = 2,
    /// Ordinary progress.
    Info = 3,
    /// Detail for debugging a handler.
    Debug = 4,
}

impl Level {
    /// Every level, most severe first.
    pub const ALL: [Level; 4] = [Level::Error, Level::Warn, Level::Info, Level::Debug];

    /// The level the `log` import calls `code`, if any.
    pub fn from_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|level| *level as i32 == code)
    }
}

/// Sends one log line.
pub fn write(level: Level, message: &str) {
    sys::log(level as i32, message.as_bytes());
}

/// Sends one log line from `format_args!`; what the macros call.
pub fn write_args(level: Level, args: fmt::Arguments<'_>) {
    // A message without arguments needs no formatting or allocation.
    match args.as_str() {
        Some(message) => write(level, message),
        None => write(level, &args.to_string()),
    }
}

/// Logs at [`Level::Error`]: `error!("lost {count} rows")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log::write_args($crate::log::Level::Error, ::core::format_args!($($arg)+))
    };
}

/// Logs at [`Level::Warn`]: `warn!("retrying {name}")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log::write_args($crate::log::Level::Warn, ::core::format_args!($($arg)+))
    };
}

/// Logs at [`Level::Info`]: `info!("served {path}")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log::write_args($crate::log::Level::Info, ::core::format_args!($($arg)+))
    };
}

/// Logs at [`Level::Debug`]: `debug!("state: {state:?}")`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log::write_args($crate::log::Level::Debug, ::core::format_args!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::Level;
    use crate::testing::TestRequest;

    #[test]
    fn each_macro_logs_at_its_level_with_its_arguments() {
        let response = TestRequest::get("/").call(|| {
            let n = 3;
            crate::error!("e{n}");
            crate::warn!("w{n}");
            crate::info!("i{n}");
            crate::debug!("d{n}");
            crate::info!("plain");
        });
        let lines: Vec<(Level, &str)> = response
            .logs()
            .iter()
            .map(|line| (line.level, line.message.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (Level::Error, "e3"),
                (Level::Warn, "w3"),
                (Level::Info, "i3"),
                (Level::Debug, "d3"),
                (Level::Info, "plain"),
            ]
        );
    }

    #[test]
    fn levels_round_trip_through_their_codes() {
        for level in Level::ALL {
            assert_eq!(Level::from_code(level as i32), Some(level));
        }
        assert_eq!(Level::from_code(0), None);
        assert_eq!(Level::from_code(5), None);
    }
}
