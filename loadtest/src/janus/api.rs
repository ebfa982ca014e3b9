//! Janus's HTTP API (the REST transport): sessions, plugin handles, transactions, the
//! long poll that delivers asynchronous events, and keepalives.
//!
//! Every request carries a `transaction`; a plugin message Janus handles asynchronously is
//! acknowledged (`"ack"`) and its result arrives later as an `"event"` with the same
//! transaction on the session's long poll (`GET /janus/{session}?maxev=N`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::JanusError;

/// Longest a plugin's asynchronous answer may take.
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Janus holds a long poll for up to 30 s; allow a little more.
const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(35);
/// Events fetched per long poll.
const LONG_POLL_MAX_EVENTS: u32 = 16;
/// Keepalives well inside Janus's session timeout (60 s in the generated config).
const KEEPALIVE_PERIOD: Duration = Duration::from_secs(20);
/// The long poll gives up after this many failures in a row.
const MAX_POLL_FAILURES: u32 = 20;
/// Plain requests (create, attach, message, trickle, keepalive, destroy).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The long poll and the keepalives stop after this long even if nobody destroys the
/// session (a scenario lasts minutes).
const SESSION_MAX_LIFETIME: Duration = Duration::from_secs(2 * 3600);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The HTTP side: `base` is `http://127.0.0.1:PORT/janus`.
#[derive(Debug)]
pub struct JanusHttp {
    http: reqwest::Client,
    base: String,
    next_tx: AtomicU64,
}

impl JanusHttp {
    pub fn new(base: String) -> Result<Self, JanusError> {
        let http = reqwest::Client::builder().no_proxy().build()?;
        Ok(JanusHttp {
            http,
            base,
            next_tx: AtomicU64::new(1),
        })
    }

    fn transaction(&self) -> String {
        format!("t{}", self.next_tx.fetch_add(1, Ordering::Relaxed))
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, JanusError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/json")
            .timeout(REQUEST_TIMEOUT)
            .body(body.to_string())
            .send()
            .await?;
        parse_reply(resp).await
    }

    async fn get(&self, path: &str, timeout: Duration) -> Result<Value, JanusError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .timeout(timeout)
            .send()
            .await?;
        parse_reply(resp).await
    }

    /// `GET /janus/info`: whether the server answers at all.
    pub async fn info(&self) -> Result<Value, JanusError> {
        self.get("/info", REQUEST_TIMEOUT).await
    }
}

async fn parse_reply(resp: reqwest::Response) -> Result<Value, JanusError> {
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        return Err(JanusError::Status(status.as_u16(), text));
    }
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| JanusError::Protocol(format!("reply is not JSON ({e}): {text:.200}")))?;
    if v.get("janus").and_then(Value::as_str) == Some("error") {
        return Err(janus_error(&v));
    }
    Ok(v)
}

fn janus_error(v: &Value) -> JanusError {
    let e = v.get("error");
    JanusError::Refused {
        code: e
            .and_then(|e| e.get("code"))
            .and_then(Value::as_i64)
            .unwrap_or(0),
        reason: e
            .and_then(|e| e.get("reason"))
            .and_then(Value::as_str)
            .unwrap_or("(no reason)")
            .to_owned(),
    }
}

/// `data.id` of a `"success"` reply (a new session or handle).
fn new_id(v: &Value, what: &str) -> Result<u64, JanusError> {
    v.get("data")
        .and_then(|d| d.get("id"))
        .and_then(Value::as_u64)
        .ok_or_else(|| JanusError::Protocol(format!("{what}: no data.id in {v}")))
}

/// A plugin's answer: `plugindata.data`, with an error inside turned into [`JanusError`].
fn plugin_data(v: &Value) -> Result<Value, JanusError> {
    let data = v
        .get("plugindata")
        .and_then(|p| p.get("data"))
        .cloned()
        .ok_or_else(|| JanusError::Protocol(format!("no plugindata in {v}")))?;
    if let Some(reason) = data.get("error").and_then(Value::as_str) {
        return Err(JanusError::Plugin {
            code: data.get("error_code").and_then(Value::as_i64).unwrap_or(0),
            reason: reason.to_owned(),
        });
    }
    Ok(data)
}

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// One Janus session, its long poll and keepalive tasks (aborted on drop).
#[derive(Debug)]
pub struct Session {
    http: Arc<JanusHttp>,
    id: u64,
    waiters: Waiters,
    tasks: Vec<JoinHandle<()>>,
}

impl Session {
    /// `{"janus":"create"}`, then starts the long poll and the keepalives.
    pub async fn create(http: Arc<JanusHttp>) -> Result<Session, JanusError> {
        let tx = http.transaction();
        let v = http
            .post("", &json!({"janus": "create", "transaction": tx}))
            .await?;
        let id = new_id(&v, "create session")?;
        let waiters: Waiters = Arc::default();
        let tasks = vec![
            tokio::spawn(long_poll(http.clone(), id, waiters.clone())),
            tokio::spawn(keepalive(http.clone(), id)),
        ];
        Ok(Session {
            http,
            id,
            waiters,
            tasks,
        })
    }

    /// Attaches a handle to `plugin` (e.g. `janus.plugin.videoroom`).
    pub async fn attach(&self, plugin: &str) -> Result<u64, JanusError> {
        let tx = self.http.transaction();
        let v = self
            .http
            .post(
                &format!("/{}", self.id),
                &json!({"janus": "attach", "plugin": plugin, "transaction": tx}),
            )
            .await?;
        new_id(&v, "attach")
    }

    /// A plugin message and its result: synchronous (`"success"`) or, after an `"ack"`,
    /// the `"event"` with the same transaction. Returns `plugindata.data` and the JSEP.
    pub async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<(Value, Option<Value>), JanusError> {
        let tx = self.http.transaction();
        let (send, recv) = oneshot::channel();
        lock(&self.waiters).insert(tx.clone(), send);
        let mut msg = json!({"janus": "message", "transaction": tx, "body": body});
        if let (Some(j), Some(fields)) = (jsep, msg.as_object_mut()) {
            fields.insert("jsep".into(), j);
        }
        let reply = self
            .http
            .post(&format!("/{}/{handle}", self.id), &msg)
            .await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                lock(&self.waiters).remove(&tx);
                return Err(e);
            }
        };
        let event = match reply.get("janus").and_then(Value::as_str) {
            Some("success") => {
                lock(&self.waiters).remove(&tx);
                reply
            }
            Some("ack") => match tokio::time::timeout(EVENT_TIMEOUT, recv).await {
                Ok(Ok(event)) => event,
                Ok(Err(_)) => return Err(JanusError::Closed),
                Err(_) => {
                    lock(&self.waiters).remove(&tx);
                    return Err(JanusError::Timeout(format!(
                        "no event for {body} within {EVENT_TIMEOUT:?}"
                    )));
                }
            },
            _ => {
                lock(&self.waiters).remove(&tx);
                return Err(JanusError::Protocol(format!("unexpected reply {reply}")));
            }
        };
        let data = plugin_data(&event)?;
        Ok((data, event.get("jsep").cloned()))
    }

    /// Tells Janus there are no more candidates than those in the SDP.
    pub async fn end_of_candidates(&self, handle: u64) -> Result<(), JanusError> {
        let tx = self.http.transaction();
        self.http
            .post(
                &format!("/{}/{handle}", self.id),
                &json!({"janus": "trickle", "candidate": {"completed": true}, "transaction": tx}),
            )
            .await
            .map(|_| ())
    }

    /// `{"janus":"destroy"}`: every handle goes with it. Stops the tasks.
    pub async fn destroy(mut self) -> Result<(), JanusError> {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let tx = self.http.transaction();
        self.http
            .post(
                &format!("/{}", self.id),
                &json!({"janus": "destroy", "transaction": tx}),
            )
            .await
            .map(|_| ())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Delivers the session's events to whoever waits for their transaction; other events
/// (`webrtcup`, `media`, `hangup`, …) are only logged. Ends when aborted, after
/// [`MAX_POLL_FAILURES`] failures in a row, or after [`SESSION_MAX_LIFETIME`].
async fn long_poll(http: Arc<JanusHttp>, session: u64, waiters: Waiters) {
    let path = format!("/{session}?maxev={LONG_POLL_MAX_EVENTS}");
    let deadline = Instant::now() + SESSION_MAX_LIFETIME;
    let mut failures = 0;
    while failures < MAX_POLL_FAILURES && Instant::now() < deadline {
        let events = match http.get(&path, LONG_POLL_TIMEOUT).await {
            Ok(Value::Array(events)) => events,
            Ok(one) => vec![one],
            Err(e) => {
                failures += 1;
                tracing::debug!("janus long poll of session {session}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        failures = 0;
        for event in events {
            let waiter = event
                .get("transaction")
                .and_then(Value::as_str)
                .and_then(|tx| lock(&waiters).remove(tx));
            match waiter {
                Some(w) => {
                    let _ = w.send(event);
                }
                None => tracing::debug!("janus event: {event}"),
            }
        }
    }
    if failures >= MAX_POLL_FAILURES {
        tracing::warn!("janus long poll of session {session} gave up after {failures} failures");
    }
}

/// A keepalive every [`KEEPALIVE_PERIOD`] until aborted (or [`SESSION_MAX_LIFETIME`]).
async fn keepalive(http: Arc<JanusHttp>, session: u64) {
    let mut tick = tokio::time::interval(KEEPALIVE_PERIOD);
    tick.tick().await;
    let rounds = SESSION_MAX_LIFETIME.as_secs() / KEEPALIVE_PERIOD.as_secs();
    for _ in 0..rounds {
        tick.tick().await;
        let tx = http.transaction();
        if let Err(e) = http
            .post(
                &format!("/{session}"),
                &json!({"janus": "keepalive", "transaction": tx}),
            )
            .await
        {
            tracing::debug!("janus keepalive of session {session}: {e}");
        }
    }
}
