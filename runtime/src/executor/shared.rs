//! Reused WASI 0.3 instances, each serving several requests at once (as
//! `wasmtime serve` does): a 0.3 guest awaits natively, so while one
//! request waits on a timer, a body or a fetch, its instance's event loop
//! runs the others' tasks.
//!
//! Each instance is a worker task that owns its `Store` and runs one event
//! loop (`run_concurrent`) for its whole life; requests reach it through a
//! channel, and the request's own task waits for the answer under the
//! request timeout. A request goes to the oldest instance of its policy with
//! room (fewer than `concurrency` requests in flight, fewer than
//! `max-requests` taken), else to a new one; at most `pool-size` instances
//! are kept, one beyond that serves what it was given and ends.
//!
//! A request is done with its instance once its response body has run out
//! (the guest resolved its trailers), or its client left. An instance ends:
//! - when it has been idle for `idle-timeout`, or has taken `max-requests`
//!   and has none left in flight;
//! - at once when it traps: every request it was serving ends with the trap
//!   (`500`, or a cut body);
//! - at once when one of its requests runs past its timeout (`504` for that
//!   one): the guest cannot be told to stop one task, and a spinning task
//!   holds the whole event loop, so the others it was serving end with
//!   `500` (or a cut body), saying why.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use http::StatusCode;
use tokio::sync::{Notify, mpsc, oneshot};
use wasmtime::component::Accessor;
use wasmtime_wasi_http::p3::bindings::{Service, ServicePre};

use super::component::ComponentBody;
use super::component_p3::{Answer, ended};
use super::{Job, Ran, instantiation_failed, trap_text};
use crate::engine::{memory_limits, new_store};
use crate::host::{GuestLog, HeadLimits, WasiState};
use crate::outcome::Outcome;
use crate::request::{Identity, LimitedBody, Respond};
use crate::site::Policy;
use crate::stats::Stats;

/// The shared instances of one handler version.
#[derive(Default)]
pub(crate) struct Shared {
    instances: Mutex<Vec<Instance>>,
}

/// A handle on one instance's worker.
struct Instance {
    /// Requests for the worker; it ends when every sender is gone and its
    /// requests are done.
    tx: mpsc::UnboundedSender<Work>,
    life: Arc<Life>,
}

/// What the handlers and the worker share of one instance.
struct Life {
    /// The policy it was made under: it serves only requests under the same
    /// one (a configuration reload starts new instances).
    policy: Arc<Policy>,
    state: Mutex<State>,
    /// Tells the worker to drop the instance now.
    kill: Notify,
}

struct State {
    /// Requests given to it and not yet done.
    in_flight: u32,
    /// Requests given to it in all.
    taken: u32,
    /// Why it ended, once it has: what requests still waiting on it get.
    ended: Option<Outcome>,
}

/// One request for a worker.
struct Work {
    request: http::Request<LimitedBody>,
    who: Identity,
    log: Arc<GuestLog>,
    head: HeadLimits,
    respond: Arc<Mutex<Option<Respond>>>,
    sent: Arc<Mutex<Option<StatusCode>>>,
    /// How the request ended, for its body.
    ended: oneshot::Receiver<Outcome>,
    /// How the guest's part ended, for the request's task.
    reply: oneshot::Sender<Outcome>,
}

impl Life {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records why the instance ended, unless it had already.
    fn end(&self, why: Outcome) {
        self.state().ended.get_or_insert(why);
    }

    /// Takes a request if the instance has room for it.
    fn take(&self, policy: &Arc<Policy>) -> bool {
        let mut state = self.state();
        let limits = policy.instances;
        let room = state.ended.is_none()
            && Arc::ptr_eq(&self.policy, policy)
            && state.in_flight < limits.concurrency
            && state.taken < limits.max_requests;
        if room {
            state.in_flight += 1;
            state.taken += 1;
        }
        room
    }

    /// Counts a request as done; `true` when the instance has served its
    /// `max-requests` and none is left, so it ends.
    fn done(&self) -> bool {
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        let spent = state.in_flight == 0 && state.taken >= self.policy.instances.max_requests;
        if spent {
            state
                .ended
                .get_or_insert(retired("it served its max-requests"));
        }
        spent
    }

    /// Ends an instance that has been idle for its `idle-timeout`, unless a
    /// request was given to it meanwhile.
    fn idle(&self) -> bool {
        let mut state = self.state();
        let idle = state.in_flight == 0;
        if idle {
            state.ended.get_or_insert(retired("it was idle"));
        }
        idle
    }
}

/// How a request ends when the instance serving it ended first, for `why`.
fn retired(why: &str) -> Outcome {
    Outcome::Trap(format!("the shared instance serving it was retired: {why}"))
}

/// Ends an instance one of whose requests ran past its timeout.
fn timed_out(life: &Life) {
    life.end(retired(
        "another request it was serving ran past its timeout",
    ));
    life.kill.notify_one();
}

/// A request's wait for its answer. When the request's task is dropped
/// before the answer (its client went away), the guest's part goes on in
/// the shared instance, so its deadline is kept by a task of its own: past
/// it, the instance is ended as for any timeout.
struct Waiting {
    reply: Option<oneshot::Receiver<Outcome>>,
    life: Arc<Life>,
    deadline: tokio::time::Instant,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        // Dropped in the request's task, so inside the runtime; at shutdown
        // the runtime ends the instance's worker anyway.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (life, deadline) = (self.life.clone(), self.deadline);
        runtime.spawn(async move {
            if tokio::time::timeout_at(deadline, reply).await.is_err() {
                timed_out(&life);
            }
        });
    }
}

impl Shared {
    /// Runs `job` on a shared instance of `pre`.
    pub(crate) async fn run(&self, pre: &ServicePre<WasiState>, job: Job) -> Ran {
        let limits = job.limits;
        let (ended_tx, ended_rx) = oneshot::channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        let respond = Arc::new(Mutex::new(Some(job.respond)));
        let sent = Arc::new(Mutex::new(None));
        let work = Work {
            request: job.request,
            who: job.who,
            log: Arc::new(job.log),
            head: limits.head,
            respond: respond.clone(),
            sent: sent.clone(),
            ended: ended_rx,
            reply: reply_tx,
        };
        let deadline = tokio::time::Instant::now() + limits.timeout;
        let life = self.send(pre, &job.policy, limits.max_memory, job.stats, work);
        let mut waiting = Waiting {
            reply: Some(reply_rx),
            life: life.clone(),
            deadline,
        };
        let reply = waiting.reply.as_mut().expect("set just above");
        let outcome = match tokio::time::timeout_at(deadline, reply).await {
            Ok(Ok(outcome)) => outcome,
            // The worker ended before it answered: how it ended.
            Ok(Err(_)) => life.state().ended.clone().unwrap_or(Outcome::Panicked),
            Err(_elapsed) => {
                timed_out(&life);
                Outcome::Timeout
            }
        };
        waiting.reply = None;
        ended(outcome, &respond, &sent, ended_tx)
    }

    /// Gives `work` to the oldest instance with room, or to a new one.
    fn send(
        &self,
        pre: &ServicePre<WasiState>,
        policy: &Arc<Policy>,
        max_memory: u64,
        stats: Arc<Stats>,
        work: Work,
    ) -> Arc<Life> {
        let mut instances = self.instances.lock().unwrap_or_else(|e| e.into_inner());
        instances.retain(|i| i.life.state().ended.is_none() && !i.tx.is_closed());
        let work = match instances.iter().find(|i| i.life.take(policy)) {
            Some(instance) => match instance.tx.send(work) {
                Ok(()) => return instance.life.clone(),
                // The worker ended between the check and the send.
                Err(mpsc::error::SendError(work)) => work,
            },
            None => work,
        };
        // None has room: a new instance, kept for later requests while there
        // are fewer than `pool-size`.
        let life = Arc::new(Life {
            policy: policy.clone(),
            state: Mutex::new(State {
                in_flight: 1,
                taken: 1,
                ended: None,
            }),
            kill: Notify::new(),
        });
        let state = WasiState::new(
            work.who.clone(),
            policy.clone(),
            memory_limits(max_memory).build(),
            work.log.clone(),
        );
        let store = new_store(pre.engine(), state);
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(work);
        let handler = pre.clone();
        tokio::spawn(worker(handler, store, life.clone(), rx, stats));
        if instances.len() < policy.instances.pool_size as usize {
            instances.push(Instance {
                tx,
                life: life.clone(),
            });
        }
        life
    }
}

/// Runs one instance until it ends (see the module's doc).
async fn worker(
    pre: ServicePre<WasiState>,
    mut store: wasmtime::Store<WasiState>,
    life: Arc<Life>,
    rx: mpsc::UnboundedReceiver<Work>,
    stats: Arc<Stats>,
) {
    let serving = async {
        let service = match pre.instantiate_async(&mut store).await {
            Ok(service) => service,
            Err(e) => return instantiation_failed(&e),
        };
        let served = store
            .run_concurrent(async |accessor| serve(accessor, &service, &life, rx, &stats).await)
            .await;
        served.unwrap_or_else(|e| Outcome::Trap(trap_text(&e)))
    };
    let why = tokio::select! {
        why = serving => why,
        () = life.kill.notified() => retired("it was killed"),
    };
    // Recorded before the store (and with it every body's stream) goes, so
    // a body that ends then is cut, not ended cleanly.
    life.end(why);
    drop(store);
}

/// The instance's event loop: takes requests, runs them concurrently, and
/// returns when the instance should end.
async fn serve(
    accessor: &Accessor<WasiState>,
    service: &Service,
    life: &Life,
    mut rx: mpsc::UnboundedReceiver<Work>,
    stats: &Stats,
) -> Outcome {
    let idle_timeout = life.policy.instances.idle_timeout;
    let mut running = FuturesUnordered::new();
    let mut open = true;
    // Counted as a live instance while it serves a request, as a core
    // handler's warm instance is.
    let mut live = None;
    loop {
        if running.is_empty() {
            live = None;
            if !open {
                return retired("it is no longer kept");
            }
        }
        tokio::select! {
            work = rx.recv(), if open => match work {
                Some(work) => {
                    let handler = work.who.handler.clone();
                    live.get_or_insert_with(|| stats.instance(&handler));
                    running.push(one(accessor, service, &life.policy, work));
                }
                None => open = false,
            },
            Some(()) = running.next(), if !running.is_empty() => {
                if life.done() {
                    return retired("it served its max-requests");
                }
            }
            () = tokio::time::sleep(idle_timeout), if running.is_empty() => {
                if life.idle() {
                    return retired("it was idle");
                }
            }
        }
    }
}

/// One request on a shared instance: its log and outbound requests are this
/// request's from now on, then `handle`, the head, and the body until it
/// runs out.
async fn one(accessor: &Accessor<WasiState>, service: &Service, policy: &Arc<Policy>, work: Work) {
    let Work {
        request,
        who,
        log,
        head,
        respond,
        sent,
        ended,
        reply,
    } = work;
    accessor.with(|mut store| store.data_mut().renew(who, policy.clone(), log));
    let answer = Answer {
        respond: &respond,
        sent: &sent,
        head,
    };
    let (drained_tx, drained_rx) = oneshot::channel();
    let body = |body| ComponentBody::telling(body, ended, drained_tx);
    let outcome = answer.serve(accessor, service, request, body).await;
    if matches!(outcome, Outcome::Completed) {
        // Run out, or dropped with a client that left.
        let _ = drained_rx.await;
    }
    let _ = reply.send(outcome);
}
