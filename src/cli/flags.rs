//! The one table of flags (the prose around it is in [`super::prose`]).
//!
//! Everything a user reads about the command line is generated from here:
//! `--help`, the man page and the shell completions (see
//! [`super::help`](mod@super::help) and [`super::generate`](mod@super::generate)), and the parser looks its flags
//! up here too, so a flag cannot be parsed without being documented. To add
//! a flag, add a row to [`FLAGS`] and its arm to the parser's `RawFlags::set`:
//! a row without its arm fails the unit tests, and an arm without its row
//! is never reached.

pub use crate::wire::plan::PLAN_NAMES;

/// What `--generate` can print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generate {
    /// A roff man page for section 1.
    Man,
    /// A bash completion script (`complete -F`).
    CompleteBash,
    /// A zsh completion script (`#compdef`).
    CompleteZsh,
    /// A fish completion script.
    CompleteFish,
}

impl Generate {
    /// Everything `--generate` prints, in the order the help lists them.
    pub const ALL: [Generate; 4] = [
        Generate::Man,
        Generate::CompleteBash,
        Generate::CompleteZsh,
        Generate::CompleteFish,
    ];

    /// Their names, for `--generate`'s row of the flag table.
    pub const NAMES: [&'static str; 4] = {
        let mut names = [""; 4];
        let mut i = 0;
        while i < Generate::ALL.len() {
            names[i] = Generate::ALL[i].name();
            i += 1;
        }
        names
    };

    /// The name `--generate` takes.
    pub const fn name(self) -> &'static str {
        match self {
            Generate::Man => "man",
            Generate::CompleteBash => "complete-bash",
            Generate::CompleteZsh => "complete-zsh",
            Generate::CompleteFish => "complete-fish",
        }
    }

    /// What `--generate NAME` asks for; the error names the valid names.
    pub fn from_name(name: &str) -> Result<Generate, GenerateError> {
        Generate::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| GenerateError {
                given: name.to_string(),
            })
    }
}

/// A `--generate` name that names nothing it prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateError {
    /// What was given.
    pub given: String,
}

impl std::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--generate must be one of {}, got {:?}",
            Generate::NAMES.join(", "),
            self.given
        )
    }
}

impl std::error::Error for GenerateError {}

/// One command-line flag, with everything the help, the man page and the
/// completions say about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flag {
    /// The long name without its dashes: `plan` for `--plan`.
    pub long: &'static str,
    /// The one-letter name, if it has one: `h` for `-h`.
    pub short: Option<char>,
    /// What follows the flag, if it takes a value.
    pub value: Option<Value>,
    /// What applies when the flag is not given, as the help shows it
    /// (`[default: …]`); `None` for flags without one.
    pub default: Option<&'static str>,
    /// One paragraph, lower-case, no final period; the first clause (up to
    /// `: `, `; ` or ` (`) is the summary the completions show.
    pub help: &'static str,
    /// The modes it belongs to.
    pub modes: &'static [Mode],
}

/// What the program is asked to do: the first argument `replay` or
/// `serve` picks a mode, anything else is the live stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Stream from AllTick (the default).
    Live,
    /// `replay FILE...`: a capture to stdout again.
    Replay,
    /// `serve FILE...`: a capture as an AllTick WebSocket server.
    Serve,
    /// `history SYMBOL...`: AllTick's K-lines over its HTTP API.
    History,
}

impl Mode {
    /// The word that selects it (`None` for the live stream).
    pub fn word(self) -> Option<&'static str> {
        match self {
            Mode::Live => None,
            Mode::Replay => Some("replay"),
            Mode::Serve => Some("serve"),
            Mode::History => Some("history"),
        }
    }
}

/// Every mode: `--help` and `--version`.
const ALL: &[Mode] = &[Mode::Live, Mode::Replay, Mode::Serve, Mode::History];
/// The live stream only.
const LIVE: &[Mode] = &[Mode::Live];
/// The live stream and `history`: what reaches AllTick.
const LIVE_HISTORY: &[Mode] = &[Mode::Live, Mode::History];
/// `replay`, `serve` and `history`: a span of time.
const SPAN: &[Mode] = &[Mode::Replay, Mode::Serve, Mode::History];
/// `replay` and `serve`.
const REPLAY_SERVE: &[Mode] = &[Mode::Replay, Mode::Serve];
/// The live stream and `replay`.
const LIVE_REPLAY: &[Mode] = &[Mode::Live, Mode::Replay];
/// The live stream, `replay` and `history`: what shapes the lines written.
const WRITERS: &[Mode] = &[Mode::Live, Mode::Replay, Mode::History];

/// `--bars`' intervals, shortest first: those of bars made from trades
/// (`1s` … `1d`) and those of AllTick's K-lines (`history`: `1m` … `1M`).
pub const BAR_INTERVALS: &[&str] = &[
    "1s", "5s", "10s", "15s", "30s", "1m", "5m", "15m", "30m", "1h", "2h", "4h", "1d", "1w", "1M",
];

/// `--format`'s formats.
pub const FORMATS: &[&str] = &["jsonl", "csv", "parquet"];

/// The value a flag takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    /// Its name in the help: `SECS`, `URL`, `PATH`.
    pub name: &'static str,
    /// What kind of word it is, so that the completions can offer it.
    pub hint: Hint,
}

/// What kind of word a value is, for shell completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    /// A file name: completed from the file system.
    Path,
    /// A URL (`ws://`, `wss://`; the HTTP API's `http://`, `https://`): nothing to offer.
    Url,
    /// A number (a count, or seconds): nothing to offer.
    Number,
    /// A `HOST:PORT` to listen on: nothing to offer.
    Address,
    /// A comma-separated list of names: nothing to offer.
    List,
    /// One of a fixed set of words, offered as they are.
    OneOf(&'static [&'static str]),
}

impl Flag {
    /// `--plan`: how the user types it.
    pub fn long_name(&self) -> String {
        format!("--{}", self.long)
    }

    /// The fixed set of values, empty when the value is free.
    pub fn choices(&self) -> &'static [&'static str] {
        match self.value {
            Some(Value {
                hint: Hint::OneOf(choices),
                ..
            }) => choices,
            _ => &[],
        }
    }

    /// The value as the help and the man page show it: the choices
    /// themselves when they are few and short (`stock|forex`), else the
    /// value's name (`NAME`); `None` for flags without a value.
    pub fn value_word(&self) -> Option<String> {
        let value = self.value?;
        Some(if self.shows_choices() {
            self.choices().join("|")
        } else {
            value.name.to_string()
        })
    }

    /// The help paragraph, led by the choices when [`Flag::value_word`]
    /// does not show them: `free, basic … or all-cn: set …`.
    pub fn text(&self) -> String {
        match self.choices().split_last() {
            Some((last, rest)) if !self.shows_choices() => {
                let list = match rest {
                    [] => last.to_string(),
                    _ => format!("{} or {last}", rest.join(", ")),
                };
                format!("{list}: {}", self.help)
            }
            _ => self.help.to_string(),
        }
    }

    /// Whether the choices stand in for the value's name: there are
    /// some, and `--flag a|b` fits the help's flag column.
    pub fn shows_choices(&self) -> bool {
        let choices = self.choices();
        let inline: usize = choices.iter().map(|c| c.len() + 1).sum();
        !choices.is_empty() && self.long.len() + 2 + inline <= INLINE_CHOICES
    }

    /// The first clause of the help: what a completion menu shows.
    pub fn summary(&self) -> &'static str {
        let end = [": ", "; ", " ("]
            .iter()
            .filter_map(|sep| self.help.find(sep))
            .min()
            .unwrap_or(self.help.len());
        &self.help[..end]
    }
}

/// Longest `--flag a|b` that shows its choices in place of the value's
/// name; it is the width of the help's flag column.
const INLINE_CHOICES: usize = 22;

/// The flag a command-line word names (`--plan`, `-h`), if any.
pub fn find(word: &str) -> Option<&'static Flag> {
    if let Some(long) = word.strip_prefix("--") {
        return FLAGS.iter().find(|f| f.long == long);
    }
    let mut chars = word.strip_prefix('-')?.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => FLAGS.iter().find(|f| f.short == Some(c)),
        _ => None,
    }
}

const fn value(name: &'static str, hint: Hint) -> Option<Value> {
    Some(Value { name, hint })
}

/// A flag with a long name only; the table fills in the rest.
const fn flag(long: &'static str, help: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        value: None,
        default: None,
        help,
        modes: LIVE,
    }
}

/// Every flag, in the order the help lists them, each with the modes it
/// belongs to.
pub const FLAGS: &[Flag] = &[
    Flag {
        value: value("NAME", Hint::OneOf(&PLAN_NAMES)),
        modes: LIVE_HISTORY,
        ..flag(
            "plan",
            "set --connections and --max-symbols from AllTick's plan table \
             (explicit flags win); history and --heal: keep to the plan's HTTP \
             request limits (default free)",
        )
    },
    Flag {
        value: value("N", Hint::Number),
        default: Some("1"),
        ..flag("connections", "most connections per endpoint")
    },
    Flag {
        value: value("N", Hint::Number),
        default: Some("no limit"),
        ..flag(
            "max-symbols",
            "codes per connection, per kind (trades, depth); beyond N x \
             connections symbols are held back and admitted when room frees",
        )
    },
    Flag {
        value: value("MARKET", Hint::OneOf(&["stock", "forex"])),
        default: Some("by code form"),
        ..flag("market", "use only this endpoint, for every code")
    },
    Flag {
        value: value("URL", Hint::Url),
        ..flag("url", "one endpoint for every code, ws:// or wss://")
    },
    Flag {
        value: value("URL", Hint::Url),
        default: Some("AllTick's"),
        ..flag("stock-url", "the stock endpoint")
    },
    Flag {
        value: value("URL", Hint::Url),
        default: Some("AllTick's"),
        ..flag("forex-url", "the forex/crypto endpoint")
    },
    Flag {
        value: value("URL", Hint::Url),
        default: Some("AllTick's"),
        modes: LIVE_HISTORY,
        ..flag(
            "stock-api",
            "history and --heal: the HTTP API base for stocks, http:// or https://",
        )
    },
    Flag {
        value: value("URL", Hint::Url),
        default: Some("AllTick's"),
        modes: LIVE_HISTORY,
        ..flag(
            "forex-api",
            "history and --heal: the HTTP API base for forex, metals and crypto",
        )
    },
    Flag {
        value: value("PATH", Hint::Path),
        default: Some("$ALLTICK_TOKEN"),
        modes: &[Mode::Live, Mode::Serve, Mode::History],
        ..flag(
            "token-file",
            "read the token from PATH (serve: clients must give it)",
        )
    },
    Flag {
        value: value("SECS", Hint::Number),
        default: Some("10"),
        ..flag(
            "heartbeat",
            "heartbeat period, at least 1 and below the server's 30 s cut-off",
        )
    },
    Flag {
        value: value("SECS", Hint::Number),
        default: Some("30"),
        ..flag(
            "stale-after",
            "silence after which the link is dead; must exceed --heartbeat",
        )
    },
    Flag {
        value: value("SECS", Hint::Number),
        default: Some("10"),
        modes: LIVE_HISTORY,
        ..flag(
            "connect-timeout",
            "bound on one connection attempt (history: on one request)",
        )
    },
    Flag {
        value: value("SECS", Hint::Number),
        default: Some("60"),
        ..flag(
            "idle-close",
            "a connection left with no symbol to carry closes after SECS; it \
             opens again when a symbol comes for it",
        )
    },
    Flag {
        value: value("N", Hint::Number),
        default: Some("16384"),
        ..flag(
            "queue",
            "ticks held for a slow stdout before new ones are dropped (and counted)",
        )
    },
    Flag {
        value: value("SECS", Hint::Number),
        default: Some("off"),
        ..flag(
            "stats",
            "a status line on stderr every SECS seconds: rates, queue, drops, \
             reconnects, each connection",
        )
    },
    Flag {
        value: value("PATTERN", Hint::Path),
        default: Some("stdout"),
        modes: WRITERS,
        ..flag(
            "output",
            "write lines to files named from each line's own time in UTC: %Y \
             %m %d %H, %% for a %; directories are made, files appended, a \
             torn last line cut on start, and nothing already in the newest \
             files written again (history: files by each bar's start; what \
             they hold is not fetched again; replay: whole JSON lines or \
             Parquet, appended)",
        )
    },
    Flag {
        value: value("SECS", Hint::Number),
        default: Some("1"),
        ..flag(
            "fsync",
            "with --output, put written lines on disk at least this often \
             (and when a file's period ends)",
        )
    },
    Flag {
        value: value("FILE", Hint::Path),
        ..flag(
            "resume",
            "learn the last line of each code from FILE's tail (stdout \
             appended to FILE), so that a restart writes nothing twice",
        )
    },
    flag(
        "gaps",
        "write a gap line wherever the data is known to be incomplete: \
         outages, ticks dropped on overflow, lines a disk refused, the time \
         the tool was not running",
    ),
    Flag {
        modes: LIVE_HISTORY,
        ..flag(
            "demo",
            "stream from a built-in simulated AllTick server on 127.0.0.1: no \
             token, no network",
        )
    },
    Flag {
        value: value("INTERVAL", Hint::OneOf(BAR_INTERVALS)),
        modes: WRITERS,
        ..flag(
            "bars",
            "write a bar line per code and INTERVAL (1s to 1d, aligned to UTC) \
             in place of its trades: open, high, low, close, volume, turnover \
             and trades, summed exactly; history: AllTick's K-lines of \
             INTERVAL (1m 5m 15m 30m 1h 2h 4h 1d 1w 1M; not 2h or 4h for \
             stocks; default 1m)",
        )
    },
    Flag {
        value: value("SECS", Hint::Number),
        default: Some("2"),
        modes: LIVE_REPLAY,
        ..flag(
            "bar-grace",
            "with --bars, write a bar once the clock (live: the wall clock \
             moved by the feed's own offset; replay: the lines' own) is SECS \
             past its end; from then on every trade for its interval (bar \
             written or not) is counted as late and reported",
        )
    },
    Flag {
        modes: &[Mode::Live],
        ..flag(
            "heal",
            "with --bars of a K-line interval, fill the bars a gap touched \
             (outages, overflow, the time not running) with AllTick's \
             K-lines over HTTP once their intervals are over, marked as \
             kline bars; those bars are held until then; implies --gaps",
        )
    },
    Flag {
        value: value("SECS", Hint::Number),
        default: Some("120 + the plan's pace per request waiting"),
        modes: &[Mode::Live],
        ..flag(
            "heal-wait",
            "with --heal, write a held bar as built from trades once its \
             K-lines have not come SECS after they were asked for",
        )
    },
    Flag {
        value: value("LIST", Hint::List),
        default: Some("all"),
        modes: WRITERS,
        ..flag(
            "fields",
            "the fields trade and bar lines carry, in this order, comma-separated \
             (time,code,price,volume)",
        )
    },
    Flag {
        value: value("FORMAT", Hint::OneOf(FORMATS)),
        default: Some("jsonl"),
        modes: WRITERS,
        ..flag(
            "format",
            "lines as JSON, CSV rows under one header row, or a Parquet file of \
             typed columns (exact decimals, UTC ms times; one per --output \
             period, made from a .staging.jsonl file beside it); not with \
             depth, and gap lines go to stderr (Parquet files: to the staging \
             file)",
        )
    },
    Flag {
        value: value("ADDR", Hint::Address),
        default: Some("127.0.0.1:8765"),
        modes: &[Mode::Serve],
        ..flag(
            "listen",
            "serve: listen on HOST:PORT (port 0: any free one)",
        )
    },
    Flag {
        value: value("X", Hint::Number),
        default: Some("1"),
        modes: REPLAY_SERVE,
        ..flag(
            "speed",
            "replay, serve: the recorded pace times X (10: ten times as fast), or \
             max: as fast as the lines are taken",
        )
    },
    Flag {
        value: value("TIME", Hint::Number),
        default: Some("the start"),
        modes: SPAN,
        ..flag(
            "from",
            "replay, serve: lines from TIME on: ms since the epoch or ISO-8601 \
             UTC (2026-12-01T14:30:00Z); history: bars starting from TIME on \
             (default: the latest page, or after what --output holds)",
        )
    },
    Flag {
        value: value("TIME", Hint::Number),
        default: Some("the end"),
        modes: SPAN,
        ..flag(
            "to",
            "replay, serve: lines up to TIME (inclusive), written like --from; \
             history: bars starting up to TIME",
        )
    },
    Flag {
        value: value("KIND", Hint::OneOf(&Generate::NAMES)),
        ..flag(
            "generate",
            "print a man page or a shell completion script on stdout",
        )
    },
    Flag {
        short: Some('h'),
        modes: ALL,
        ..flag("help", "print this help and exit")
    },
    Flag {
        short: Some('V'),
        modes: ALL,
        ..flag("version", "print the version and exit")
    },
];
