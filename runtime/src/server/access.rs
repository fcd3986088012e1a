//! One access line and one count per request. An [`Access`] is made when a
//! request arrives and consumed when it ends; whatever path the request took,
//! it is logged once and counted once in the metrics. A request that ends
//! without an answer (the client went away, the guest was cancelled) is
//! logged and counted when its `Access` drops.

use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, StatusCode};

use crate::outcome::Outcome;
use crate::stats::{CLIENT_GONE, NO_HANDLER, Stats};

/// A request between its arrival and its access line.
pub(crate) struct Access {
    stats: Arc<Stats>,
    method: Method,
    path: String,
    /// Carried to the guest's log lines too (see `host/system.rs`).
    request_id: Arc<str>,
    /// The handler's URL path once the route names one; the `handler` label
    /// and log field.
    handler: Option<Arc<str>>,
    started: Instant,
    /// Logged and counted already; `Drop` has nothing to do.
    done: bool,
}

impl Access {
    /// A request arrived: counts it in flight until it ends.
    pub(crate) fn begin<B>(stats: Arc<Stats>, request: &Request<B>, request_id: Arc<str>) -> Self {
        stats.request_received();
        Self {
            stats,
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            request_id,
            handler: None,
            started: Instant::now(),
            done: false,
        }
    }

    /// The request's id.
    pub(crate) fn request_id(&self) -> &Arc<str> {
        &self.request_id
    }

    /// The route named a handler: the line and the metrics name it.
    pub(crate) fn set_handler(&mut self, handler: Arc<str>) {
        self.handler = Some(handler);
    }

    /// The request ended with `status`; `outcome` is how its guest ended, for
    /// a request that ran one (or failed to load it).
    pub(crate) fn finish(mut self, status: StatusCode, outcome: Option<&Outcome>) {
        self.done = true;
        let elapsed = self.started.elapsed();
        let handler = self.handler.as_deref().unwrap_or(NO_HANDLER);
        let ms = format_args!("{:.1}", elapsed.as_secs_f64() * 1e3);
        let method = &self.method;
        let path = &*self.path;
        let request_id = &*self.request_id;
        let code = status.as_u16();
        // Counted before it is logged: whoever sees the line (a test, an
        // operator) finds it in the metrics too.
        self.stats
            .request_finished(handler, status.as_str(), elapsed, outcome);
        match outcome.filter(|o| !matches!(o, Outcome::Completed)) {
            Some(failed) => tracing::warn!(
                target: "wasmlet::access",
                %method, path, status = code, %ms, handler, %request_id,
                outcome = failed.label(),
                error = failed.detail().unwrap_or_default(),
                "request failed"
            ),
            None => tracing::info!(
                target: "wasmlet::access",
                %method, path, status = code, %ms, handler, %request_id,
                "request"
            ),
        }
    }
}

impl Drop for Access {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let elapsed = self.started.elapsed();
        let handler = self.handler.as_deref().unwrap_or(NO_HANDLER);
        let ms = format_args!("{:.1}", elapsed.as_secs_f64() * 1e3);
        let method = &self.method;
        let path = &*self.path;
        let request_id = &*self.request_id;
        // Dropped while unwinding: the request's task panicked (a host bug,
        // which the runtime logs), and the client got a 500.
        let (status, message) = if std::thread::panicking() {
            ("500", "the request's task panicked")
        } else if self.handler.is_some() {
            (CLIENT_GONE, "client went away; handler cancelled")
        } else {
            (CLIENT_GONE, "client went away")
        };
        self.stats.request_finished(handler, status, elapsed, None);
        tracing::info!(
            target: "wasmlet::access",
            %method, path, %ms, handler, %request_id,
            "{message}"
        );
    }
}
