//! Status and error lines on stderr, with the token scrubbed from every one.
//!
//! Everything the tool says to a person goes through [`say`], so there is a
//! single place where the secret is removed, whatever error text a library
//! produced (a URL in an error message, for instance).

use std::fmt::Display;
use std::io::Write;
use std::sync::OnceLock;

static SECRET: OnceLock<String> = OnceLock::new();

/// A token shorter than this is not looked for outside a URL's `token=`:
/// a short string is also part of ordinary words and codes (`t` is in
/// "connected", `T` in `TSLA.US`), and replacing it there would mangle the
/// line without hiding anything.
const WHOLE_WORD_MIN: usize = 8;

/// Register the token, so that it is removed from everything printed.
pub fn set_secret(token: &str) {
    if !token.is_empty() {
        let _ = SECRET.set(token.to_string());
    }
}

/// `text` with the token removed where it can appear: the value of every
/// `token=` in a URL's query (a library's error may echo the URL it was
/// given) becomes `***`; and a registered token of [`WHOLE_WORD_MIN`]
/// characters or more, raw or URL-encoded, is replaced wherever it stands
/// as a whole word (not inside a longer run of token characters).
pub fn redact(text: &str) -> String {
    let mut out = query_tokens_hidden(text);
    if let Some(secret) = SECRET.get().filter(|s| s.len() >= WHOLE_WORD_MIN) {
        let encoded = crate::wire::url_encode(secret);
        out = whole_words_hidden(&out, secret);
        if encoded != *secret {
            out = whole_words_hidden(&out, &encoded);
        }
    }
    out
}

/// Characters that a token (or its URL-encoded form) is made of: a match
/// next to one of them is part of something longer.
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '%')
}

/// Every `token=VALUE` with its value replaced by `***`. The tool sends the
/// token percent-encoded, so the value is the run of URL-unreserved
/// characters and `%` escapes that follows.
fn query_tokens_hidden(text: &str) -> String {
    const KEY: &str = "token=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (before, after) = rest.split_at(at + KEY.len());
        out.push_str(before);
        let end = after
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '%'))
            })
            .unwrap_or(after.len());
        if end > 0 {
            out.push_str("***");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `text` with each whole-word occurrence of `word` replaced by `***`.
fn whole_words_hidden(text: &str, word: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let end = at + word.len();
        let before_ok = !rest[..at].chars().next_back().is_some_and(token_char);
        let after_ok = !rest[end..].chars().next().is_some_and(token_char);
        out.push_str(&rest[..at]);
        if before_ok && after_ok {
            out.push_str("***");
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Print one line on stderr, prefixed with the program name, token removed.
pub fn say(message: impl Display) {
    let line = redact(&message.to_string());
    let line = line.replace(['\n', '\r'], " ");
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "alltick-stream: {line}");
}

/// `n` and its noun, singular for one: `1 symbol`, `3 symbols`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A short list for messages: the first few items, then a count.
pub fn list(items: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(count(1, "symbol"), "1 symbol");
        assert_eq!(count(0, "symbol"), "0 symbols");
        assert_eq!(count(2, "code"), "2 codes");
    }

    #[test]
    fn the_query_s_token_is_hidden_whatever_its_length() {
        for (text, want) in [
            (
                "cannot connect to ws://h/p?token=t: refused",
                "cannot connect to ws://h/p?token=***: refused",
            ),
            (
                "URL error: wss://h/p?a=1&token=s3cr3t%2F%2Bx&b=2 (x)",
                "URL error: wss://h/p?a=1&token=***&b=2 (x)",
            ),
            (
                "\"ws://h/?token=T\" and token=T",
                "\"ws://h/?token=***\" and token=***",
            ),
            ("no token here, token= empty", "no token here, token= empty"),
        ] {
            assert_eq!(query_tokens_hidden(text), want);
        }
    }

    #[test]
    fn a_short_token_leaves_words_and_codes_alone() {
        // A one-letter token is in almost every line; only its place in a
        // URL is a place it can be.
        for short in ["t", "T"] {
            let line = "endpoint#1: connected to ws://127.0.0.1:9/quote-stock-b-ws-api; subscribed to 1 symbol (TSLA.US)";
            assert_eq!(whole_words_hidden(line, short).len(), line.len());
            assert_eq!(redact(line), line);
        }
    }

    #[test]
    fn a_long_token_is_hidden_as_a_whole_word_raw_or_encoded() {
        let secret = "s3cr3t/+x-long";
        let encoded = crate::wire::url_encode(secret);
        assert_eq!(
            whole_words_hidden(&format!("bad token {secret}, again: {secret}"), secret),
            "bad token ***, again: ***"
        );
        assert_eq!(
            whole_words_hidden(&format!("echo {encoded}."), &encoded),
            "echo ***."
        );
        // Inside a longer word it is not this token.
        let longer = format!("x{secret}y");
        assert_eq!(whole_words_hidden(&longer, secret), longer);
    }
}
