//! The caps, the choice of the connection to close and the timeouts, each on its own
//! and together on in-memory connections.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Sleep;

use super::*;
use crate::config::Config;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn a_client_over_its_cap_leaves_room_for_others() {
    let c = Connections::new(10, 2);
    let a1 = c.admit(ip("192.0.2.1")).unwrap();
    let _a2 = c.admit(ip("192.0.2.1")).unwrap();
    assert_eq!(c.admit(ip("192.0.2.1")).unwrap_err(), Refused::Client);
    // IPv4 from a dual-stack socket is the same client.
    assert_eq!(
        c.admit(ip("::ffff:192.0.2.1")).unwrap_err(),
        Refused::Client
    );
    let _b = c.admit(ip("192.0.2.2")).unwrap();
    assert_eq!(c.open(), 3);
    drop(a1);
    assert_eq!(c.open(), 2);
    assert_eq!(c.open_for(ip("192.0.2.1")), 1);
    let _a3 = c.admit(ip("192.0.2.1")).unwrap();
}

#[test]
fn an_ipv6_64_is_one_client_and_its_neighbours_are_others() {
    let c = Connections::new(10, 1);
    let _a = c.admit(ip("2001:db8:1:2::1")).unwrap();
    assert_eq!(
        c.admit(ip("2001:db8:1:2:ffff::9")).unwrap_err(),
        Refused::Client
    );
    let _b = c.admit(ip("2001:db8:1:3::1")).unwrap();
}

#[test]
fn the_total_cap_holds_when_all_are_logged_in_and_slots_come_back() {
    let c = Connections::new(3, 3);
    let slots: Vec<Slot> = (1..=3)
        .map(|i| c.admit(ip(&format!("198.51.100.{i}"))).unwrap())
        .collect();
    for s in &slots {
        s.standing().logged_in();
    }
    assert_eq!(c.admit(ip("198.51.100.9")).unwrap_err(), Refused::Full);
    assert_eq!(c.open(), 3, "a refusal takes no place");
    drop(slots);
    assert_eq!(c.open(), 0);
    assert!(c.admit(ip("198.51.100.9")).is_ok());
}

/// Whether `slot`'s connection has been told to close.
fn chosen(slot: &Slot) -> bool {
    use futures_util::FutureExt;
    slot.eviction().chosen().now_or_never().is_some()
}

#[test]
fn a_full_house_closes_its_oldest_connection_not_logged_in() {
    let c = Connections::new(3, 10);
    let admin = c.admit(ip("198.51.100.1")).unwrap();
    let old = c.admit(ip("198.51.100.2")).unwrap();
    let young = c.admit(ip("198.51.100.3")).unwrap();
    // The oldest of all, but logged in.
    admin.standing().logged_in();
    assert_eq!(c.evictable(), 2);
    let newcomer = c.admit(ip("198.51.100.4")).expect("a full house refused");
    assert!(
        chosen(&old),
        "the oldest connection not logged in was not told to close"
    );
    assert!(!chosen(&young) && !chosen(&admin) && !chosen(&newcomer));
    // It counts until its task has closed it.
    assert_eq!((c.open(), c.evictable()), (4, 2));
    drop(old);
    assert_eq!(c.open(), 3);
    // The next newcomer closes the next oldest; the connection chosen before it
    // is never chosen twice.
    let later = c.admit(ip("198.51.100.5")).unwrap();
    assert!(chosen(&young));
    assert!(!chosen(&newcomer) && !chosen(&later) && !chosen(&admin));
    drop(young);
    // A connection that logs in is no longer one to close.
    newcomer.standing().logged_in();
    let last = c.admit(ip("198.51.100.6")).unwrap();
    assert!(chosen(&later));
    assert!(!chosen(&newcomer) && !chosen(&last) && !chosen(&admin));
    drop((later, last, newcomer, admin));
    assert_eq!((c.open(), c.evictable()), (0, 0), "every place came back");
    for i in 1..=6 {
        assert_eq!(c.open_for(ip(&format!("198.51.100.{i}"))), 0);
    }
}

#[test]
fn a_client_over_its_own_cap_closes_nobody() {
    let c = Connections::new(2, 1);
    let a = c.admit(ip("192.0.2.1")).unwrap();
    let b = c.admit(ip("192.0.2.2")).unwrap();
    assert_eq!(c.admit(ip("192.0.2.1")).unwrap_err(), Refused::Client);
    assert!(!chosen(&a) && !chosen(&b));
    assert_eq!(c.open(), 2);
}

#[tokio::test]
async fn a_connection_told_to_close_hears_it_however_late_it_listens() {
    let c = Connections::new(1, 10);
    let victim = c.admit(ip("192.0.2.1")).unwrap();
    let eviction = victim.eviction();
    let _newcomer = c.admit(ip("192.0.2.2")).unwrap();
    tokio::time::timeout(Duration::from_secs(5), eviction.chosen())
        .await
        .expect("the eviction was lost");
}

#[test]
fn a_logged_in_connection_leaves_its_clients_count_once() {
    let c = Connections::new(10, 1);
    let a = c.admit(ip("203.0.113.5")).unwrap();
    let standing = a.standing();
    standing.logged_in();
    standing.logged_in();
    assert_eq!(c.open_for(ip("203.0.113.5")), 0);
    let b = c.admit(ip("203.0.113.5")).unwrap();
    assert_eq!(c.open(), 2);
    drop(a);
    // The first connection's end does not free the second's place.
    assert_eq!(c.open_for(ip("203.0.113.5")), 1);
    drop(b);
    assert_eq!((c.open(), c.open_for(ip("203.0.113.5"))), (0, 0));
    // A request that outlives its connection changes nothing.
    standing.logged_in();
    assert_eq!(c.open(), 0);
}

#[test]
fn the_cap_stays_within_the_descriptor_limit() {
    assert_eq!(cap_within(1024, 8192), 1024);
    assert_eq!(cap_within(1024, 1024), 1024 - FD_RESERVE);
    assert_eq!(cap_within(1024, 300), 150);
    assert_eq!(cap_within(1024, 0), 1);
    let shipped = Config::default();
    assert_eq!(
        cap_within(shipped.max_connections, 8192),
        shipped.max_connections
    );
}

#[tokio::test]
async fn an_idle_connection_times_out_but_not_while_answering_or_upgraded() {
    let keep_alive = Duration::from_millis(100);
    let c = Connections::new(10, 10);
    for case in ["idle", "answering", "upgraded"] {
        let (client, server) = tokio::io::duplex(64);
        let activity = Arc::new(Activity::default());
        let slot = c.admit(ip("192.0.2.7")).unwrap();
        let mut io = Watched::new(server, slot, activity.clone(), keep_alive);
        let in_flight = (case == "answering").then(|| activity.request());
        if case == "upgraded" {
            activity.upgraded();
        }
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_millis(500), io.read(&mut buf)).await;
        match case {
            "idle" => {
                let e = read.unwrap().unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
            }
            _ => assert!(read.is_err(), "{case}: the read ended: {read:?}"),
        }
        drop((client, in_flight));
    }
    assert_eq!(c.open(), 0, "every slot came back with its I/O");
}

#[tokio::test]
async fn bytes_keep_a_connection_busy_until_its_answer_ends() {
    let (mut client, server) = tokio::io::duplex(64);
    let activity = Arc::new(Activity::default());
    let slot = Connections::new(1, 1).admit(ip("192.0.2.8")).unwrap();
    let keep_alive = Duration::from_millis(100);
    let mut io = Watched::new(server, slot, activity.clone(), keep_alive);
    client.write_all(b"GET").await.unwrap();
    let mut buf = [0u8; 3];
    io.read_exact(&mut buf).await.unwrap();
    // Part of a request arrived: hyper's header timeout governs, not this one.
    let wait = tokio::time::timeout(Duration::from_millis(400), io.read(&mut buf)).await;
    assert!(wait.is_err(), "{wait:?}");
    let answer = activity.request();
    drop(answer);
    let e = io.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
}

/// A body that sends `chunks` one by one, each after `pause`, then ends.
#[derive(Debug)]
struct Trickle {
    chunks: usize,
    pause: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Body for Trickle {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.chunks == 0 {
            return Poll::Ready(None);
        }
        let pause = this.pause;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(pause)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.timer = None;
        this.chunks -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
    }
}

async fn collect<B: Body<Data = Bytes> + Unpin>(mut body: B) -> Result<usize, B::Error> {
    let mut n = 0;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        n += frame?.into_data().map_or(0, |d| d.len());
    }
    Ok(n)
}

#[tokio::test]
async fn a_body_is_timed_in_all_and_an_upload_by_its_pauses() {
    let ms = Duration::from_millis;
    let trickle = |chunks, pause| Trickle {
        chunks,
        pause,
        timer: None,
    };
    // Ten chunks 50 ms apart: 500 ms in all, over a total of 200 ms.
    let (body, _) = TimedBody::new(trickle(10, ms(50)), ms(200), ms(150));
    let e = collect(body).await.unwrap_err();
    assert!(matches!(e, BodyError::TooSlow(_)), "{e}");
    assert!(is_body_timeout(&e));
    // The same as an upload: no pause reaches 150 ms.
    let (body, timer) = TimedBody::new(trickle(10, ms(50)), ms(200), ms(150));
    timer.streamed_upload();
    assert_eq!(collect(body).await.unwrap(), 10);
    // An upload that stops.
    let (body, timer) = TimedBody::new(trickle(2, ms(400)), ms(200), ms(150));
    timer.streamed_upload();
    let e = collect(body).await.unwrap_err();
    assert!(matches!(e, BodyError::Stalled(_)), "{e}");
    // A wrapped timeout is still recognised, a read error is not one.
    let wrapped = axum::Error::new(e);
    assert!(is_body_timeout(&wrapped));
    let read = BodyError::Read("reset".into());
    assert!(!is_body_timeout(&read));
}
