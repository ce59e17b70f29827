//! The prose of `--help` and the man page: the sections around the flag
//! table, the same in both.

/// One paragraph of a prose section, or one term with its description.
#[derive(Clone, Copy, Debug)]
pub enum Block {
    /// A paragraph.
    Text(&'static str),
    /// A term (a command, a variable, a status) and what it means.
    Item(&'static str, &'static str),
}

/// A titled section of prose, the same in `--help` and the man page.
#[derive(Clone, Copy, Debug)]
pub struct Section {
    /// The heading, upper-case: `EXIT STATUS`.
    pub title: &'static str,
    /// The paragraphs and items, in order.
    pub blocks: &'static [Block],
}

/// What the program is, in one line: the help's first line, the man page's
/// NAME.
pub const ABOUT: &str = "stream AllTick real-time trades to stdout as JSON lines";

/// The man page's DESCRIPTION (the help leaves it out, to stay short).
pub const DESCRIPTION: Section = Section {
    title: "DESCRIPTION",
    blocks: &[
        Block::Text(
            "alltick-stream subscribes to the SYMBOLs given as arguments and on \
             stdin, and writes every trade (and order-book update) AllTick pushes \
             to stdout, one JSON object per line. Status and errors go to stderr; \
             stdout carries only data.",
        ),
        Block::Text(
            "It sends heartbeats, notices a connection that fell silent, reconnects \
             and resubscribes by itself, and spreads symbols over several \
             connections when the plan allows. The token is read from ALLTICK_TOKEN \
             or --token-file and never appears in anything the tool prints.",
        ),
    ],
};

/// How symbols are written.
pub const SYMBOLS: Section = Section {
    title: "SYMBOLS",
    blocks: &[Block::Text(
        "EXCHANGE:TICKER (NASDAQ:AAPL, NYSE:IBM, HKEX:700, SSE:600519) or a native \
         AllTick code, sent exactly as typed (AAPL.US, .DJI.US, 700.HK, BTCUSDT, \
         Silver). SYMBOL@depth or SYMBOL@depth=N (1-10) subscribes to its order \
         book. Stock codes go to the stock endpoint, the rest to the forex/crypto \
         endpoint.",
    )],
};

/// The stdin command grammar.
pub const STDIN: Section = Section {
    title: "STDIN",
    blocks: &[
        Block::Text("One command per line, while streaming:"),
        Block::Item("+SYMBOL [SYMBOL...]", "subscribe"),
        Block::Item("-SYMBOL [SYMBOL...]", "unsubscribe"),
        Block::Item(
            "?",
            "print each connection's wanted and acknowledged sets, and the \
             symbols held back, on stderr",
        ),
        Block::Text("Blank lines and lines starting with # are ignored. EOF keeps streaming."),
    ],
};

/// The modes besides the live stream.
pub const MODES: Section = Section {
    title: "REPLAY, SERVE AND HISTORY",
    blocks: &[
        Block::Item(
            "replay [FLAGS] FILE... [SYMBOL...]",
            "write the lines of captures (--output files or saved stdout, plain \
             or .gz) to stdout again, byte for byte, merged in time order; the \
             SYMBOLs, and +SYMBOL / -SYMBOL on stdin, choose the codes",
        ),
        Block::Item(
            "serve [FLAGS] FILE...",
            "an AllTick WebSocket server over captures, with AllTick's protocol; \
             each connection replays the files from its first subscription at \
             --speed, pushing its codes' trades and books with their digits",
        ),
        Block::Item(
            "history [FLAGS] SYMBOL...",
            "AllTick's K-lines over its HTTP API as bar lines (\"type\":\"kline\", \
             the keys of --bars, trades null): complete bars only, in time order \
             per code, each once, paced to --plan; with --output, what the files \
             hold is not fetched again. Forex, metal and crypto codes reach back \
             to --from; stock codes only as far as the server's latest bars",
        ),
        Block::Text(
            "AllTick codes are never lower-case words, so a first argument replay, \
             serve or history is the mode, not a symbol.",
        ),
    ],
};

/// The environment variables read.
pub const ENVIRONMENT: Section = Section {
    title: "ENVIRONMENT",
    blocks: &[Block::Item(
        "ALLTICK_TOKEN",
        "the API token (never pass it on the command line)",
    )],
};

/// What each exit status means.
pub const EXIT_STATUS: Section = Section {
    title: "EXIT STATUS",
    blocks: &[
        Block::Item("0", "stopped by SIGINT/SIGTERM, or stdout closed"),
        Block::Item("1", "cannot go on: token refused, stdout failed"),
        Block::Item("2", "bad arguments, or no token"),
        Block::Item(
            "3",
            "history: some codes failed (each said on stderr); the others are complete",
        ),
        Block::Item(
            "4",
            "history: stopped before the end (the plan's daily allowance, the \
             server's refusals for rate, or a signal); the next run goes on",
        ),
    ],
};

/// The man page's EXAMPLES: what each does, then the shell lines.
pub const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "Try it without a token or network:",
        &["alltick-stream --demo NASDAQ:AAPL NASDAQ:TSLA"],
    ),
    (
        "Stream two stocks and keep the trades above 200:",
        &[
            "export ALLTICK_TOKEN=...",
            "alltick-stream NASDAQ:AAPL NASDAQ:TSLA | jq -c 'select(.price > 200)'",
        ],
    ),
    (
        "Change the subscriptions from another program through a FIFO (<> keeps it open):",
        &[
            "mkfifo ctl",
            "alltick-stream NASDAQ:AAPL <>ctl >ticks.jsonl &",
            "echo \"+NYSE:IBM\" >ctl; echo \"-NASDAQ:TSLA\" >ctl",
        ],
    ),
    (
        "Use the connections and symbol limits of the premium plan, with a status line every minute:",
        &["alltick-stream --plan premium --stats 60 NASDAQ:AAPL HKEX:700 BTCUSDT"],
    ),
    (
        "Capture trades into daily files; later, minute bars of them as CSV:",
        &[
            "alltick-stream --output 'ticks/%Y-%m-%d.jsonl' --gaps NASDAQ:AAPL",
            "alltick-stream replay --speed max --bars 1m --format csv ticks/*.jsonl >bars.csv",
        ],
    ),
    (
        "Keep minute K-lines of EURUSD since December and of AAPL, fetching only what is new each hour (crontab):",
        &[
            "0 * * * * alltick-stream history --plan basic --from 2026-12-01T00:00:00Z \\",
            "    --output 'bars/%Y-%m.jsonl' EURUSD NASDAQ:AAPL 2>>history.log",
        ],
    ),
    (
        "Install the man page and the bash completion:",
        &[
            "alltick-stream --generate man >~/.local/share/man/man1/alltick-stream.1",
            "alltick-stream --generate complete-bash \\",
            "    >~/.local/share/bash-completion/completions/alltick-stream",
        ],
    ),
];
