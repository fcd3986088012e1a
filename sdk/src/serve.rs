//! The entry points `#[handler]`'s exports call, and how a handler's outcome
//! becomes a response: a value is sent, an error before the head is a
//! logged `500` (or the status [`Error::status`](crate::Error::status) gives
//! a failed upstream or store), an error after it is logged and traps
//! (aborting the body), an error once the client has gone ends quietly, a
//! panic is logged by the hook and traps.

use std::fmt::Display;
use std::panic::PanicHookInfo;
use std::sync::Once;

use http::StatusCode;

use crate::{IntoResponse, Request, Response, ResponseWriter, sys};

/// What a streaming handler returns: `()`, or `Result<(), E>` with
/// `E: Display`. An `Err` is logged and answers `500` (or
/// [`Error::status`](crate::Error::status)) if nothing was written; after
/// the first write it aborts the response.
#[diagnostic::on_unimplemented(
    message = "a streaming handler returns `Result<(), E>` (with `E: Display`) or `()`, not `{Self}`",
    label = "not a streaming handler's result",
    note = "the body goes through the `&mut ResponseWriter`; to return a body instead, drop that argument"
)]
pub trait StreamResult {
    /// The error's message, if the handler failed.
    fn into_failure(self) -> Option<String>;

    /// The status a failed handler answers with, if it wrote nothing yet.
    fn failure_status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

impl StreamResult for () {
    fn into_failure(self) -> Option<String> {
        None
    }
}

// `'static`: as for `IntoResponse for Result`, so a failed host call's status
// can be found.
impl<E: Display + 'static> StreamResult for Result<(), E> {
    fn into_failure(self) -> Option<String> {
        self.err().map(|error| error.to_string())
    }

    fn failure_status(&self) -> StatusCode {
        match self {
            Ok(()) => StatusCode::INTERNAL_SERVER_ERROR,
            Err(error) => crate::error::status_of(error),
        }
    }
}

/// The type of a handler's first argument: only [`Request`].
#[diagnostic::on_unimplemented(
    message = "a handler's first argument is the request, `wasmlet_sdk::Request`, not `{Self}`",
    label = "expected `Request`"
)]
pub trait RequestArg {
    /// The argument.
    fn from_request(request: Request) -> Self;
}

impl RequestArg for Request {
    fn from_request(request: Request) -> Self {
        request
    }
}

/// The type behind a streaming handler's `&mut` second argument: only
/// [`ResponseWriter`].
#[diagnostic::on_unimplemented(
    message = "a streaming handler's second argument is `&mut wasmlet_sdk::ResponseWriter`, not `&mut {Self}`",
    label = "expected `ResponseWriter`"
)]
pub trait WriterArg {
    /// The argument.
    fn from_writer(writer: &mut ResponseWriter) -> &mut Self;
}

impl WriterArg for ResponseWriter {
    fn from_writer(writer: &mut ResponseWriter) -> &mut Self {
        writer
    }
}

/// A buffered handler's result as a response.
pub fn respond(result: impl IntoResponse) -> Response {
    result.into_response()
}

/// A streaming handler's result as its status and error message, if it
/// failed.
pub fn stream_failure(result: impl StreamResult) -> Option<(StatusCode, String)> {
    let status = result.failure_status();
    result.into_failure().map(|message| (status, message))
}

/// Serves `fn() -> impl IntoResponse`.
pub fn serve_unit(handler: impl FnOnce() -> Response) {
    install_panic_hook();
    handler().send();
}

/// Serves `fn(Request) -> impl IntoResponse`.
pub fn serve_request(handler: impl FnOnce(Request) -> Response) {
    install_panic_hook();
    let response = match Request::from_host() {
        Ok(request) => handler(request),
        Err(error) => Err::<(), _>(error).into_response(),
    };
    response.send();
}

/// Serves `fn(Request, &mut ResponseWriter) -> impl StreamResult`; the
/// handler's result arrives as [`StreamResult::into_failure`] made it.
pub fn serve_stream(
    handler: impl FnOnce(Request, &mut ResponseWriter) -> Option<(StatusCode, String)>,
) {
    install_panic_hook();
    let request = match Request::from_host() {
        Ok(request) => request,
        Err(error) => return Err::<(), _>(error).into_response().send(),
    };
    let mut writer = ResponseWriter::new();
    let Some((status, failure)) = handler(request, &mut writer) else {
        return writer.finish();
    };
    if writer.client_gone() {
        // Nobody is left to answer or to warn: an error and a trap for every
        // client that hangs up early would only be noise in the log.
        let mut line = String::from("the client has gone: ");
        line.push_str(&failure);
        crate::log::write(crate::log::Level::Debug, &line);
        return;
    }
    log_failure(&failure);
    if writer.head_sent() {
        // Ending normally would make a cut-short body look complete; a trap
        // makes the runtime abort it, so the client knows.
        sys::trap();
    }
    Response::failure(status).send();
}

/// Logs a handler's error at level error.
pub(crate) fn log_failure(message: &str) {
    let mut line = String::from("handler failed: ");
    line.push_str(message);
    crate::log::write(crate::log::Level::Error, &line);
}

/// Logs panics through the `log` import, before the module traps. Natively
/// the hook also hands the panic to the previous hook, so a test still
/// prints it.
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // On wasm32 the default hook has nowhere to print, and keeping it
        // would keep its code in every module.
        #[cfg(target_arch = "wasm32")]
        std::panic::set_hook(Box::new(|info| sys::log_panic(&panic_message(info))));
        #[cfg(not(target_arch = "wasm32"))]
        {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                sys::log_panic(&panic_message(info));
                previous(info);
            }));
        }
    });
}

fn panic_message(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload_as_str().unwrap_or("(a non-string payload)");
    match info.location() {
        Some(location) => format!("handler panicked at {location}: {payload}"),
        None => format!("handler panicked: {payload}"),
    }
}
