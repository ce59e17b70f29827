//! The simulator's HTTP K-line API (`alltick_stream::sim`), called over
//! real sockets with minreq: answers against `kline_bars`, bad requests,
//! the token, the plan's limits, each reading and fault, the WebSocket
//! side beside it, and `https://`. Every wait is bounded.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alltick_stream::sim::{
    FOREX_PATH, HttpFault, HttpLimitAnswer, KlineReadings, SimConfig, Simulator, kline_bars,
    test_certificate,
};
use alltick_stream::wire::kline::{KlineInterval, RawKline, read_answer};
use alltick_stream::wire::plan;
use alltick_stream::wire::symbol::Market;
use serde_json::{Value, json};

use crate::util::ws::Client;
use crate::util::{TOKEN, TempDir, WAIT};

const DAY_MS: u64 = 86_400_000;

fn start(cfg: SimConfig) -> Simulator {
    Simulator::start(SimConfig {
        ticks_per_sec: 0.0,
        expected_token: Some(TOKEN.into()),
        ..cfg
    })
    .expect("start the simulator")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// Percent-encode everything but the unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The URL of a K-line request with this `data` on the stock or forex base.
fn url(sim: &Simulator, stock: bool, token: &str, data: Value) -> String {
    let query = json!({"trace": "tr-1", "data": data}).to_string();
    format!(
        "{}/kline?token={}&query={}",
        sim.http_base(stock),
        encode(token),
        encode(&query)
    )
}

fn data(code: &str, kline_type: u64, end: u64, num: u64) -> Value {
    json!({"code": code, "kline_type": kline_type, "kline_timestamp_end": end,
           "query_kline_num": num, "adjust_type": 0})
}

fn get(url: &str) -> minreq::Response {
    minreq::get(url)
        .with_timeout(5)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Whether a GET of `url` got no answer: an error, or what minreq makes of
/// a connection closed before a status line (a 503 without headers).
fn no_answer(url: &str, timeout: u64) -> bool {
    match minreq::get(url).with_timeout(timeout).send() {
        Err(_) => true,
        Ok(r) => r.status_code == 503 && r.reason_phrase == "Server did not provide a status line",
    }
}

/// A K-line request with a good token: HTTP status and body.
fn ask(sim: &Simulator, code: &str, kline_type: u64, end: u64, num: u64) -> (u16, Value) {
    let stock = Market::of_code(code) == Market::Stock;
    let r = get(&url(sim, stock, TOKEN, data(code, kline_type, end, num)));
    let body = serde_json::from_slice(r.as_bytes())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", r.as_str()));
    (r.status_code, body)
}

/// The bars of an answer, in its order.
fn bars(body: &Value) -> Vec<RawKline> {
    read_answer(body.to_string().as_bytes())
        .expect("an answer")
        .bars
        .into_iter()
        .map(|b| b.expect("a well-formed bar"))
        .collect()
}

fn starts(bars: &[RawKline]) -> Vec<u64> {
    bars.iter()
        .map(|b| b.timestamp.parse().expect("seconds"))
        .collect()
}

/// `bars` (oldest first) equal what `kline_bars` computes for their span.
fn check_against_kline_bars(code: &str, interval: KlineInterval, bars: &[RawKline]) {
    let s = starts(bars);
    assert!(s.windows(2).all(|w| w[0] < w[1]), "not oldest first: {s:?}");
    let expected = kline_bars(code, interval, s[0] * 1000, s[s.len() - 1] * 1000);
    assert_eq!(bars, expected, "{code} {interval:?}");
}

#[test]
fn answers_have_alltick_shape_and_the_generators_bars() {
    let sim = start(SimConfig {
        history_start_ms: Some(0),
        ..SimConfig::default()
    });
    let before = now_ms();
    let r = get(&url(&sim, true, TOKEN, data("AAPL.US", 1, 0, 10)));
    assert_eq!(r.status_code, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(
        r.header("content-length").map(str::to_owned),
        Some(r.as_bytes().len().to_string())
    );
    let body: Value = serde_json::from_slice(r.as_bytes()).expect("JSON");
    assert_eq!(body["ret"], 200, "{body}");
    assert_eq!(
        (&body["msg"], &body["trace"]),
        (&json!("ok"), &json!("tr-1"))
    );
    assert_eq!(body["data"]["code"], "AAPL.US");
    assert_eq!(body["data"]["kline_type"], 1);
    for bar in body["data"]["kline_list"].as_array().expect("a list") {
        let bar = bar.as_object().expect("an object");
        assert_eq!(bar.len(), 7, "{bar:?}");
        assert!(bar.values().all(Value::is_string), "{bar:?}");
    }
    let got = bars(&body);
    assert_eq!(got.len(), 10);
    check_against_kline_bars("AAPL.US", KlineInterval::M1, &got);
    let newest = starts(&got)[9] * 1000;
    assert!(
        newest + 60_000 <= now_ms() && newest + 120_000 > before,
        "final and latest"
    );

    for (code, kline_type, num) in [("EURUSD", 10, 24), ("700.HK", 9, 10), ("BTCUSDT", 8, 30)] {
        let (status, body) = ask(&sim, code, kline_type, 0, num);
        assert_eq!((status, &body["ret"]), (200, &json!(200)), "{body}");
        let interval = KlineInterval::from_kline_type(kline_type).unwrap();
        let got = bars(&body);
        assert_eq!(got.len(), num as usize, "{code}");
        check_against_kline_bars(code, interval, &got);
    }

    let s = sim.state();
    assert_eq!(s.http_requests.len(), 4);
    let first = &s.http_requests[0];
    assert_eq!(first.path, "/quote-stock-b-api/kline");
    assert_eq!(first.base, Some(Market::Stock));
    assert_eq!(first.code.as_deref(), Some("AAPL.US"));
    assert_eq!(
        (
            first.kline_type,
            first.kline_timestamp_end,
            first.query_kline_num
        ),
        (Some(1), Some(0), Some(10))
    );
    assert_eq!((first.status, first.ret, first.bars), (200, Some(200), 10));
    assert!(first.counted && first.at_ms >= before && first.token.as_deref() == Some(TOKEN));
    assert_eq!(s.http_requests_for("EURUSD").len(), 1);
    assert!(
        s.connections.is_empty(),
        "HTTP requests are not connections"
    );
}

#[test]
fn the_end_time_pages_other_codes_back_and_stocks_always_get_the_latest() {
    let sim = start(SimConfig::default());
    let hour = 3_600_000;
    let end = (now_ms() / hour - 5) * hour;
    let (_, body) = ask(&sim, "EURUSD", 5, end / 1000, 3);
    let got = bars(&body);
    assert_eq!(
        starts(&got),
        [end / 1000 - 7200, end / 1000 - 3600, end / 1000],
        "inclusive end"
    );
    check_against_kline_bars("EURUSD", KlineInterval::H1, &got);
    let (_, latest) = ask(&sim, "AAPL.US", 5, end / 1000, 3);
    let newest = starts(&bars(&latest))[2] * 1000;
    assert!(newest > end, "a stock's end time is ignored: {latest}");
    assert_eq!(
        sim.state().http_requests[1].kline_timestamp_end,
        Some(end / 1000)
    );
}

#[test]
fn paging_backwards_ends_at_the_oldest_bar() {
    let hour = 3_600_000;
    let oldest = (now_ms() / hour - 3) * hour;
    let sim = start(SimConfig {
        history_start_ms: Some(oldest),
        ..SimConfig::default()
    });
    assert_eq!(sim.history_start_ms(), oldest);
    let (_, body) = ask(&sim, "XAUUSD", 5, 0, 500);
    let got = bars(&body);
    assert_eq!(starts(&got)[0] * 1000, oldest, "{got:?}");
    assert!(got.len() <= 3, "{got:?}");
    let (_, older) = ask(&sim, "XAUUSD", 5, oldest / 1000 - 1, 500);
    assert_eq!(older["ret"], 200);
    assert_eq!(older["data"]["kline_list"], json!([]), "{older}");
    assert_eq!(
        sim.kline_bars(
            "XAUUSD",
            KlineInterval::H1,
            0,
            starts(&got)[got.len() - 1] * 1000
        ),
        got,
        "the simulator's own view"
    );
}

#[test]
fn bad_requests_get_alltick_rets() {
    let sim = start(SimConfig::default());
    for (code, kline_type, num, ret) in [
        ("AAPL.US", 1, 501, 400),
        ("AAPL.US", 1, 0, 400),
        ("AAPL.US", 11, 5, 400),
        ("AAPL.US", 6, 5, 400),
        ("AAPL.US", 7, 5, 400),
        ("", 1, 5, 400),
    ] {
        let (status, body) = ask(&sim, code, kline_type, 0, num);
        assert_eq!(
            (status, &body["ret"]),
            (200, &json!(ret)),
            "{code} {kline_type} {num}"
        );
        assert_eq!(body["msg"], "request header/data param invalid");
        assert!(body.get("data").is_none(), "{body}");
    }
    let (_, h4) = ask(&sim, "EURUSD", 7, 0, 2);
    assert_eq!(h4["ret"], 200, "4 h bars for other codes");
    for (stock, code) in [(true, "EURUSD"), (false, "700.HK")] {
        let r = get(&url(&sim, stock, TOKEN, data(code, 1, 0, 5)));
        let body: Value = serde_json::from_slice(r.as_bytes()).unwrap();
        assert_eq!(
            (body["ret"].clone(), body["msg"].clone()),
            (json!(600), json!("code invalid"))
        );
    }
    let bad_token = get(&url(&sim, true, "nope", data("AAPL.US", 1, 0, 5)));
    assert_eq!(bad_token.status_code, 200);
    let body: Value = serde_json::from_slice(bad_token.as_bytes()).unwrap();
    assert_eq!(
        body,
        json!({"ret": 401, "msg": "token invalid", "trace": "tr-1"})
    );
    let no_query = get(&format!("{}/kline?token={TOKEN}", sim.http_base(false)));
    let body: Value = serde_json::from_slice(no_query.as_bytes()).unwrap();
    assert_eq!(body["ret"], 402);
    let base = sim.http_base(false);
    assert_eq!(
        get(&format!("{base}/batch-kline?token={TOKEN}")).status_code,
        404
    );
    let post = minreq::post(format!("{base}/kline"))
        .with_timeout(5)
        .send()
        .unwrap();
    assert_eq!(post.status_code, 405);
    let s = sim.state();
    assert_eq!(s.http_requests.len(), 13);
    assert!(
        s.http_requests
            .iter()
            .all(|r| r.bars == 0 || r.code.as_deref() == Some("EURUSD"))
    );
}

#[test]
fn the_plans_limits_are_enforced_over_both_bases_on_arrival() {
    let sim = start(SimConfig {
        http_limits: Some(plan::free().http),
        ..SimConfig::default()
    });
    let (status, body) = ask(&sim, "AAPL.US", 1, 0, 2);
    assert_eq!((status, &body["ret"]), (200, &json!(200)));
    let (status, body) = ask(&sim, "EURUSD", 1, 0, 2);
    assert_eq!(
        (status, &body["ret"]),
        (429, &json!(429)),
        "1 / 10 s: {body}"
    );
    sim.set_http_limit_answer(HttpLimitAnswer::Ret605);
    let (status, body) = ask(&sim, "AAPL.US", 1, 0, 2);
    assert_eq!((status, &body["ret"]), (200, &json!(605)), "{body}");
    let s = sim.state();
    assert_eq!(s.http_over_limit, 2);
    let counted: Vec<bool> = s.http_requests.iter().map(|r| r.counted).collect();
    assert_eq!(counted, [true, false, false]);
    sim.set_http_limits(None);
    assert_eq!(ask(&sim, "AAPL.US", 1, 0, 2).1["ret"], 200);
}

#[test]
fn each_reading_of_the_answers() {
    let sim = start(SimConfig {
        kline_readings: KlineReadings {
            newest_first: true,
            ..KlineReadings::default()
        },
        ..SimConfig::default()
    });
    let (_, body) = ask(&sim, "EURUSD", 1, 0, 10);
    let mut newest_first = bars(&body);
    assert!(starts(&newest_first).windows(2).all(|w| w[0] > w[1]));
    newest_first.reverse();
    check_against_kline_bars("EURUSD", KlineInterval::M1, &newest_first);

    sim.set_kline_readings(KlineReadings {
        repeat_newest: 3,
        ..KlineReadings::default()
    });
    let got = bars(&ask(&sim, "EURUSD", 2, 0, 10).1);
    assert_eq!(got.len(), 13);
    assert_eq!(got[10..], got[7..10], "the newest three again");
    check_against_kline_bars("EURUSD", KlineInterval::M5, &got[..10]);

    sim.set_kline_readings(KlineReadings {
        forming_last: true,
        ..KlineReadings::default()
    });
    let asked = now_ms();
    let got = bars(&ask(&sim, "AAPL.US", 5, 0, 4).1);
    let s = starts(&got);
    assert_eq!(s.len(), 4);
    assert!(
        s[3] * 1000 + 3_600_000 > asked,
        "the last bar is still forming: {s:?}"
    );
    check_against_kline_bars("AAPL.US", KlineInterval::H1, &got[..3]);

    sim.set_kline_readings(KlineReadings {
        page_cap: Some(137),
        ..KlineReadings::default()
    });
    let got = bars(&ask(&sim, "700.HK", 1, 0, 500).1);
    assert_eq!(got.len(), 137);
    check_against_kline_bars("700.HK", KlineInterval::M1, &got);

    sim.set_kline_readings(KlineReadings {
        ret_202: true,
        ..KlineReadings::default()
    });
    assert_eq!(ask(&sim, "700.HK", 1, 0, 501).1["ret"], 202);
    assert!(sim.kline_readings().ret_202);
}

#[test]
fn refused_codes_and_injected_faults() {
    let sim = start(SimConfig::default());
    sim.refuse_kline_codes(&["TSLA.US"], 604);
    let (status, body) = ask(&sim, "TSLA.US", 1, 0, 5);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"ret": 604, "msg": "code unauthorized", "trace": "tr-1"})
    );
    assert_eq!(
        ask(&sim, "AAPL.US", 1, 0, 5).1["ret"],
        200,
        "other codes are served"
    );
    sim.refuse_kline_codes(&["TSLA.US"], 200);
    assert_eq!(ask(&sim, "TSLA.US", 1, 0, 5).1["ret"], 200);

    let u = url(&sim, true, TOKEN, data("AAPL.US", 1, 0, 5));
    for status in [500, 502, 503] {
        sim.fail_http_next(1, HttpFault::Status(status));
        assert_eq!(get(&u).status_code, status);
    }
    sim.fail_http_next(1, HttpFault::NotJson);
    let r = get(&u);
    assert_eq!(r.status_code, 200);
    assert!(serde_json::from_slice::<Value>(r.as_bytes()).is_err());
    sim.fail_http_next(1, HttpFault::Ret(605));
    assert_eq!(ask(&sim, "AAPL.US", 1, 0, 5).1["ret"], 605);
    assert_eq!(
        ask(&sim, "AAPL.US", 1, 0, 5).1["ret"],
        200,
        "the faults are used up"
    );

    // A hang ends by its duration, without an answer.
    sim.fail_http_next(1, HttpFault::Hang(Duration::from_millis(300)));
    let t0 = Instant::now();
    assert!(no_answer(&u, 5));
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
    // Or when the switch clears.
    sim.fail_http_next(1, HttpFault::Hang(Duration::from_secs(60)));
    let n = sim.state().http_requests.len();
    let hung = {
        let u = u.clone();
        thread::spawn(move || no_answer(&u, 10))
    };
    assert!(sim.wait_until(WAIT, |s| s.http_requests.len() > n));
    sim.clear_http_faults();
    let t1 = Instant::now();
    assert!(hung.join().unwrap(), "no answer after a hang");
    assert!(t1.elapsed() < Duration::from_secs(2), "{:?}", t1.elapsed());
    let s = sim.state();
    let answered: Vec<(u16, Option<u32>)> =
        s.http_requests.iter().map(|r| (r.status, r.ret)).collect();
    assert_eq!(
        answered[3..],
        [
            (500, None),
            (502, None),
            (503, None),
            (200, None),
            (200, Some(605)),
            (200, Some(200)),
            (0, None),
            (0, None)
        ]
    );
}

#[test]
fn websocket_and_http_share_the_port_and_the_clock() {
    let offset = -3 * DAY_MS as i64;
    let sim = start(SimConfig {
        clock_offset_ms: offset,
        min_request_interval: None,
        ..SimConfig::default()
    });
    let mut ws = Client::connect(&format!("{}?token={TOKEN}", sim.url()));
    assert_eq!(ws.call(22000, json!({}))["ret"], 200);
    let before = now_ms();
    let r = get(&url(&sim, false, TOKEN, data("EURUSD", 1, 0, 1)));
    let after = now_ms();
    let date = r.header("date").expect("a Date header").to_owned();
    let out = Command::new("date")
        .env("LC_ALL", "C")
        .args(["-u", "-d", &date, "+%s"])
        .output()
        .expect("date");
    let secs: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a date");
    let (lo, hi) = (
        (before as i64 + offset) / 1000,
        (after as i64 + offset) / 1000,
    );
    assert!(
        (lo..=hi).contains(&(secs as i64)),
        "{date}: {secs} not in {lo}..={hi}"
    );
    assert!(
        date.ends_with(" GMT") && date.as_bytes()[3] == b',',
        "{date}"
    );
    let newest = starts(&bars(&serde_json::from_slice(r.as_bytes()).unwrap()))[0] as i64;
    assert!(
        newest * 1000 + 60_000 <= after as i64 + offset,
        "final on the sim's clock"
    );
    assert_eq!(
        ws.call(22000, json!({}))["ret"],
        200,
        "the WebSocket still answers"
    );
    assert_eq!(sim.state().connections.len(), 1);
    assert!(sim.state().http_requests[0].at_ms as i64 <= after as i64 + offset);
}

/// A price in cents from its text (`651.10`).
fn cents(text: &str) -> u64 {
    let (whole, frac) = text.split_once('.').expect("a decimal");
    whole.parse::<u64>().expect("digits") * 100 + frac.parse::<u64>().expect("digits")
}

/// The bar of `pushes` (trade pushes in time order) as the simulator's
/// K-line API writes one: prices and turnover in cents, volume summed.
fn bar_of(start_ms: u64, pushes: &[&Value]) -> RawKline {
    let text = |c: u64| format!("{}.{:02}", c / 100, c % 100);
    let field = |v: &Value, k: &str| v["data"][k].as_str().expect(k).to_owned();
    let prices: Vec<u64> = pushes.iter().map(|p| cents(&field(p, "price"))).collect();
    RawKline {
        timestamp: (start_ms / 1000).to_string(),
        open: text(prices[0]),
        high: text(*prices.iter().max().unwrap()),
        low: text(*prices.iter().min().unwrap()),
        close: text(prices[prices.len() - 1]),
        volume: (pushes.iter())
            .map(|p| field(p, "volume").parse::<u64>().expect("whole"))
            .sum::<u64>()
            .to_string(),
        turnover: text(pushes.iter().map(|p| cents(&field(p, "turnover"))).sum()),
    }
}

/// Trade pushes on `ws` until one at `until_ms` or later (that one too).
fn trades_until(ws: &mut Client, until_ms: u64) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while out
        .last()
        .is_none_or(|v: &Value| v["data"]["tick_time"].as_u64() < Some(until_ms))
    {
        let v = ws.next_json(deadline).expect("trade pushes in time");
        if v["cmd_id"] == 22998 && v.get("ret").is_none() {
            out.push(v);
        }
    }
    out
}

/// A traded code's K-lines are its trades: a minute of pushes is its bar,
/// and the minutes the clock jumped over come from unseen trades.
#[test]
fn a_traded_codes_klines_are_the_aggregate_of_its_trades() {
    let minute = 60_000u64;
    // The simulated clock 57 s into a minute that starts 5 minutes, at
    // least 20 minutes back (so that `kline_bars`, on the real clock, has
    // the walk's bars before it).
    let m = (now_ms() / (5 * minute) - 4) * 5 * minute;
    let offset = (m + 57_000) as i64 - now_ms() as i64;
    let sim = start(SimConfig {
        clock_offset_ms: offset,
        ..SimConfig::default()
    });
    sim.set_ticks_per_sec(20.0);
    assert!(
        sim.recorded_klines("EURUSD", KlineInterval::M1, 0, u64::MAX)
            .is_empty()
    );
    let mut ws = Client::connect(&format!("{}?token={TOKEN}", sim.url_for(FOREX_PATH)));
    assert_eq!(ws.subscribe(&["EURUSD"])["ret"], 200);
    let before = trades_until(&mut ws, m + minute + 1000);
    let in_m: Vec<&Value> = (before.iter())
        .filter(|v| v["data"]["tick_time"].as_u64().unwrap() < m + minute)
        .collect();
    assert!(in_m.len() > 10, "{} pushes in the minute", in_m.len());
    assert_eq!(sim.unseen_trades(), 0);
    // Five minutes later, still subscribed: m + 1 … m + 5 are over.
    sim.set_clock_offset_ms(offset + 5 * minute as i64);
    trades_until(&mut ws, m + 6 * minute + 1500);
    ws.close();
    let unseen = sim.unseen_trades();
    assert!((290..=320).contains(&unseen), "{unseen} unseen trades");
    let (status, body) = ask(&sim, "EURUSD", 1, 0, 20);
    assert_eq!(status, 200);
    let got = bars(&body);
    let recorded = sim.recorded_klines("EURUSD", KlineInterval::M1, 0, m + 5 * minute);
    assert_eq!(sim.recorded_since_ms("EURUSD"), Some(m));
    let from_m: Vec<RawKline> = (got.iter())
        .filter(|b| (m / 1000..=(m + 5 * minute) / 1000).contains(&b.timestamp.parse().unwrap()))
        .cloned()
        .collect();
    assert_eq!(from_m, recorded);
    // Every minute from m on has its bar; m's is its pushes'.
    let want: Vec<u64> = (0..6).map(|i| (m + i * minute) / 1000).collect();
    assert_eq!(starts(&from_m), want);
    assert_eq!(from_m[0], bar_of(m, &in_m));
    assert_eq!(
        sim.kline_bars("EURUSD", KlineInterval::M1, m, m + 5 * minute),
        recorded
    );
    // Before the record: the deterministic walk.
    let walk = kline_bars("EURUSD", KlineInterval::M1, m - 3 * minute, m - minute);
    let earlier = sim.kline_bars("EURUSD", KlineInterval::M1, m - 3 * minute, m - minute);
    assert_eq!(earlier, walk);
    // Longer intervals too: the 5-minute bar from m is its 5 minutes'.
    let five = sim.recorded_klines("EURUSD", KlineInterval::M5, m, m + 5 * minute);
    let text = |c: u64| format!("{}.{:02}", c / 100, c % 100);
    let of = |f: fn(&RawKline) -> &String| from_m[..5].iter().map(move |b| cents(f(b)));
    let want = RawKline {
        timestamp: (m / 1000).to_string(),
        open: from_m[0].open.clone(),
        high: text(of(|b| &b.high).max().unwrap()),
        low: text(of(|b| &b.low).min().unwrap()),
        close: from_m[4].close.clone(),
        volume: (from_m[..5].iter())
            .map(|b| b.volume.parse::<u64>().unwrap())
            .sum::<u64>()
            .to_string(),
        turnover: text(of(|b| &b.turnover).sum()),
    };
    assert_eq!(five, vec![want]);
}

#[test]
fn https_with_the_test_certificate() {
    if !crate::util::require("openssl") {
        return;
    }
    let dir = TempDir::new("sim-http-tls");
    let (identity, ca) = test_certificate(dir.path()).expect("test certificate (openssl CLI)");
    let sim = start(SimConfig {
        tls: Some(identity),
        ..SimConfig::default()
    });
    let base = sim.http_base(true);
    assert_eq!(
        base,
        format!("https://localhost:{}/quote-stock-b-api", sim.port())
    );
    let u = url(&sim, true, TOKEN, data("AAPL.US", 1, 0, 3));
    // minreq trusts the system's roots here, and the CA only by
    // SSL_CERT_FILE, which a test must not set in its own process: the
    // trusted call runs in a child, this test binary's `https_child`.
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["sim_http::https_child", "--exact", "--ignored"])
        .env("SSL_CERT_FILE", &ca)
        .env("SIM_HTTP_URL", &u)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = sim.state();
    assert_eq!(s.http_requests.len(), 1);
    assert_eq!(
        (s.http_requests[0].status, s.http_requests[0].bars),
        (200, 3)
    );
    // Untrusted: the handshake fails, nothing is asked.
    assert!(minreq::get(&u).with_timeout(5).send().is_err());
    assert_eq!(sim.state().http_requests.len(), 1);
}

/// Run only by `https_with_the_test_certificate`, with SSL_CERT_FILE set.
#[test]
#[ignore = "a child of https_with_the_test_certificate"]
fn https_child() {
    let Ok(u) = std::env::var("SIM_HTTP_URL") else {
        return;
    };
    let r = get(&u);
    assert_eq!(r.status_code, 200);
    let a = read_answer(r.as_bytes()).expect("an answer");
    assert_eq!((a.ret, a.bars.len()), (200, 3));
}
