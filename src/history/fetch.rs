//! One K-line request over HTTP(S) and what its answer means.
//!
//! The request is `GET {base}/kline?token=…&query=…` made with `minreq`
//! over `native-tls` (certificates verified), one connection per request,
//! bounded by a timeout. The answer is sorted into a [`Reply`]: bars, an
//! error `ret` for the code, a refusal for rate, a refused token, or a
//! failure worth retrying (no connection, a timeout, HTTP 5xx, a body that
//! is not JSON). A `ret` inside an HTTP 200 is the answer's status, as
//! AllTick's docs say. The server's clock is read from the `Date` header.

use std::time::Duration;

use crate::wire::calendar::days_from_civil;
use crate::wire::kline::{self, Answer, KLINE_PATH, KlineInterval};
use crate::wire::protocol::Ret;
use crate::wire::url_encode;

/// The two bases, the token and the bound on one request.
pub struct Client {
    /// `https://…/quote-stock-b-api` (stocks and indices).
    pub stock_base: String,
    /// `https://…/quote-b-api` (forex, metals, crypto).
    pub forex_base: String,
    token: String,
    timeout: Duration,
    trace: u64,
}

/// What one request came to.
#[derive(Debug)]
pub enum Reply {
    /// `ret` 200 (or 201): the bars, as read, and the server's clock (ms)
    /// if it said.
    Bars {
        /// The answer.
        answer: Answer,
        /// The server's `Date`, ms.
        server_now: Option<u64>,
    },
    /// An error `ret` that no retry mends for this code (600, 604, 400 …).
    Refused(Ret, String),
    /// Rate: HTTP 429, or `ret` 429, 605 or 606.
    RateLimited(String),
    /// The token was refused (HTTP 401, or `ret` 401).
    TokenRefused,
    /// Worth another try: what went wrong.
    Failed(String),
}

impl Client {
    /// A client of the two bases.
    pub fn new(stock_base: String, forex_base: String, token: String, timeout: Duration) -> Client {
        Client {
            stock_base,
            forex_base,
            token,
            timeout,
            trace: 0,
        }
    }

    /// Ask `base` for up to `num` bars of `code` ending at `end_secs`
    /// (0: the latest).
    pub fn get(
        &mut self,
        stock: bool,
        code: &str,
        interval: KlineInterval,
        end_secs: u64,
        num: u32,
    ) -> Reply {
        self.trace += 1;
        let trace = format!("alltick-stream-{}-{}", std::process::id(), self.trace);
        let query = kline::query(&trace, code, interval, end_secs, num);
        let base = if stock {
            &self.stock_base
        } else {
            &self.forex_base
        };
        let url = format!(
            "{}{KLINE_PATH}?token={}&query={}",
            base.trim_end_matches('/'),
            url_encode(&self.token),
            url_encode(&query)
        );
        let secs = self.timeout.as_secs().max(1);
        let response = match minreq::get(url).with_timeout(secs).send() {
            Ok(r) => r,
            // minreq's errors do not carry the URL; `say` scrubs any token.
            Err(e) => return Reply::Failed(format!("no answer: {e}")),
        };
        let server_now = response.header("date").and_then(http_date);
        match response.status_code {
            200 => {}
            401 | 403 => return Reply::TokenRefused,
            429 => return Reply::RateLimited("HTTP 429".into()),
            s => return Reply::Failed(format!("HTTP {s} {}", response.reason_phrase)),
        }
        let answer = match kline::read_answer(response.as_bytes()) {
            Ok(a) => a,
            Err(e) => return Reply::Failed(e.to_string()),
        };
        sort(answer, server_now)
    }
}

/// An answer by its `ret`.
fn sort(answer: Answer, server_now: Option<u64>) -> Reply {
    let ret = Ret::from_code(i64::try_from(answer.ret).unwrap_or(i64::MAX));
    match ret {
        Ret::Ok | Ret::Created => Reply::Bars { answer, server_now },
        Ret::TokenInvalid => Reply::TokenRefused,
        Ret::RateLimit | Ret::TooManyRequests | Ret::TooManyRequestsClosing => {
            Reply::RateLimited(format!("ret {ret}"))
        }
        _ => Reply::Refused(ret, answer.msg),
    }
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, IMF-fixdate) in ms.
pub fn http_date(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let (d, y): (u32, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, s] = hms[..] else { return None };
    if !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(y, m, d)).ok()?;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_read_to_the_second() {
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777_000)
        );
        assert_eq!(
            http_date("Sat, 05 Dec 2026 00:00:00 GMT"),
            Some(1_796_428_800_000)
        );
        assert_eq!(http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
    }

    #[test]
    fn a_ret_inside_http_200_is_the_answers_status() {
        let read = |body: &str| sort(kline::read_answer(body.as_bytes()).unwrap(), None);
        assert!(matches!(
            read(r#"{"ret":200,"data":{"kline_list":[]}}"#),
            Reply::Bars { .. }
        ));
        assert!(matches!(read(r#"{"ret":401}"#), Reply::TokenRefused));
        assert!(matches!(read(r#"{"ret":605}"#), Reply::RateLimited(_)));
        assert!(matches!(read(r#"{"ret":429}"#), Reply::RateLimited(_)));
        assert!(matches!(
            read(r#"{"ret":604,"msg":"code unauthorized"}"#),
            Reply::Refused(Ret::CodeUnauthorized, _)
        ));
        assert!(matches!(
            read(r#"{"ret":202,"msg":"data param invalid"}"#),
            Reply::Refused(Ret::Unknown(202), _)
        ));
    }
}
