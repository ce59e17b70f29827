//! Smoke tests of the simulated AllTick server (`alltick_stream::sim`) with a
//! raw tungstenite client. Every wait is bounded by a deadline.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use alltick_stream::sim::{CloseCause, Reject, SimConfig, Simulator};
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Error, Message, WebSocket};

type Client = WebSocket<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(3);

fn connect(url: &str) -> Client {
    let (mut ws, _) = tungstenite::connect(url).expect("connect to simulator");
    if let MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("set_read_timeout");
    }
    ws
}

fn is_timeout(e: &Error) -> bool {
    matches!(e, Error::Io(io) if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

/// Next JSON text message before `deadline`; None on timeout or end of stream.
fn next_json(ws: &mut Client, deadline: Instant) -> Option<Value> {
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).expect("json")),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Next message that is not a push (a response to a request), collecting pushes.
fn next_reply(ws: &mut Client, deadline: Instant, pushes: &mut Vec<Value>) -> Option<Value> {
    while let Some(v) = next_json(ws, deadline) {
        if v.get("ret").is_some() {
            return Some(v);
        }
        pushes.push(v);
    }
    None
}

fn send(ws: &mut Client, v: Value) {
    ws.send(Message::text(v.to_string())).expect("send");
}

/// Read (collecting pushes) until `until`, i.e. pace requests without sleeping blind.
fn pump_until(ws: &mut Client, until: Instant, pushes: &mut Vec<Value>) {
    while let Some(v) = next_json(ws, until) {
        pushes.push(v);
    }
}

/// Read until the connection ends; returns true if a close frame arrived.
fn read_to_end(ws: &mut Client, deadline: Instant) -> bool {
    let mut got_close = false;
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Close(_)) => got_close = true,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return got_close,
        }
    }
    panic!("connection did not end in time");
}

#[test]
fn heartbeat_subscribe_trades_and_rate_limit() {
    let sim = Simulator::start(SimConfig {
        expected_token: Some("tok".into()),
        ..SimConfig::default()
    })
    .expect("start");
    let mut ws = connect(&format!("{}?token=tok", sim.url()));
    let mut pushes = Vec::new();

    let t0 = Instant::now();
    send(
        &mut ws,
        json!({"cmd_id": 22000, "seq_id": 1, "trace": "hb-1", "data": {}}),
    );
    let r = next_reply(&mut ws, t0 + WAIT, &mut pushes).expect("22001");
    assert_eq!(r["cmd_id"], 22001);
    assert_eq!(r["ret"], 200);
    assert_eq!(r["seq_id"], 1);
    assert_eq!(r["trace"], "hb-1");

    // Respect the 1 s interval (with margin), reading meanwhile.
    pump_until(&mut ws, t0 + Duration::from_millis(1100), &mut pushes);
    send(
        &mut ws,
        json!({"cmd_id": 22004, "seq_id": 2, "trace": "sub-2",
               "data": {"symbol_list": [{"code": "AAPL.US"}, {"code": "700.HK"}]}}),
    );
    let r = next_reply(&mut ws, Instant::now() + WAIT, &mut pushes).expect("22005");
    assert_eq!(r["cmd_id"], 22005);
    assert_eq!(r["ret"], 200);
    assert_eq!(r["seq_id"], 2);
    assert_eq!(r["trace"], "sub-2");

    // Too soon after the subscription: 605.
    send(
        &mut ws,
        json!({"cmd_id": 22000, "seq_id": 3, "trace": "hb-3", "data": {}}),
    );
    let r = next_reply(&mut ws, Instant::now() + WAIT, &mut pushes).expect("605");
    assert_eq!(r["ret"], 605);
    assert_eq!(r["msg"], "too many requests");
    assert_eq!(r["seq_id"], 3);

    // Trades for both codes, with increasing seq.
    let deadline = Instant::now() + WAIT;
    let count = |pushes: &Vec<Value>, code: &str| {
        pushes
            .iter()
            .filter(|p| p["cmd_id"] == 22998 && p["data"]["code"] == code)
            .count()
    };
    while count(&pushes, "AAPL.US") < 2 || count(&pushes, "700.HK") < 2 {
        let v = next_json(&mut ws, deadline).expect("trades for both codes");
        pushes.push(v);
    }
    for code in ["AAPL.US", "700.HK"] {
        let seqs: Vec<u64> = pushes
            .iter()
            .filter(|p| p["cmd_id"] == 22998 && p["data"]["code"] == code)
            .map(|p| {
                let d = &p["data"];
                assert!(d["tick_time"].is_u64(), "tick_time: {d}");
                let price = d["price"].as_str().expect("price string");
                let (_, decimals) = price.split_once('.').expect("price decimals");
                assert_eq!(decimals.len(), 2, "price {price}");
                assert!(price.parse::<f64>().expect("price number") > 0.01);
                assert!(d["volume"].as_str().expect("volume").parse::<u64>().is_ok());
                assert!(d["turnover"].as_str().is_some());
                assert!(d["trade_direction"].as_u64().expect("direction") <= 2);
                d["seq"].as_u64().expect("seq number")
            })
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{code}: {seqs:?}");
    }

    // The simulator recorded the same story.
    assert!(sim.wait_until(WAIT, |s| s.requests.len() >= 3));
    let st = sim.state();
    let cmds: Vec<(u64, u32)> = st.requests.iter().map(|r| (r.cmd_id, r.ret)).collect();
    assert_eq!(cmds, vec![(22000, 200), (22004, 200), (22000, 605)]);
    assert_eq!(st.requests[1].codes(), vec!["AAPL.US", "700.HK"]);
    assert_eq!(st.requests[1].seq_id, Some(2));
    assert_eq!(st.requests[1].trace.as_deref(), Some("sub-2"));
    assert_eq!(st.connections.len(), 1);
    let c = &st.connections[0];
    assert_eq!(c.token.as_deref(), Some("tok"));
    assert!(c.accepted && !c.closed);
    assert_eq!(c.path, "/quote-stock-b-ws-api");
    assert_eq!(c.trade_codes, vec!["AAPL.US", "700.HK"]);
    assert!(st.ticks_for("AAPL.US").len() >= 2 && st.ticks_for("700.HK").len() >= 2);

    // Client close: recorded, and no push is sent after it.
    ws.close(None).expect("close");
    assert!(read_to_end(&mut ws, Instant::now() + WAIT));
    assert!(sim.wait_until(WAIT, |s| s.connections[0].closed));
    let st = sim.state();
    let c = &st.connections[0];
    assert!(c.close_frame_received);
    assert_eq!(c.cause, Some(CloseCause::ClientClose));
    let closed_at = c.closed_at.expect("closed_at");
    assert!(st.ticks.iter().all(|t| t.at <= closed_at));
}

#[test]
fn bad_token_http401_and_ret401() {
    let sim = Simulator::start(SimConfig {
        expected_token: Some("good".into()),
        reject: Reject::Http401,
        ..SimConfig::default()
    })
    .expect("start");
    match tungstenite::connect(format!("{}?token=bad", sim.url())) {
        Err(Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected HTTP 401, got {:?}", other.map(|_| ())),
    }
    assert!(sim.wait_until(WAIT, |s| s.connections.len() == 1
        && s.connections[0].closed));
    let c = sim.state().connections[0].clone();
    assert!(!c.accepted);
    assert_eq!(c.token.as_deref(), Some("bad"));
    assert_eq!(c.cause, Some(CloseCause::TokenRejected));

    let sim = Simulator::start(SimConfig {
        expected_token: Some("good".into()),
        reject: Reject::Ret401,
        ..SimConfig::default()
    })
    .expect("start");
    let mut ws = connect(&sim.url());
    send(
        &mut ws,
        json!({"cmd_id": 22000, "seq_id": 9, "trace": "t", "data": {}}),
    );
    let r = next_json(&mut ws, Instant::now() + WAIT).expect("401 reply");
    assert_eq!(r["ret"], 401);
    assert_eq!(r["seq_id"], 9);
    assert!(read_to_end(&mut ws, Instant::now() + WAIT), "close frame");
    assert!(sim.wait_until(WAIT, |s| s.connections.first().is_some_and(|c| c.closed)));
    assert_eq!(
        sim.state().connections[0].cause,
        Some(CloseCause::TokenRejected)
    );
}

#[test]
fn heartbeat_cutoff_silence_and_drop() {
    let sim = Simulator::start(SimConfig {
        heartbeat_cutoff: Duration::from_millis(300),
        min_request_interval: None,
        ..SimConfig::default()
    })
    .expect("start");

    // No heartbeat: the server closes with a close frame.
    let mut ws = connect(&sim.url());
    assert!(read_to_end(&mut ws, Instant::now() + WAIT), "close frame");
    assert!(sim.wait_until(WAIT, |s| s.connections[0].closed));
    assert_eq!(
        sim.state().connections[0].cause,
        Some(CloseCause::HeartbeatTimeout)
    );

    // Silent: no reply while silent, the reply comes once silence ends.
    let mut ws = connect(&sim.url());
    sim.set_silent(true);
    send(
        &mut ws,
        json!({"cmd_id": 22000, "seq_id": 1, "trace": "s", "data": {}}),
    );
    assert!(next_json(&mut ws, Instant::now() + Duration::from_millis(200)).is_none());
    assert!(sim.state().requests.is_empty());
    sim.set_silent(false);
    let r = next_json(&mut ws, Instant::now() + WAIT).expect("reply after silence");
    assert_eq!(r["cmd_id"], 22001);

    // drop_connections: the connection ends without a close frame.
    sim.drop_connections();
    assert!(
        !read_to_end(&mut ws, Instant::now() + WAIT),
        "no close frame"
    );
    assert!(sim.wait_until(WAIT, |s| s.connections[1].closed));
    assert_eq!(sim.state().connections[1].cause, Some(CloseCause::Dropped));
}
