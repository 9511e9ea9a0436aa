//! One STOMP connection as vdsm serves it (`lib/yajsonrpc/stompserver.py` is the
//! reference): `CONNECT` with `accept-version:1.2` answered `CONNECTED` with the
//! client's heart-beat mirrored; `SUBSCRIBE` recorded without an answer; `SEND` to a
//! request queue carries JSON-RPC, answered with a `MESSAGE` on its `reply-to`
//! destination to every subscription there; `DISCONNECT` with `receipt` answered
//! `RECEIPT`. A newline is sent as the server's heart-beat while the connection is
//! idle, also while a verb runs. A broken frame, a frame past the limits, a client
//! silent beyond its own heart-beat or slow to connect gets an `ERROR` frame when
//! one can still be sent, and the connection is closed; other connections go on.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::events::Event;
use crate::jsonrpc::{self, Verbs};
use crate::stomp::{Decoder, Frame, Limits};

/// The request destinations vdsm serves (a destination equal to one, or starting
/// with one, is a request).
pub const REQUEST_QUEUES: [&str; 2] = ["jms.topic.vdsm_requests", "jms.topic.vdsm_irs_requests"];
/// Where answers go when a request names no `reply-to`.
pub const RESPONSE_QUEUE: &str = "jms.topic.vdsm_responses";
/// Where events go.
pub const EVENT_QUEUE: &str = "jms.queue.events";

/// How a connection is served.
#[derive(Debug, Clone)]
pub struct Options {
    pub limits: Limits,
    /// How long a new connection may take to send `CONNECT`.
    pub connect_timeout: Duration,
    /// The shortest heart-beat interval granted (vdsm's 1 s), either way.
    pub min_heart_beat: Duration,
    /// Verbs running at once for one connection; further requests wait their turn.
    pub max_calls: usize,
    /// Where events come from ([`crate::events`]); each goes to the subscriptions
    /// of [`EVENT_QUEUE`].
    pub events: Option<broadcast::Sender<Event>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(30),
            min_heart_beat: Duration::from_secs(1),
            max_calls: 8,
            events: None,
        }
    }
}

/// Why a connection ended (`Ok` for the client's own goodbye or end of stream).
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("reading or writing the connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(String),
}

/// The heart-beats agreed at `CONNECT`: how often this side writes, and how long the
/// client may stay silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartBeats {
    pub send_every: Option<Duration>,
    pub silent_at_most: Option<Duration>,
}

/// The client's `heart-beat: cx,cy` (it sends every `cx` ms, wants one every `cy`
/// ms) as vdsm answers it: `heart-beat: cy,cx`, each non-zero value at least
/// `min`; the client's sends are allowed half as long again before it counts as gone
/// (the engine's own rule for the server). `None` when the header is malformed.
pub fn heart_beats(header: Option<&str>, min: Duration) -> Option<HeartBeats> {
    let (cx, cy) = match header {
        None => (0, 0),
        Some(h) => {
            let (a, b) = h.split_once(',')?;
            (a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)
        }
    };
    let at_least = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms).max(min));
    Some(HeartBeats {
        send_every: at_least(cy),
        silent_at_most: at_least(cx).map(|d| d + d / 2),
    })
}

fn millis(d: Option<Duration>) -> u128 {
    d.map(|d| d.as_millis()).unwrap_or(0)
}

fn error_frame(message: &str) -> Frame {
    Frame::new("ERROR")
        .header("message", message)
        .header("content-type", "text/plain")
        .body(message.as_bytes().to_vec())
}

/// Serves one connection until the client disconnects or breaks the protocol.
pub async fn serve_connection<S>(
    stream: S,
    verbs: Arc<dyn Verbs>,
    options: &Options,
) -> Result<(), ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = Conn {
        stream,
        decoder: Decoder::new(options.limits),
        subscriptions: Vec::new(),
        beats: None,
        last_write: Instant::now(),
        messages: 0,
    };
    let result = conn.run(verbs, options).await;
    if let Err(ConnError::Protocol(message)) = &result {
        // Said to the client if it still listens; the connection closes either way.
        let _ = conn.write(&error_frame(message)).await;
    }
    let _ = conn.stream.shutdown().await;
    result
}

struct Conn<S> {
    stream: S,
    decoder: Decoder,
    /// Subscription ids and their destinations.
    subscriptions: Vec<(String, String)>,
    beats: Option<HeartBeats>,
    /// When bytes last went to the client: a heart-beat is due only after a
    /// quiet interval (a frame read, or an event for another connection's
    /// subscription, writes nothing here).
    last_write: Instant,
    /// `MESSAGE` frames sent, numbering their `message-id`.
    messages: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn write(&mut self, frame: &Frame) -> std::io::Result<()> {
        self.stream.write_all(&frame.encode()).await?;
        self.stream.flush().await?;
        self.last_write = Instant::now();
        Ok(())
    }

    async fn run(&mut self, verbs: Arc<dyn Verbs>, options: &Options) -> Result<(), ConnError> {
        let mut buf = vec![0u8; 16 * 1024];
        let mut calls: JoinSet<(String, Option<serde_json::Value>)> = JoinSet::new();
        let connect_deadline = Instant::now() + options.connect_timeout;
        let mut last_read = Instant::now();
        // Replaced by the agreed interval at CONNECT; until then, only the deadline.
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.reset();
        let mut events = options.events.as_ref().map(broadcast::Sender::subscribe);
        loop {
            let silent_limit = match self.beats {
                None => connect_deadline,
                Some(HeartBeats {
                    silent_at_most: Some(d),
                    ..
                }) => last_read + d,
                // The client promised no heart-beats: no limit on its silence.
                Some(_) => Instant::now() + Duration::from_secs(3600),
            };
            tokio::select! {
                read = self.stream.read(&mut buf), if calls.len() < options.max_calls => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    last_read = Instant::now();
                    self.decoder.push(&buf[..n]);
                    loop {
                        let frame = self
                            .decoder
                            .next_frame()
                            .map_err(|e| ConnError::Protocol(e.to_string()))?;
                        let Some(frame) = frame else { break };
                        match self.frame(frame, &verbs, &mut calls, options).await? {
                            Flow::Go => {}
                            Flow::Connected => {
                                if let Some(every) = self.beats.and_then(|b| b.send_every) {
                                    tick = tokio::time::interval(every);
                                    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                                    tick.reset();
                                }
                            }
                            Flow::Stop => return Ok(()),
                        }
                    }
                }
                event = next_event(&mut events) => {
                    match event {
                        Ok(event) => {
                            if self.beats.is_some() {
                                self.reply(EVENT_QUEUE, &event.to_json()).await?;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "a slow connection missed events");
                        }
                        // The watcher is gone: no more events for this connection.
                        Err(broadcast::error::RecvError::Closed) => events = None,
                    }
                }
                Some(done) = calls.join_next() => {
                    let (reply_to, answer) = done
                        .map_err(|e| ConnError::Protocol(format!("a verb's worker failed: {e}")))?;
                    if let Some(answer) = answer {
                        self.reply(&reply_to, &answer).await?;
                    }
                }
                _ = tick.tick() => {
                    let every = self.beats.and_then(|b| b.send_every);
                    if every.is_some_and(|e| self.last_write.elapsed() + Duration::from_millis(50) >= e) {
                        self.stream.write_all(b"\n").await?;
                        self.stream.flush().await?;
                        self.last_write = Instant::now();
                    }
                }
                _ = tokio::time::sleep_until(silent_limit) => {
                    return Err(ConnError::Protocol(match self.beats {
                        None => format!(
                            "no CONNECT within {} s",
                            options.connect_timeout.as_secs()
                        ),
                        Some(b) => format!(
                            "nothing received for {} ms, past the client's heart-beat",
                            millis(b.silent_at_most)
                        ),
                    }));
                }
            }
        }
    }

    async fn frame(
        &mut self,
        frame: Frame,
        verbs: &Arc<dyn Verbs>,
        calls: &mut JoinSet<(String, Option<serde_json::Value>)>,
        options: &Options,
    ) -> Result<Flow, ConnError> {
        let command = frame.command.as_str();
        if self.beats.is_none() && !matches!(command, "CONNECT" | "STOMP") {
            return Err(ConnError::Protocol(format!(
                "{command} before CONNECT: connect first"
            )));
        }
        let mut flow = Flow::Go;
        match command {
            "CONNECT" | "STOMP" => {
                let versions = frame.get("accept-version").unwrap_or_default();
                if !versions.split(',').any(|v| v.trim() == "1.2") {
                    return Err(ConnError::Protocol(format!(
                        "this server speaks STOMP 1.2 only; accept-version was {versions:?}"
                    )));
                }
                let beats = heart_beats(frame.get("heart-beat"), options.min_heart_beat)
                    .ok_or_else(|| {
                        ConnError::Protocol(format!(
                            "heart-beat {:?} is not two numbers",
                            frame.get("heart-beat").unwrap_or_default()
                        ))
                    })?;
                self.beats = Some(beats);
                let reply = Frame::new("CONNECTED").header("version", "1.2").header(
                    "heart-beat",
                    &format!(
                        "{},{}",
                        millis(beats.send_every),
                        millis(beats.silent_at_most.map(|d| d * 2 / 3))
                    ),
                );
                self.write(&reply).await?;
                flow = Flow::Connected;
            }
            "SUBSCRIBE" => {
                let (Some(destination), Some(id)) = (frame.get("destination"), frame.get("id"))
                else {
                    return Err(ConnError::Protocol(
                        "SUBSCRIBE needs destination and id".into(),
                    ));
                };
                if self.subscriptions.len() >= options.limits.max_headers {
                    return Err(ConnError::Protocol(format!(
                        "more than {} subscriptions",
                        options.limits.max_headers
                    )));
                }
                self.subscriptions
                    .push((id.to_string(), destination.to_string()));
            }
            "UNSUBSCRIBE" => {
                let Some(id) = frame.get("id") else {
                    return Err(ConnError::Protocol("UNSUBSCRIBE needs id".into()));
                };
                self.subscriptions.retain(|(s, _)| s != id);
            }
            "SEND" => {
                let destination = frame.get("destination").unwrap_or_default();
                if REQUEST_QUEUES.iter().any(|q| destination.starts_with(q)) {
                    let reply_to = frame.get("reply-to").unwrap_or(RESPONSE_QUEUE).to_string();
                    let verbs = verbs.clone();
                    let body = frame.body.clone();
                    calls.spawn_blocking(move || (reply_to, jsonrpc::answer(&body, &*verbs)));
                } else {
                    tracing::debug!(
                        destination,
                        "a message for a destination that is not a request queue, dropped"
                    );
                }
            }
            "DISCONNECT" => flow = Flow::Stop,
            // Acknowledgements and transactions: nothing to do for a request queue.
            "ACK" | "NACK" | "BEGIN" | "COMMIT" | "ABORT" => {}
            other => {
                return Err(ConnError::Protocol(format!(
                    "{other} is not a STOMP 1.2 client frame"
                )));
            }
        }
        if let Some(receipt) = frame.get("receipt") {
            let receipt = Frame::new("RECEIPT").header("receipt-id", receipt);
            self.write(&receipt).await?;
        }
        Ok(flow)
    }

    /// Sends `answer` to every subscription on `destination` (an event that nobody
    /// subscribed to is dropped quietly: not every client wants events).
    async fn reply(
        &mut self,
        destination: &str,
        answer: &serde_json::Value,
    ) -> Result<(), ConnError> {
        let body = serde_json::to_vec(answer)
            .map_err(|e| ConnError::Protocol(format!("encoding an answer: {e}")))?;
        let subscribed: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|(_, d)| d == destination)
            .map(|(id, _)| id.clone())
            .collect();
        if subscribed.is_empty() && destination != EVENT_QUEUE {
            tracing::warn!(
                destination,
                "an answer for a destination nobody subscribed to, dropped"
            );
        }
        for id in subscribed {
            self.messages += 1;
            let message = Frame::new("MESSAGE")
                .header("message-id", &self.messages.to_string())
                .header("destination", destination)
                .header("content-type", "application/json")
                .header("subscription", &id)
                .body(body.clone());
            self.write(&message).await?;
        }
        Ok(())
    }
}

/// The next event, or never when there is no channel.
async fn next_event(
    events: &mut Option<broadcast::Receiver<Event>>,
) -> Result<Event, broadcast::error::RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

enum Flow {
    Go,
    Connected,
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heart_beats_are_mirrored_as_vdsm_does() {
        let min = Duration::from_secs(1);
        let engine = heart_beats(Some("0,15000"), min).unwrap();
        assert_eq!(engine.send_every, Some(Duration::from_secs(15)));
        assert_eq!(engine.silent_at_most, None);
        let client = heart_beats(Some("10,24000"), min).unwrap();
        assert_eq!(client.send_every, Some(Duration::from_secs(24)));
        assert_eq!(client.silent_at_most, Some(Duration::from_millis(1500)));
        assert_eq!(
            heart_beats(None, min).unwrap(),
            HeartBeats {
                send_every: None,
                silent_at_most: None
            }
        );
        assert_eq!(heart_beats(Some("x,1"), min), None);
        assert_eq!(heart_beats(Some("1000"), min), None);
    }

    struct NoVerbs;
    impl Verbs for NoVerbs {
        fn call(
            &self,
            _: &str,
            _: &serde_json::Map<String, serde_json::Value>,
        ) -> Result<serde_json::Value, jsonrpc::RpcError> {
            Ok(serde_json::Value::Bool(true))
        }
    }

    /// Events for other connections' subscriptions write nothing on a
    /// connection that did not subscribe to them: its heart-beats stay due.
    #[test]
    fn a_connection_without_events_gets_its_heart_beats_while_events_flow() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (events, _) = broadcast::channel(16);
            let options = Options {
                min_heart_beat: Duration::from_millis(200),
                events: Some(events.clone()),
                ..Options::default()
            };
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            let served = tokio::spawn(async move {
                serve_connection(server, Arc::new(NoVerbs), &options).await
            });
            client
                .write_all(b"CONNECT\naccept-version:1.2\nheart-beat:0,300\n\n\0SUBSCRIBE\ndestination:jms.topic.vdsm_responses\nid:1\n\n\0")
                .await
                .unwrap();
            let feeder = tokio::spawn(async move {
                loop {
                    let _ = events.send(Event::vm_status("vm", serde_json::json!({}), 0));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let until = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < until {
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(100), client.read(&mut buf)).await
                {
                    got.extend_from_slice(&buf[..n]);
                }
            }
            feeder.abort();
            let text = String::from_utf8_lossy(&got);
            assert!(text.starts_with("CONNECTED\n"), "{text:?}");
            assert!(!text.contains("MESSAGE"), "{text:?}");
            let beats = text.split('\0').nth(1).unwrap_or_default().matches('\n').count();
            assert!(beats >= 3, "{beats} heart-beats in 1.5 s at 300 ms: {text:?}");
            drop(client);
            let _ = served.await;
        });
    }
}
