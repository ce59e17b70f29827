//! The integration tests, built as one binary: the real `alltick-stream`
//! against the simulated AllTick server, the simulator itself, and property
//! tests over the parsers. Filter by module, e.g. `cargo test faults::`.
//!
//! A test that needs an outside program (jq, python3, man, groff, mandoc,
//! zsh, fish, prlimit, openssl) asks `util::require` first: it skips with a
//! note where the program is missing, and fails instead under `CI=true`
//! (`.ci/run` installs them all).

// The harness: the tool as a child, simulator helpers, bounded waits, the raw WebSocket client.
#[macro_use]
mod util;

// `--bars`: bar lines against an aggregation computed here, replayed and live.
mod bars;
// Capture to files: `--output`, `--resume`, `--gaps`, restarts, kill -9, a full disk, midnight.
mod capture;
// Several connections: sharding, the stagger, routing by market, outages, the connection limit.
mod connections;
// Order-book depth: its requests and cancel, pacing beside trades, reconnects, depth lines.
mod depth;
// The fault matrix: the simulator misbehaving, and what the user sees and the tool does.
mod faults;
// `--generate`: the man page and completions, read by man, groff, mandoc, bash, zsh and fish.
mod generate;
// `history`: K-lines over HTTP against the simulator: readings, --output kept, kill -9, pacing, errors.
mod history;
// `--heal`: live bars whose gaps are filled with the simulator's K-lines: an outage, a restart, giving up, kill -9.
mod heal;
// House rules on the tree itself: import direction, file sizes, the README, named documents.
mod house;
// `--fields` and `--format csv`, read back by Python's csv module.
mod lean;
// `--format parquet`: replay, history and live, read back by pyarrow, DuckDB and polars.
mod parquet;
// Property tests: the stdin grammar, the symbol parser and the message decoder.
mod props;
// Each reading AllTick's docs leave open (seq, tick_time, number types, ...), end to end.
mod readings;
// docs/RECIPES.md run for real: jq filters over the output and the FIFO control channel.
mod recipes;
// `replay`: captures back to stdout in time order, gzip, stdin commands, signals.
mod replay;
// `serve`: a capture served over the AllTick protocol, to the tool and to a raw client.
mod serve;
// The simulator's HTTP K-line API over real sockets: answers, limits, readings, faults, HTTPS.
mod sim_http;
// The simulated server itself, through the raw WebSocket client: protocol, faults, readings.
mod sim_smoke;
// One connection end to end: stdout lines, stdin set changes, heartbeats, reconnects, exits.
mod stream;
