//! Smoke tests of the simulated AllTick server (`alltick_stream::sim`) with
//! the raw WebSocket client of `util::ws`. Every wait is bounded by a
//! deadline.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use alltick_stream::sim::{
    CloseCause, FOREX_PATH, Inject, OverLimit, Readings, Reject, STOCK_PATH, SeqStyle, SimConfig,
    Simulator, test_certificate,
};
use serde_json::{Value, json};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Error, HandshakeError, Message};

use crate::util::ws::{Client, symbols};
use crate::util::{TempDir, WAIT};

#[test]
fn heartbeat_subscribe_trades_and_rate_limit() {
    let sim = Simulator::start(SimConfig {
        expected_token: Some("tok".into()),
        ..SimConfig::default()
    })
    .expect("start");
    let mut ws = Client::connect(&format!("{}?token=tok", sim.url()));
    let mut pushes = Vec::new();

    let t0 = Instant::now();
    ws.send_json(&json!({"cmd_id": 22000, "seq_id": 1, "trace": "hb-1", "data": {}}));
    let (before, r) = ws.reply();
    pushes.extend(before);
    assert_eq!(r["cmd_id"], 22001);
    assert_eq!(r["ret"], 200);
    assert_eq!(r["seq_id"], 1);
    assert_eq!(r["trace"], "hb-1");

    // Pacing, not a synchronisation: the server's rule is 1 s between
    // requests (kept with a margin), reading meanwhile.
    pushes.extend(ws.frames_until(t0 + Duration::from_millis(1100)));
    ws.send_json(&json!({"cmd_id": 22004, "seq_id": 2, "trace": "sub-2",
               "data": {"symbol_list": [{"code": "AAPL.US"}, {"code": "700.HK"}]}}));
    let (before, r) = ws.reply();
    pushes.extend(before);
    assert_eq!(r["cmd_id"], 22005);
    assert_eq!(r["ret"], 200);
    assert_eq!(r["seq_id"], 2);
    assert_eq!(r["trace"], "sub-2");

    // Too soon after the subscription: 605.
    ws.send_json(&json!({"cmd_id": 22000, "seq_id": 3, "trace": "hb-3", "data": {}}));
    let (before, r) = ws.reply();
    pushes.extend(before);
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
        let v = ws.next_json(deadline).expect("trades for both codes");
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
    ws.close();
    assert!(ws.read_to_end());
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
    let mut ws = Client::connect(&sim.url());
    ws.send_json(&json!({"cmd_id": 22000, "seq_id": 9, "trace": "t", "data": {}}));
    let r = ws.next_json(Instant::now() + WAIT).expect("401 reply");
    assert_eq!(r["ret"], 401);
    assert_eq!(r["seq_id"], 9);
    assert!(ws.read_to_end(), "close frame");
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
    let mut ws = Client::connect(&sim.url());
    assert!(ws.read_to_end(), "close frame");
    assert!(sim.wait_until(WAIT, |s| s.connections[0].closed));
    assert_eq!(
        sim.state().connections[0].cause,
        Some(CloseCause::HeartbeatTimeout)
    );

    // Silent: no reply while silent, the reply comes once silence ends.
    let mut ws = Client::connect(&sim.url());
    sim.set_silent(true);
    ws.send_json(&json!({"cmd_id": 22000, "seq_id": 1, "trace": "s", "data": {}}));
    assert!(
        ws.next_json(Instant::now() + Duration::from_millis(200))
            .is_none()
    );
    assert!(sim.state().requests.is_empty());
    sim.set_silent(false);
    let r = ws
        .next_json(Instant::now() + WAIT)
        .expect("reply after silence");
    assert_eq!(r["cmd_id"], 22001);

    // drop_connections: the connection ends without a close frame.
    sim.drop_connections();
    assert!(!ws.read_to_end(), "no close frame");
    assert!(sim.wait_until(WAIT, |s| s.connections[1].closed));
    assert_eq!(sim.state().connections[1].cause, Some(CloseCause::Dropped));
}

// ---------------------------------------------------------------------------
// Fault injection

/// A simulator without pushes or rate limit, so requests can follow each
/// other at once.
fn quiet_sim() -> Simulator {
    Simulator::start(SimConfig {
        ticks_per_sec: 0.0,
        min_request_interval: None,
        ..SimConfig::default()
    })
    .expect("start")
}

/// Wait until the simulator shows `n` open connections (commands such as
/// close_connections reach only those).
fn wait_open(sim: &Simulator, n: usize) {
    assert!(
        sim.wait_until(WAIT, |s| s.open_connections().len() == n),
        "{n} open connections: {:?}",
        sim.state().connections
    );
}

/// Wait until connection `id` is closed with `cause`.
fn wait_cause(sim: &Simulator, id: u64, cause: CloseCause) {
    let ok = sim.wait_until(WAIT, |s| {
        s.conn(id)
            .is_some_and(|c| c.closed && c.cause.as_ref() == Some(&cause))
    });
    assert!(ok, "conn {id} cause {cause:?}: {:?}", sim.state().conn(id));
}

fn assert_close(frame: Option<CloseFrame>, code: u16, reason: &str) {
    let frame = frame.expect("close frame with a code");
    assert_eq!(u16::from(frame.code), code);
    assert_eq!(frame.reason.as_str(), reason);
}

#[test]
fn close_connections_sends_close_frame() {
    let sim = quiet_sim();
    let mut ws = Client::connect(&sim.url());
    wait_open(&sim, 1);
    sim.close_connections(1011, "internal error");
    assert_close(ws.close_frame(), 1011, "internal error");
    // tungstenite replied to the close; the connection then ends.
    ws.read_to_end();
    wait_cause(&sim, 1, CloseCause::ServerClose(1011));
    assert!(sim.state().connections[0].close_frame_received);
}

#[test]
fn reset_connections_gives_econnreset() {
    let sim = quiet_sim();
    let mut ws = Client::connect(&sim.url());
    wait_open(&sim, 1);
    sim.reset_connections();
    // The simulator pings; our automatic pong is the unread data that makes
    // the kernel answer the close with RST.
    match ws.error() {
        Error::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        other => panic!("expected ECONNRESET, got {other:?}"),
    }
    wait_cause(&sim, 1, CloseCause::Reset);
}

#[test]
fn inject_raw_frames() {
    let sim = quiet_sim();
    let mut ws = Client::connect(&sim.url());
    wait_open(&sim, 1);
    sim.inject(Inject::Text("{not json".into()));
    assert_eq!(ws.message(), Message::text("{not json"));
    sim.inject(Inject::Binary(vec![0, 1, 0xff]));
    assert_eq!(ws.message(), Message::binary(vec![0, 1, 0xff]));
    sim.inject(Inject::InvalidUtf8(vec![b'{', 0xff, 0xfe, b'}']));
    match ws.error() {
        Error::Utf8(_) => {}
        other => panic!("expected a UTF-8 error, got {other:?}"),
    }
    drop(ws);
    wait_cause(&sim, 1, CloseCause::PeerGone);

    // A 64 MiB frame against a client limited to 1 MiB frames.
    let config = WebSocketConfig::default()
        .max_frame_size(Some(1 << 20))
        .max_message_size(Some(1 << 20));
    let mut ws = Client::connect_with(&sim.url(), config);
    wait_open(&sim, 1);
    sim.inject(Inject::Huge(64 << 20));
    match ws.error() {
        Error::Capacity(_) => {}
        other => panic!("expected a capacity error, got {other:?}"),
    }
    drop(ws);
    assert!(sim.wait_until(WAIT, |s| s.injected.len() == 4 && s.connections[1].closed));
    let st = sim.state();
    let kinds: Vec<(u64, &Inject, bool)> = st
        .injected
        .iter()
        .map(|i| (i.conn, &i.frame, i.written))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, &Inject::Text("{not json".into()), true),
            (1, &Inject::Binary(vec![0, 1, 0xff]), true),
            (1, &Inject::InvalidUtf8(vec![b'{', 0xff, 0xfe, b'}']), true),
            (2, &Inject::Huge(64 << 20), false),
        ]
    );
}

#[test]
fn fail_next_answers_error_rets() {
    let sim = quiet_sim();
    let mut ws = Client::connect(&sim.url());
    sim.fail_next(22000, 605, 1);
    let r = ws.call(22000, json!({}));
    assert_eq!(
        (r["ret"].as_u64(), r["msg"].as_str()),
        (Some(605), Some("too many requests"))
    );
    let r = ws.call(22000, json!({}));
    assert_eq!(r["ret"], 200);

    // 606: answered, then closed with 1008.
    sim.fail_next(22004, 606, 1);
    let r = ws.call(22004, symbols(&["AAPL.US"]));
    assert_eq!(r["ret"], 606);
    assert_eq!(r["msg"], "too many requests and connection will be closed");
    assert_close(ws.close_frame(), 1008, "too many requests");
    wait_cause(&sim, 1, CloseCause::ServerClose(1008));
    let st = sim.state();
    let rets: Vec<(u64, u32)> = st.requests.iter().map(|r| (r.cmd_id, r.ret)).collect();
    assert_eq!(rets, vec![(22000, 605), (22000, 200), (22004, 606)]);
    assert!(st.connections[0].trade_codes.is_empty());
}

#[test]
fn refused_codes_and_symbol_limit_leave_the_set_unchanged() {
    let sim = quiet_sim();
    sim.refuse_codes(&["BAD.US"], 600);
    sim.set_max_symbols(Some(2));
    let mut ws = Client::connect(&sim.url());
    assert_eq!(ws.call(22004, symbols(&["AAPL.US"]))["ret"], 200);

    let r = ws.call(22004, symbols(&["AAPL.US", "BAD.US"]));
    assert_eq!(
        (r["ret"].as_u64(), r["msg"].as_str()),
        (Some(600), Some("code invalid"))
    );
    let r = ws.call(22002, symbols(&["BAD.US"]));
    assert_eq!(r["ret"], 600);
    let r = ws.call(22004, symbols(&["AAPL.US", "TSLA.US", "700.HK"]));
    assert_eq!(
        (r["ret"].as_u64(), r["msg"].as_str()),
        (Some(603), Some("token level not enough"))
    );
    sim.refuse_codes(&["700.HK"], 604);
    let r = ws.call(22004, symbols(&["700.HK"]));
    assert_eq!(
        (r["ret"].as_u64(), r["msg"].as_str()),
        (Some(604), Some("code unauthorized"))
    );

    let st = sim.state();
    assert_eq!(st.connections[0].trade_codes, vec!["AAPL.US"]);
    assert!(st.connections[0].depth_codes.is_empty());
    let rets: Vec<u32> = st.requests.iter().map(|r| r.ret).collect();
    assert_eq!(rets, vec![200, 600, 600, 603, 604]);

    // Within the limit and without refused codes: accepted.
    sim.refuse_codes(&["BAD.US"], 200);
    let r = ws.call(22004, symbols(&["AAPL.US", "BAD.US"]));
    assert_eq!(r["ret"], 200);
    assert!(sim.wait_until(WAIT, |s| s.connections[0].trade_codes
        == ["AAPL.US", "BAD.US"]));
}

#[test]
fn connection_limit_per_token() {
    let sim = quiet_sim();
    let release = Duration::from_millis(1500);
    sim.set_connection_limit(Some(1), release);
    let url = format!("{}?token=t", sim.url());
    let mut first = Client::connect(&url);
    wait_open(&sim, 1);

    // A second connection with the same token: upgraded, then closed.
    let mut second = Client::connect(&url);
    assert_close(second.close_frame(), 1008, "too many connections");
    wait_cause(&sim, 2, CloseCause::TooManyConnections);
    // Another token is counted separately.
    let mut other = Client::connect(&format!("{}?token=u", sim.url()));
    assert_eq!(other.call(22000, json!({}))["ret"], 200);

    // The first one closes, but keeps counting for `release`.
    first.close();
    first.read_to_end();
    wait_cause(&sim, 1, CloseCause::ClientClose);
    let closed_at = sim.state().connections[0].closed_at.expect("closed_at");
    let mut early = Client::connect(&url);
    assert_close(early.close_frame(), 1008, "too many connections");
    wait_cause(&sim, 4, CloseCause::TooManyConnections);
    assert!(
        closed_at.elapsed() < release,
        "test too slow to check the delay"
    );

    // After the release delay (a simulated clock, not a synchronisation),
    // the token may connect again.
    std::thread::sleep((closed_at + release).saturating_duration_since(Instant::now()));
    let mut late = Client::connect(&url);
    assert_eq!(late.call(22000, json!({}))["ret"], 200);
    let st = sim.state();
    assert!(st.conn(5).is_some_and(|c| c.accepted && !c.closed));
}

#[test]
fn drop_after_ack_drops_without_close_frame() {
    let sim = quiet_sim();
    let delay = Duration::from_millis(300);
    sim.set_drop_after_ack(Some(delay));
    let mut ws = Client::connect(&sim.url());
    // A heartbeat is not an ack.
    assert_eq!(ws.call(22000, json!({}))["ret"], 200);
    assert_eq!(ws.call(22004, symbols(&["AAPL.US"]))["ret"], 200);
    assert!(!ws.read_to_end(), "no close frame");
    wait_cause(&sim, 1, CloseCause::Dropped);
    let st = sim.state();
    let acked = st.requests[1].at;
    assert!(st.connections[0].closed_at.expect("closed_at") >= acked + delay);
}

fn handshake_status(status: u16) {
    let sim = quiet_sim();
    sim.set_handshake_status(Some(status));
    match tungstenite::connect(sim.url()) {
        Err(Error::Http(resp)) => assert_eq!(resp.status(), status),
        other => panic!("expected HTTP {status}, got {:?}", other.map(|_| ())),
    }
    wait_cause(&sim, 1, CloseCause::HandshakeStatus(status));
    assert!(!sim.state().connections[0].accepted);
    sim.set_handshake_status(None);
    let mut ws = Client::connect(&sim.url());
    assert_eq!(ws.call(22000, json!({}))["ret"], 200);
}

#[test]
fn handshake_status_500() {
    handshake_status(500);
}

#[test]
fn handshake_status_403() {
    handshake_status(403);
}

#[test]
fn tls_with_test_certificate() {
    if !crate::util::require("openssl") {
        return;
    }
    let dir = TempDir::new("sim-smoke-tls");
    let (identity, ca) = test_certificate(dir.path()).expect("test certificate (openssl CLI)");
    let ca_pem = std::fs::read(&ca).expect("read CA");
    drop(dir);
    let sim = Simulator::start(SimConfig {
        tls: Some(identity),
        ticks_per_sec: 0.0,
        ..SimConfig::default()
    })
    .expect("start");
    let url = sim.url();
    assert_eq!(
        url,
        format!("wss://localhost:{}/quote-stock-b-ws-api", sim.port())
    );
    // No read timeout before the TLS handshake completes (tungstenite would
    // panic); the simulator bounds its side of the handshake.
    let tcp = || TcpStream::connect(("127.0.0.1", sim.port())).expect("tcp connect");

    // Not trusted without the CA.
    let plain = native_tls::TlsConnector::new().expect("connector");
    match tungstenite::client_tls_with_config(
        url.as_str(),
        tcp(),
        None,
        Some(Connector::NativeTls(plain)),
    ) {
        Err(HandshakeError::Failure(Error::Tls(e))) => {
            assert!(e.to_string().contains("certificate verify failed"), "{e}")
        }
        other => panic!(
            "expected an untrusted certificate, got {:?}",
            other.map(|_| ())
        ),
    }
    assert!(sim.wait_until(WAIT, |s| s.connections.first().is_some_and(|c| c.closed)));
    assert!(matches!(
        sim.state().connections[0].cause,
        Some(CloseCause::HandshakeFailed(_))
    ));

    // Trusted with the CA as a root.
    let trusted = native_tls::TlsConnector::builder()
        .add_root_certificate(native_tls::Certificate::from_pem(&ca_pem).expect("CA pem"))
        .build()
        .expect("connector");
    let (ws, _) = tungstenite::client_tls_with_config(
        url.as_str(),
        tcp(),
        None,
        Some(Connector::NativeTls(trusted)),
    )
    .expect("TLS connect");
    assert!(
        matches!(ws.get_ref(), MaybeTlsStream::NativeTls(_)),
        "not a TLS stream"
    );
    let mut ws = Client::wrap(ws);
    let r = ws.call(22000, json!({}));
    assert_eq!(r["ret"], 200);
    let st = sim.state();
    assert_eq!(st.connections.len(), 2);
    assert!(st.connections[1].accepted);
    assert_eq!(st.requests.len(), 1);
}

#[test]
fn start_on_the_same_port_after_drop() {
    let cfg = SimConfig {
        ticks_per_sec: 0.0,
        min_request_interval: None,
        ..SimConfig::default()
    };
    let sim = Simulator::start(cfg.clone()).expect("start");
    let port = sim.port();
    let mut ws = Client::connect(&sim.url());
    assert_eq!(ws.call(22000, json!({}))["ret"], 200);
    drop(sim);
    // The server went away first (its side of the connection is in TIME_WAIT).
    ws.read_to_end();

    let sim = Simulator::start_on(port, cfg).expect("restart on the same port");
    assert_eq!(sim.port(), port);
    let mut ws = Client::connect(&sim.url());
    assert_eq!(ws.call(22000, json!({}))["ret"], 200);
}

#[test]
fn set_ticks_per_sec_at_runtime() {
    let sim = quiet_sim();
    let mut ws = Client::connect(&sim.url());
    assert_eq!(ws.call(22004, symbols(&["AAPL.US", "TSLA.US"]))["ret"], 200);
    sim.set_ticks_per_sec(50.0);
    let mut pushes = Vec::new();
    let deadline = Instant::now() + WAIT;
    while pushes.len() < 6 {
        pushes.push(
            ws.next_json(deadline)
                .expect("pushes after the rate change"),
        );
    }
    assert!(pushes.iter().all(|p| p["cmd_id"] == 22998));
    for code in ["AAPL.US", "TSLA.US"] {
        assert!(pushes.iter().any(|p| p["data"]["code"] == code), "{code}");
    }
    // Back to 0: the connection sees the change by the time it answers the
    // next request, and pushes nothing after that.
    sim.set_ticks_per_sec(0.0);
    ws.call(22000, json!({}));
    let n = sim.state().ticks.len();
    ws.call(22000, json!({}));
    assert_eq!(sim.state().ticks.len(), n);
}

// ---------------------------------------------------------------------------
// Readings: each switch really changes what goes on the wire.

fn readings_sim(readings: Readings, ticks_per_sec: f64) -> Simulator {
    Simulator::start(SimConfig {
        ticks_per_sec,
        min_request_interval: None,
        readings,
        ..SimConfig::default()
    })
    .expect("start")
}

fn seq_u64(push: &Value) -> u64 {
    push["data"]["seq"].as_u64().expect("seq number")
}

#[test]
fn default_seq_is_a_per_code_counter_not_time_like() {
    assert_eq!(SimConfig::default().readings.seq, SeqStyle::Counter);
    let sim = readings_sim(Readings::default(), 50.0);
    let mut ws = Client::connect(&sim.url());
    ws.call(22004, symbols(&["AAPL.US"]));
    let pushes = ws.trades(5);
    let seqs: Vec<u64> = pushes.iter().map(seq_u64).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    // Not time-like: far below a millisecond time × 1000 and unrelated to tick_time.
    let tick_time = pushes[0]["data"]["tick_time"].as_u64().expect("tick_time");
    assert!(
        tick_time > 1_000_000_000_000,
        "tick_time in ms: {tick_time}"
    );
    assert!(seqs[0] < tick_time, "{seqs:?} vs {tick_time}");
    // A price is a string, and the simulator recorded what it sent.
    assert!(pushes[0]["data"]["price"].is_string());
    let st = sim.state();
    let recorded: Vec<u64> = st.ticks.iter().take(5).map(|t| t.seq).collect();
    assert_eq!(recorded, seqs);
    assert_eq!(st.ticks[0].tick_time, tick_time);
    assert_eq!(st.ticks[0].time_ms, tick_time);
    assert_eq!(pushes[0]["data"]["price"], st.ticks[0].price.as_str());
    assert_eq!(pushes[0]["data"]["volume"], st.ticks[0].volume.as_str());
}

#[test]
fn time_like_seq_is_still_available() {
    let sim = readings_sim(
        Readings {
            seq: SeqStyle::TimeLike,
            ..Readings::default()
        },
        50.0,
    );
    let mut ws = Client::connect(&sim.url());
    ws.call(22004, symbols(&["AAPL.US"]));
    let pushes = ws.trades(3);
    for p in &pushes {
        let tick_time = p["data"]["tick_time"].as_u64().expect("tick_time");
        assert!(seq_u64(p) > tick_time * 1000, "{p}");
    }
    let seqs: Vec<u64> = pushes.iter().map(seq_u64).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[test]
fn per_connection_seq_restarts_on_each_new_connection() {
    // Switched at runtime: the first connection numbers with the default counter.
    let sim = readings_sim(Readings::default(), 50.0);
    let mut first = Client::connect(&sim.url());
    first.call(22004, symbols(&["AAPL.US"]));
    let before = first.trades(3);
    let high = seq_u64(&before[2]);
    let t_before = before[2]["data"]["tick_time"].as_u64().expect("tick_time");
    sim.set_readings(Readings {
        seq: SeqStyle::PerConnection,
        ..Readings::default()
    });
    assert_eq!(sim.readings().seq, SeqStyle::PerConnection);
    sim.drop_connections();
    first.read_to_end();

    for conn in [2, 3] {
        let mut ws = Client::connect(&sim.url());
        ws.call(22004, symbols(&["AAPL.US"]));
        let after = ws.trades(3);
        let seqs: Vec<u64> = after.iter().map(seq_u64).collect();
        assert_eq!(seqs, vec![1, 2, 3], "connection {conn}");
        assert!(seqs[0] < high);
        let t_after = after[0]["data"]["tick_time"].as_u64().expect("tick_time");
        assert!(t_after >= t_before, "tick_time stays real time");
        let st = sim.state();
        let recorded: Vec<u64> = st
            .ticks
            .iter()
            .filter(|t| t.conn == conn)
            .take(3)
            .map(|t| t.seq)
            .collect();
        assert_eq!(recorded, vec![1, 2, 3]);
        sim.drop_connections();
        ws.read_to_end();
    }
}

#[test]
fn seq_as_a_string_counter() {
    let sim = readings_sim(
        Readings {
            seq_as_string: true,
            ..Readings::default()
        },
        50.0,
    );
    let mut ws = Client::connect(&sim.url());
    ws.call(22004, symbols(&["AAPL.US"]));
    let pushes = ws.trades(3);
    let seqs: Vec<u64> = pushes
        .iter()
        .map(|p| {
            let s = p["data"]["seq"].as_str().expect("seq string");
            s.parse().expect("digits")
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let recorded: Vec<u64> = sim.state().ticks.iter().take(3).map(|t| t.seq).collect();
    assert_eq!(recorded, seqs);
}

#[test]
fn tick_time_in_seconds_shared_by_several_ticks() {
    let sim = readings_sim(
        Readings {
            tick_time_seconds: true,
            ..Readings::default()
        },
        50.0,
    );
    let mut ws = Client::connect(&sim.url());
    ws.call(22004, symbols(&["AAPL.US"]));
    let pushes = ws.trades(10);
    let times: Vec<u64> = pushes
        .iter()
        .map(|p| p["data"]["tick_time"].as_u64().expect("tick_time"))
        .collect();
    for t in &times {
        assert_eq!(t.to_string().len(), 10, "seconds: {t}");
    }
    // 10 ticks at 50/s span at most two seconds: some share one.
    assert!(times.windows(2).any(|w| w[0] == w[1]), "{times:?}");
    let st = sim.state();
    for t in st.ticks.iter().take(10) {
        assert_eq!(t.tick_time, t.time_ms / 1000);
    }
}

#[test]
fn numbers_as_json_numbers_keep_their_digits() {
    let sim = readings_sim(
        Readings {
            numbers_as_json: true,
            ..Readings::default()
        },
        200.0,
    );
    let mut ws = Client::connect(&sim.url());
    ws.call(22004, symbols(&["AAPL.US", "TSLA.US", "IBM.US", "700.HK"]));
    // Prices carry two decimals; within a bound one ends in 0 (x.y0).
    let deadline = Instant::now() + WAIT;
    let mut seen = 0;
    let (text, price) = loop {
        let text = ws.push_text(22998, deadline);
        seen += 1;
        let v: Value = serde_json::from_str(&text).expect("json");
        assert!(v["data"]["price"].is_number(), "{text}");
        assert!(v["data"]["volume"].is_number(), "{text}");
        assert!(v["data"]["turnover"].is_number(), "{text}");
        let (code, seq) = (v["data"]["code"].clone(), seq_u64(&v));
        let st = sim.state();
        let sent = st
            .ticks
            .iter()
            .find(|t| t.code == code && t.seq == seq)
            .expect("recorded");
        assert!(
            text.contains(&format!("\"price\":{},", sent.price)),
            "{text} vs {}",
            sent.price
        );
        if sent.price.ends_with('0') {
            break (text, sent.price.clone());
        }
    };
    assert!(text.contains(&format!("\"price\":{price},")), "{text}");
    assert!(seen <= 2_000, "a trailing zero only after {seen} pushes");
}

#[test]
fn error_answers_carry_seq_id_zero() {
    let sim = readings_sim(
        Readings {
            error_seq_id_zero: true,
            ..Readings::default()
        },
        0.0,
    );
    let mut ws = Client::connect(&sim.url());
    sim.fail_next(22004, 429, 1);
    ws.send_json(
        &json!({"cmd_id": 22004, "seq_id": 7, "trace": "t7", "data": symbols(&["AAPL.US"])}),
    );
    let (_, r) = ws.reply();
    assert_eq!(
        (r["ret"].as_u64(), r["cmd_id"].as_u64()),
        (Some(429), Some(22005))
    );
    assert_eq!(r["seq_id"], 0, "{r}");
    // Success still echoes the request's seq_id.
    let r = ws.call(22004, symbols(&["AAPL.US"]));
    assert_eq!(r["ret"], 200);
    // And back to echoing for errors once switched off.
    sim.set_readings(Readings::default());
    sim.fail_next(22004, 429, 1);
    let r = ws.call(22004, symbols(&["AAPL.US"]));
    assert_eq!(r["ret"], 429);
}

#[test]
fn padded_depth_levels_mixed_with_good_ones() {
    let sim = readings_sim(
        Readings {
            padded_depth: true,
            ..Readings::default()
        },
        50.0,
    );
    let mut ws = Client::connect(&sim.url());
    ws.call(
        22002,
        json!({"symbol_list": [{"code": "700.HK", "depth_level": 5}]}),
    );
    let deadline = Instant::now() + WAIT;
    let mut kinds = std::collections::HashSet::new();
    for _ in 0..3 {
        let text = ws.push_text(22999, deadline);
        let v: Value = serde_json::from_str(&text).expect("json");
        let d = &v["data"];
        let mut good = 0;
        let mut bad = 0;
        for side in ["bids", "asks"] {
            for level in d[side].as_array().expect("levels") {
                let price = level["price"].as_str().expect("price string");
                let volume = level.get("volume").and_then(Value::as_str);
                if price.is_empty() || price == "0" {
                    bad += 1;
                    kinds.insert(match volume {
                        None => "missing volume",
                        Some("") => "empty",
                        Some(_) => "zero",
                    });
                } else {
                    assert!(price.parse::<f64>().expect("price") > 0.0);
                    good += 1;
                }
            }
        }
        assert!(good >= 5 && bad >= 2, "{text}");
        let st = sim.state();
        let sent = st
            .depth_pushes
            .iter()
            .find(|p| p.seq == d["seq"].as_u64().expect("seq"))
            .expect("recorded");
        assert_eq!(sent.bad_levels, bad, "{text}");
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

#[test]
fn each_endpoint_serves_its_own_market() {
    let sim = quiet_sim();
    assert_eq!(sim.url_for(STOCK_PATH), sim.url());
    let mut stock = Client::connect(&sim.url());
    let mut forex = Client::connect(&sim.url_for(FOREX_PATH));
    let mut any = Client::connect(&sim.url_for("/elsewhere"));
    wait_open(&sim, 3);

    let ret =
        |ws: &mut Client, cmd: u64, codes: &[&str]| ws.call(cmd, symbols(codes))["ret"].as_u64();
    assert_eq!(ret(&mut stock, 22004, &["AAPL.US", "700.HK"]), Some(200));
    assert_eq!(ret(&mut stock, 22004, &["AAPL.US", "BTCUSDT"]), Some(600));
    assert_eq!(ret(&mut stock, 22002, &["EURUSD"]), Some(600));
    assert_eq!(ret(&mut forex, 22004, &["BTCUSDT", "Silver"]), Some(200));
    assert_eq!(ret(&mut forex, 22004, &["BTCUSDT", "AAPL.US"]), Some(600));
    assert_eq!(ret(&mut forex, 22002, &["600519.SH"]), Some(600));
    assert_eq!(ret(&mut any, 22004, &["AAPL.US", "BTCUSDT"]), Some(200));

    let st = sim.state();
    let paths: Vec<&str> = st.connections.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, [STOCK_PATH, FOREX_PATH, "/elsewhere"]);
    // A refused request leaves the set as it was.
    assert_eq!(st.connections[0].trade_codes, ["AAPL.US", "700.HK"]);
    assert_eq!(st.connections[1].trade_codes, ["BTCUSDT", "Silver"]);
    assert_eq!(st.connections[2].trade_codes, ["AAPL.US", "BTCUSDT"]);
    let r = st.requests.iter().find(|r| r.ret == 600).expect("a 600");
    assert_eq!(r.conn, 1);

    // Switched off: any code on any path.
    sim.set_market_check(false);
    assert_eq!(ret(&mut stock, 22004, &["AAPL.US", "BTCUSDT"]), Some(200));
    assert_eq!(ret(&mut forex, 22002, &["AAPL.US"]), Some(200));
    sim.set_market_check(true);
    assert_eq!(ret(&mut stock, 22004, &["EURUSD"]), Some(600));
}

#[test]
fn over_limit_serves_only_the_first_n_codes() {
    let sim = Simulator::start(SimConfig {
        ticks_per_sec: 50.0,
        min_request_interval: None,
        ..SimConfig::default()
    })
    .expect("start");
    sim.set_max_symbols(Some(2));
    sim.set_over_limit(OverLimit::ServeFirst);
    let mut ws = Client::connect(&sim.url());
    let r = ws.call(22004, symbols(&["AAPL.US", "TSLA.US", "IBM.US", "700.HK"]));
    assert_eq!(
        (r["ret"].as_u64(), r["msg"].as_str()),
        (Some(200), Some("ok"))
    );
    // Depth has its own limit of 2.
    let r = ws.call(22002, symbols(&["9988.HK", "700.HK", "1.HK"]));
    assert_eq!(r["ret"], 200);
    let st = sim.state();
    assert_eq!(st.connections[0].trade_codes, ["AAPL.US", "TSLA.US"]);
    assert_eq!(st.connections[0].depth_codes, ["9988.HK", "700.HK"]);

    // Pushes: only the served codes, each of them.
    assert!(sim.wait_until(WAIT, |s| {
        ["AAPL.US", "TSLA.US"]
            .iter()
            .all(|c| s.ticks.iter().filter(|t| t.code == *c).count() >= 5)
            && ["9988.HK", "700.HK"]
                .iter()
                .all(|c| s.depth_pushes.iter().any(|t| t.code == *c))
    }));
    let st = sim.state();
    assert!(
        st.ticks
            .iter()
            .all(|t| ["AAPL.US", "TSLA.US"].contains(&t.code.as_str()))
    );
    assert!(
        st.depth_pushes
            .iter()
            .all(|t| ["9988.HK", "700.HK"].contains(&t.code.as_str()))
    );

    // Back to the default: over the limit is refused with 603.
    sim.set_over_limit(OverLimit::Refuse);
    let r = ws.call(22004, symbols(&["A.US", "B.US", "C.US"]));
    assert_eq!(r["ret"], 603);
    assert_eq!(
        sim.state().connections[0].trade_codes,
        ["AAPL.US", "TSLA.US"]
    );
}

#[test]
fn drop_connection_drops_that_one_only() {
    let sim = quiet_sim();
    let mut first = Client::connect(&sim.url());
    let mut second = Client::connect(&sim.url());
    wait_open(&sim, 2);
    assert!(!sim.drop_connection(99), "no such connection");
    assert!(sim.drop_connection(1));
    assert!(!first.read_to_end(), "no close frame");
    wait_cause(&sim, 1, CloseCause::Dropped);
    // The other one still answers.
    assert_eq!(second.call(22000, json!({}))["ret"], 200);
    let st = sim.state();
    assert!(st.conn(2).is_some_and(|c| c.accepted && !c.closed));
    assert!(!sim.drop_connection(1), "already gone");
}

#[test]
fn cut_every_flushes_then_shuts_tcp_down() {
    let sim = readings_sim(Readings::default(), 500.0);
    let every = Duration::from_millis(400);
    sim.set_cut_every(Some(every));
    let mut ws = Client::connect(&sim.url());
    ws.call(22004, symbols(&["AAPL.US", "TSLA.US"]));
    let (got, close) = ws.read_all_to_end();
    assert!(!close, "no close frame");
    wait_cause(&sim, 1, CloseCause::Cut);
    let st = sim.state();
    let c = st.conn(1).expect("conn 1");
    assert!(c.closed_at.expect("closed_at") >= c.opened_at + every);
    // Everything recorded as sent on it arrived: the cut came after a flush.
    let sent: Vec<(String, u64)> = st.ticks.iter().map(|t| (t.code.clone(), t.seq)).collect();
    let received: Vec<(String, u64)> = got
        .iter()
        .filter(|v| v["cmd_id"] == 22998)
        .map(|v| {
            (
                v["data"]["code"].as_str().unwrap_or("").to_owned(),
                seq_u64(v),
            )
        })
        .collect();
    assert!(sent.len() > 20, "{} pushes", sent.len());
    assert_eq!(received, sent);
    // Switched off, the next connection outlives the period.
    sim.set_cut_every(None);
    let mut ws = Client::connect(&sim.url());
    ws.call(22004, symbols(&["AAPL.US"]));
    let opened = Instant::now();
    // A measuring window, not a synchronisation: the connection must
    // outlive two periods (reading meanwhile).
    ws.frames_until(opened + every * 2);
    assert!(sim.state().conn(2).is_some_and(|c| !c.closed));
    assert_eq!(ws.call(22000, json!({}))["ret"], 200);
}

/// The last trade the simulator pushed for `code`.
fn last_pushed(sim: &Simulator, code: &str) -> alltick_stream::sim::SentTick {
    sim.state()
        .ticks_for(code)
        .last()
        .map(|t| (*t).clone())
        .expect("a trade pushed")
}

/// Close `ws` and wait until the simulator has finished connection `id`,
/// so that no push of it comes later.
fn close_and_wait(sim: &Simulator, mut ws: Client, id: u64) {
    ws.close();
    ws.read_to_end();
    wait_cause(sim, id, CloseCause::ClientClose);
}

#[test]
fn repush_last_trade_on_subscription_repeats_it_exactly() {
    // Off by default: a new subscription starts with a new trade.
    assert!(!Readings::default().repush_last_trade);
    let sim = readings_sim(Readings::default(), 50.0);
    let mut first = Client::connect(&sim.url());
    first.call(22004, symbols(&["AAPL.US", "TSLA.US"]));
    first.trades(4);
    close_and_wait(&sim, first, 1);
    let last = last_pushed(&sim, "AAPL.US");
    let mut second = Client::connect(&sim.url());
    second.call(22004, symbols(&["AAPL.US"]));
    let next = &second.trades(1)[0];
    assert!(seq_u64(next) > last.seq, "{next} after {last:?}");
    close_and_wait(&sim, second, 2);

    // On at runtime: the next subscription gets the last trade again.
    sim.set_readings(Readings {
        repush_last_trade: true,
        ..Readings::default()
    });
    let (aapl, tsla) = (last_pushed(&sim, "AAPL.US"), last_pushed(&sim, "TSLA.US"));
    let mut third = Client::connect(&sim.url());
    third.call(22004, symbols(&["AAPL.US"]));
    let text = third.push_text(22998, Instant::now() + WAIT);
    let again: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(again["data"]["code"], "AAPL.US");
    assert_eq!(seq_u64(&again), aapl.seq);
    assert_eq!(again["data"]["tick_time"], aapl.tick_time);
    assert_eq!(again["data"]["price"], aapl.price.as_str());
    assert_eq!(again["data"]["volume"], aapl.volume.as_str());
    // Then the code streams on from there.
    let next = &third.trades(1)[0];
    assert!(seq_u64(next) > aapl.seq, "{next}");
    // Only a code new to the set is pushed again: TSLA, not AAPL.
    third.call(22004, symbols(&["AAPL.US", "TSLA.US"]));
    // Recorded just after the answer went out.
    assert!(sim.wait_until(WAIT, |s| s.repushes.len() >= 2));
    let st = sim.state();
    let repushed: Vec<(u64, String, u64)> = st
        .repushes
        .iter()
        .map(|t| (t.conn, t.code.clone(), t.seq))
        .collect();
    assert_eq!(
        repushed,
        vec![
            (3, "AAPL.US".into(), aapl.seq),
            (3, "TSLA.US".into(), tsla.seq)
        ]
    );
    // Re-pushes are not counted as new trades.
    assert_eq!(
        st.ticks
            .iter()
            .filter(|t| t.seq == aapl.seq && t.code == "AAPL.US")
            .count(),
        1
    );
}

#[test]
fn repush_last_trade_set_at_start() {
    let sim = readings_sim(
        Readings {
            repush_last_trade: true,
            ..Readings::default()
        },
        50.0,
    );
    let mut first = Client::connect(&sim.url());
    // Nothing pushed yet: nothing to push again.
    first.call(22004, symbols(&["AAPL.US"]));
    first.trades(3);
    assert!(sim.state().repushes.is_empty());
    close_and_wait(&sim, first, 1);
    let last = last_pushed(&sim, "AAPL.US");
    let mut second = Client::connect(&sim.url());
    second.call(22004, symbols(&["AAPL.US"]));
    assert_eq!(seq_u64(&second.trades(1)[0]), last.seq);
}

/// Milliseconds since the Unix epoch on this machine's clock.
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .expect("clock after 1970")
}

#[test]
fn clock_offset_moves_tick_time_and_time_like_seq_across_midnight() {
    const DAY_MS: u64 = 86_400_000;
    // The simulated clock 1 s before the midnight UTC after next (at least
    // a day ahead, so the real clock is far from it).
    let now = wall_ms();
    let midnight = (now / DAY_MS + 2) * DAY_MS;
    let offset = i64::try_from(midnight - 1_000 - now).expect("offset");
    let sim = Simulator::start(SimConfig {
        ticks_per_sec: 50.0,
        min_request_interval: None,
        readings: Readings {
            seq: SeqStyle::TimeLike,
            ..Readings::default()
        },
        clock_offset_ms: offset,
        ..SimConfig::default()
    })
    .expect("start");
    let mut ws = Client::connect(&sim.url());
    ws.call(22004, symbols(&["AAPL.US"]));
    let first = &ws.trades(1)[0];
    let t = first["data"]["tick_time"].as_u64().expect("tick_time");
    assert!(
        t >= midnight - 1_000 && t < midnight,
        "{t} vs midnight {midnight}"
    );
    assert!(seq_u64(first) / 1000 >= t, "time-like seq follows: {first}");
    // The simulated day ends: a push after midnight.
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let v: Value = serde_json::from_str(&ws.push_text(22998, deadline)).expect("json");
        if v["data"]["tick_time"]
            .as_u64()
            .is_some_and(|t| t >= midnight)
        {
            break v;
        }
    };
    assert!(seq_u64(&after) / 1000 >= midnight, "{after}");
    let st = sim.state();
    let rec = st
        .ticks
        .iter()
        .find(|t| t.seq == seq_u64(&after))
        .expect("recorded");
    assert_eq!(rec.time_ms, rec.tick_time);
    assert!(rec.time_ms >= midnight);
    // Back to the real clock at runtime.
    sim.set_clock_offset_ms(0);
    let before = wall_ms();
    let v = loop {
        let v: Value = serde_json::from_str(&ws.push_text(22998, deadline)).expect("json");
        if v["data"]["tick_time"]
            .as_u64()
            .is_some_and(|t| t < midnight - 1_000)
        {
            break v;
        }
    };
    let t = v["data"]["tick_time"].as_u64().expect("tick_time");
    assert!(
        t + 100 >= before && t <= wall_ms(),
        "{t} vs the real {before}"
    );
}
