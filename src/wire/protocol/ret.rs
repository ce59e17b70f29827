//! AllTick's `ret` codes, and the one place that decides what each asks
//! of a client ([`Ret::handling`]).
//!
//! Every answer carries a `ret`: 200 for success, anything else an error
//! from AllTick's error table. The session's subscription channels and its
//! other answers both act on [`Handling`], never on the bare numbers, so a
//! code's meaning is written once.

use std::fmt;
use std::time::Duration;

/// How long to wait after a rate-limit answer (429/605) before resending.
pub const RATE_LIMIT_RETRY: Duration = Duration::from_secs(2);

/// Least wait before reconnecting after `ret` 606.
pub const AFTER_606: Duration = Duration::from_secs(3);

/// A `ret` code of an answer, as AllTick's error table names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// 200: ok.
    Ok,
    /// 201: seen in the docs' header example; success.
    Created,
    /// 400: request header or data param invalid.
    BadRequest,
    /// 401: token invalid.
    TokenInvalid,
    /// 402: query invalid.
    QueryInvalid,
    /// 429: rate limit.
    RateLimit,
    /// 600: a code is wrong for this endpoint.
    CodeInvalid,
    /// 601: body empty.
    BodyEmpty,
    /// 603: token level not enough: too many symbols for the plan.
    TokenLevel,
    /// 604: the plan does not cover a code.
    CodeUnauthorized,
    /// 605: too many requests.
    TooManyRequests,
    /// 606: too many requests, and the server closes the connection.
    TooManyRequestsClosing,
    /// A code the table does not list (kept as sent, sign and all).
    Unknown(i64),
}

/// What a client does about an answer, by its `ret`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handling {
    /// The request took effect.
    Done,
    /// The token was refused: say so and stop; retrying cannot help.
    Fatal,
    /// Rate-limited: send the same full set again after this wait.
    ResendAfter(Duration),
    /// The server closes the connection: reconnect no sooner than this.
    Reconnect(Duration),
    /// Too many symbols for the plan: report the count, and wait for the
    /// user to change the set (resending it would be refused again).
    OverPlan,
    /// A code in the request was refused without saying which: narrow the
    /// request down to the bad codes.
    BadCodes,
    /// Anything else (a bug in the request, an unknown code): report it and
    /// go on.
    Report,
}

impl Ret {
    /// Every code the table lists, for tests and documentation.
    pub const KNOWN: [Ret; 12] = [
        Ret::Ok,
        Ret::Created,
        Ret::BadRequest,
        Ret::TokenInvalid,
        Ret::QueryInvalid,
        Ret::RateLimit,
        Ret::CodeInvalid,
        Ret::BodyEmpty,
        Ret::TokenLevel,
        Ret::CodeUnauthorized,
        Ret::TooManyRequests,
        Ret::TooManyRequestsClosing,
    ];

    /// The `ret` a server sent.
    pub fn from_code(code: i64) -> Ret {
        Ret::KNOWN
            .into_iter()
            .find(|r| r.code() == code)
            .unwrap_or(Ret::Unknown(code))
    }

    /// The number on the wire.
    pub fn code(self) -> i64 {
        match self {
            Ret::Ok => 200,
            Ret::Created => 201,
            Ret::BadRequest => 400,
            Ret::TokenInvalid => 401,
            Ret::QueryInvalid => 402,
            Ret::RateLimit => 429,
            Ret::CodeInvalid => 600,
            Ret::BodyEmpty => 601,
            Ret::TokenLevel => 603,
            Ret::CodeUnauthorized => 604,
            Ret::TooManyRequests => 605,
            Ret::TooManyRequestsClosing => 606,
            Ret::Unknown(code) => code,
        }
    }

    /// What it means and what the user can do, per AllTick's error table.
    pub fn meaning(self) -> &'static str {
        match self {
            Ret::Ok | Ret::Created => "ok",
            Ret::BadRequest => "request header/data param invalid (a bug in the request)",
            Ret::TokenInvalid => "token invalid",
            Ret::QueryInvalid => "query invalid (a bug in the request)",
            Ret::RateLimit => "rate limit: will retry",
            Ret::CodeInvalid => "code invalid: a code is wrong for this endpoint",
            Ret::BodyEmpty => "body empty (a bug in the request)",
            Ret::TokenLevel => "token level not enough: too many symbols for the plan",
            Ret::CodeUnauthorized => "code unauthorized: the plan does not cover a code",
            Ret::TooManyRequests => "too many requests: will retry",
            Ret::TooManyRequestsClosing => {
                "too many requests, the server will close the connection"
            }
            Ret::Unknown(_) => "unknown error code",
        }
    }

    /// What a client does about an answer with this code: the one place
    /// that decides it.
    pub fn handling(self) -> Handling {
        match self {
            Ret::Ok | Ret::Created => Handling::Done,
            Ret::TokenInvalid => Handling::Fatal,
            Ret::RateLimit | Ret::TooManyRequests => Handling::ResendAfter(RATE_LIMIT_RETRY),
            Ret::TooManyRequestsClosing => Handling::Reconnect(AFTER_606),
            Ret::TokenLevel => Handling::OverPlan,
            Ret::CodeInvalid | Ret::CodeUnauthorized => Handling::BadCodes,
            Ret::BadRequest | Ret::QueryInvalid | Ret::BodyEmpty | Ret::Unknown(_) => {
                Handling::Report
            }
        }
    }

    /// Whether the request took effect.
    pub fn is_success(self) -> bool {
        self.handling() == Handling::Done
    }
}

/// The code and its meaning: `429 rate limit: will retry`.
impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_itself_and_others_are_unknown() {
        for r in Ret::KNOWN {
            assert_eq!(Ret::from_code(r.code()), r);
            assert!(!matches!(r, Ret::Unknown(_)));
        }
        for n in [-1, 0, 202, 602, 999, i64::MAX] {
            assert_eq!(Ret::from_code(n), Ret::Unknown(n));
            assert_eq!(Ret::from_code(n).code(), n);
        }
    }

    #[test]
    fn each_code_asks_for_what_alltick_s_table_says() {
        let h = |n| Ret::from_code(n).handling();
        assert_eq!(h(200), Handling::Done);
        assert_eq!(h(201), Handling::Done, "201: success");
        assert_eq!(h(401), Handling::Fatal);
        assert_eq!(h(429), Handling::ResendAfter(RATE_LIMIT_RETRY));
        assert_eq!(h(605), Handling::ResendAfter(RATE_LIMIT_RETRY));
        assert_eq!(h(606), Handling::Reconnect(AFTER_606));
        assert!(
            AFTER_606 >= Duration::from_secs(3),
            "the docs: at least 3 s"
        );
        assert_eq!(h(603), Handling::OverPlan);
        assert_eq!(h(600), Handling::BadCodes);
        assert_eq!(h(604), Handling::BadCodes);
        for n in [400, 402, 601, 202, -1] {
            assert_eq!(h(n), Handling::Report, "{n}");
        }
        assert!(Ret::Ok.is_success() && Ret::Created.is_success());
        assert!(!Ret::RateLimit.is_success());
    }

    #[test]
    fn it_is_written_as_its_number_and_meaning() {
        assert_eq!(Ret::RateLimit.to_string(), "429 rate limit: will retry");
        assert_eq!(Ret::Unknown(-1).to_string(), "-1 unknown error code");
        assert_eq!(Ret::TokenInvalid.meaning(), "token invalid");
    }
}
