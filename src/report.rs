//! Status and error lines on stderr, with the token scrubbed from every one.
//!
//! Everything the tool says to a person goes through [`say`], so there is a
//! single place where the secret is removed, whatever error text a library
//! produced (a URL in an error message, for instance).

use std::fmt::Display;
use std::io::Write;
use std::sync::OnceLock;

static SECRET: OnceLock<String> = OnceLock::new();

/// Register the token so it is replaced by `***` in everything printed.
pub fn set_secret(token: &str) {
    if !token.is_empty() {
        let _ = SECRET.set(token.to_string());
    }
}

/// `text` with the registered token (and its URL-encoded form) replaced.
pub fn redact(text: &str) -> String {
    match SECRET.get() {
        Some(secret) => {
            let encoded = crate::cli::url_encode(secret);
            text.replace(secret.as_str(), "***")
                .replace(&encoded, "***")
        }
        None => text.to_string(),
    }
}

/// Print one line on stderr, prefixed with the program name, token removed.
pub fn say(message: impl Display) {
    let line = redact(&message.to_string());
    let line = line.replace(['\n', '\r'], " ");
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "alltick-stream: {line}");
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
    #[test]
    fn redacts_plain_and_encoded_token() {
        super::set_secret("s3cr3t/+x");
        let out = super::redact("ws://h/p?token=s3cr3t%2F%2Bx and s3cr3t/+x");
        assert!(!out.contains("s3cr3t"), "{out}");
    }
}
