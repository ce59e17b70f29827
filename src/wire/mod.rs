//! The AllTick wire format, without I/O: the messages and their encoding
//! ([`protocol`]), JSON read where it stands — the one number grammar and
//! value skipper everything else reads with ([`json`]) — the zero-copy
//! scanner for trade pushes ([`scan`]), the one-pass reader of the
//! documented push ([`fast`]), exact decimal text ([`decimal`]), the
//! symbols users type ([`symbol`]), repeats told by `seq` ([`repeat`]),
//! JSON values written into a buffer ([`text`]), the token's place in the
//! URL ([`url_encode`]), the UTC calendar ([`calendar`]), the HTTP API's
//! K-lines ([`kline`]) and AllTick's plans and their limits ([`plan`]).

pub mod calendar;
pub mod decimal;
pub mod fast;
pub(crate) mod json;
pub mod kline;
pub mod plan;
pub mod protocol;
pub(crate) mod repeat;
pub mod scan;
pub mod symbol;
pub(crate) mod text;

/// Percent-encode for a URL query value (everything but unreserved characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
