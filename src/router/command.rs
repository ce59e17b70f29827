//! The stdin command grammar: `+SYM [SYM…]` adds, `-SYM [SYM…]` removes.
//!
//! Symbols are separated by spaces or commas. Blank lines and lines starting
//! with `#` are ignored. A line with any bad symbol is refused whole, so a
//! typo never half-applies. Lines are read with a bounded buffer: a line
//! longer than [`MAX_LINE`] is skipped, not accumulated.

use std::fmt;
use std::io::{self, BufRead};

use crate::wire::symbol::{Symbol, SymbolError};

/// Longest stdin line accepted, in bytes (without the newline).
pub const MAX_LINE: usize = 8192;

/// Most symbols accepted on one line.
pub const MAX_SYMBOLS_PER_LINE: usize = 4000;

/// One parsed stdin command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Subscribe to trades for these symbols.
    Add(Vec<Symbol>),
    /// Unsubscribe from these symbols.
    Remove(Vec<Symbol>),
    /// `?`: print the wanted and acknowledged sets on stderr.
    Query,
}

/// Why a stdin line was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// A line that starts with neither `+`, `-` nor is `?` (shortened).
    Unexpected(String),
    /// `+` or `-` and nothing after it.
    NoSymbol(char),
    /// More than [`MAX_SYMBOLS_PER_LINE`] symbols.
    TooManySymbols,
    /// A bad symbol: the line is refused whole.
    Symbol(SymbolError),
    /// A line longer than [`MAX_LINE`] bytes.
    TooLong,
    /// A line that is not UTF-8.
    NotUtf8,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unexpected(line) => {
                write!(f, "expected '+SYMBOL', '-SYMBOL' or '?', got {line:?}")
            }
            CommandError::NoSymbol(sign) => {
                write!(f, "no symbol after '{sign}': write {sign}SYMBOL [SYMBOL…]")
            }
            CommandError::TooManySymbols => write!(
                f,
                "more than {MAX_SYMBOLS_PER_LINE} symbols on one line: split them over several lines"
            ),
            CommandError::Symbol(e) => write!(f, "{e}"),
            CommandError::TooLong => write!(f, "line longer than {MAX_LINE} bytes, ignored"),
            CommandError::NotUtf8 => write!(f, "not valid UTF-8, ignored"),
        }
    }
}

impl std::error::Error for CommandError {}

/// Parse one line. `Ok(None)` is a line to ignore (blank or comment).
pub fn parse_line(line: &str) -> Result<Option<Command>, CommandError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    if line == "?" {
        return Ok(Some(Command::Query));
    }
    let (add, rest) = match line.as_bytes()[0] {
        b'+' => (true, &line[1..]),
        b'-' => (false, &line[1..]),
        _ => return Err(CommandError::Unexpected(shorten(line))),
    };
    let words: Vec<&str> = rest
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Err(CommandError::NoSymbol(if add { '+' } else { '-' }));
    }
    if words.len() > MAX_SYMBOLS_PER_LINE {
        return Err(CommandError::TooManySymbols);
    }
    let symbols = words
        .into_iter()
        .map(Symbol::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(CommandError::Symbol)?;
    Ok(Some(if add {
        Command::Add(symbols)
    } else {
        Command::Remove(symbols)
    }))
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// What reading one line of stdin produced.
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// A valid command from line `line`.
    Command { line: u64, command: Command },
    /// A refused line, with the reason.
    Error { line: u64, reason: CommandError },
}

/// Read `input` to EOF, calling `sink` for each command or bad line.
/// Returns early with `Ok(())` when `sink` returns `false`.
///
/// Memory stays bounded whatever arrives: a line past [`MAX_LINE`] bytes is
/// skipped up to its newline and reported once.
pub fn read_commands<R: BufRead>(
    mut input: R,
    mut sink: impl FnMut(LineEvent) -> bool,
) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    let mut line_no: u64 = 0;
    let mut too_long = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            // EOF: a last line without a newline still counts.
            if !buf.is_empty() || too_long {
                line_no += 1;
                let ev = finish_line(line_no, &buf, too_long);
                if let Some(ev) = ev {
                    sink(ev);
                }
            }
            return Ok(());
        }
        let (taken, ended) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let content = if ended { &chunk[..taken - 1] } else { chunk };
        if !too_long {
            if buf.len() + content.len() > MAX_LINE {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(content);
            }
        }
        input.consume(taken);
        if ended {
            line_no += 1;
            let ev = finish_line(line_no, &buf, too_long);
            buf.clear();
            too_long = false;
            if let Some(ev) = ev
                && !sink(ev)
            {
                return Ok(());
            }
        }
    }
}

fn finish_line(line: u64, bytes: &[u8], too_long: bool) -> Option<LineEvent> {
    if too_long {
        return Some(LineEvent::Error {
            line,
            reason: CommandError::TooLong,
        });
    }
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => {
            return Some(LineEvent::Error {
                line,
                reason: CommandError::NotUtf8,
            });
        }
    };
    match parse_line(text) {
        Ok(None) => None,
        Ok(Some(command)) => Some(LineEvent::Command { line, command }),
        Err(reason) => Some(LineEvent::Error { line, reason }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(c: &Command) -> (bool, Vec<String>) {
        match c {
            Command::Add(v) => (true, v.iter().map(|s| s.code.to_string()).collect()),
            Command::Remove(v) => (false, v.iter().map(|s| s.code.to_string()).collect()),
            Command::Query => panic!("not a subscription change"),
        }
    }

    #[test]
    fn parses_adds_and_removes() {
        let c = parse_line("+NASDAQ:AAPL NYSE:IBM,AAPL.US")
            .unwrap()
            .unwrap();
        assert_eq!(
            codes(&c),
            (
                true,
                vec!["AAPL.US".into(), "IBM.US".into(), "AAPL.US".into()]
            )
        );
        let c = parse_line("  - NASDAQ:TSLA  ").unwrap().unwrap();
        assert_eq!(codes(&c), (false, vec!["TSLA.US".into()]));
    }

    #[test]
    fn ignores_blank_and_comment_lines() {
        assert_eq!(parse_line(""), Ok(None));
        assert_eq!(parse_line("   \t"), Ok(None));
        assert_eq!(parse_line("# +NASDAQ:AAPL"), Ok(None));
        assert_eq!(parse_line(" ? "), Ok(Some(Command::Query)));
    }

    #[test]
    fn refuses_bad_lines_whole() {
        assert!(
            parse_line("NASDAQ:AAPL")
                .unwrap_err()
                .to_string()
                .contains("expected '+SYMBOL'")
        );
        assert!(
            parse_line("+")
                .unwrap_err()
                .to_string()
                .contains("no symbol")
        );
        assert!(
            parse_line("+NASDAQ:AAPL FOO:BAR")
                .unwrap_err()
                .to_string()
                .contains("FOO")
        );
        assert!(parse_line("*AAPL.US").is_err());
    }

    fn events(input: &[u8]) -> Vec<LineEvent> {
        let mut out = Vec::new();
        read_commands(input, |e| {
            out.push(e);
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn reader_numbers_lines_and_reports_errors() {
        let ev = events(b"+AAPL.US\n\n# c\nbogus\r\n-AAPL.US");
        assert_eq!(ev.len(), 3);
        assert!(matches!(ev[0], LineEvent::Command { line: 1, .. }));
        assert!(matches!(ev[1], LineEvent::Error { line: 4, .. }));
        assert!(matches!(ev[2], LineEvent::Command { line: 5, .. }));
    }

    #[test]
    fn reader_skips_huge_lines_and_bad_utf8() {
        let mut input = vec![b'+'; 5 * MAX_LINE];
        input.extend_from_slice(b"\n\xff\xfe\n+AAPL.US\n");
        let ev = events(&input);
        assert_eq!(ev.len(), 3);
        match &ev[0] {
            LineEvent::Error { line: 1, reason } => {
                assert!(reason.to_string().contains("longer than"))
            }
            other => panic!("{other:?}"),
        }
        match &ev[1] {
            LineEvent::Error { line: 2, reason } => assert!(reason.to_string().contains("UTF-8")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(ev[2], LineEvent::Command { line: 3, .. }));
    }
}
