//! The shared harness: runs the real `alltick-stream` binary (or any other
//! child, such as jq) as a child process, collects its stdout lines and
//! stderr text as they arrive, and lets a test await conditions on them with
//! a bound. A failed check prints the command, its stdout and its stderr, so
//! a red test explains itself. Below the runner: simulator helpers and waits
//! on what the simulator recorded, and [`require`] for tests that need an
//! outside program. The raw WebSocket client is in [`ws`].

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use alltick_stream::sim::{SentTick, SimConfig, Simulator};
use alltick_stream::wire::protocol::CMD_SUB_TRADES;
use serde_json::Value;

pub mod ws;

/// Assert with the tool's output attached.
macro_rules! check {
    ($tool:expr, $cond:expr) => {
        assert!($cond, "check failed: {}{}", stringify!($cond), $tool.describe())
    };
    ($tool:expr, $cond:expr, $($msg:tt)+) => {
        assert!($cond, "{}{}", format!($($msg)+), $tool.describe())
    };
}

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_alltick-stream")
}

/// Generous bound for events that normally take well under a second; the
/// tests run on loaded 2-core machines.
pub const WAIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Collected {
    stdout: Vec<String>,
    stderr: String,
    stdout_closed: bool,
    stderr_closed: bool,
    /// While true the harness stops reading stdout: a consumer that stalls.
    paused: bool,
}

/// A running `alltick-stream`.
pub struct Tool {
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<(Mutex<Collected>, Condvar)>,
    command: String,
}

impl Tool {
    /// Start the binary with `args`, token `token` (if any) in ALLTICK_TOKEN.
    pub fn start(args: &[&str], token: Option<&str>) -> Tool {
        Tool::start_env(args, token, &[])
    }

    /// Like [`Tool::start`], with extra environment variables.
    pub fn start_env(args: &[&str], token: Option<&str>, env: &[(&str, &str)]) -> Tool {
        let mut cmd = Command::new(bin());
        cmd.envs(env.iter().copied());
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("ALLTICK_TOKEN");
        if let Some(t) = token {
            cmd.env("ALLTICK_TOKEN", t);
        }
        Tool::spawn(cmd)
    }

    /// Spawn `cmd` (consumed, so that it holds no copy of the child's stdio)
    /// and collect whichever of its stdout and stderr are piped.
    pub fn spawn(mut cmd: Command) -> Tool {
        let child = cmd.spawn().expect("spawn the command under test");
        Tool::watch(child, &cmd)
    }

    /// Take over a spawned `child` of `cmd` whose stdout may already have
    /// been handed elsewhere (a pipe into another process).
    pub fn watch(mut child: Child, cmd: &Command) -> Tool {
        let program = cmd.get_program().to_string_lossy();
        let program = if program == bin() {
            "alltick-stream".into()
        } else {
            program
        };
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        let command = format!("{program} {}", args.join(" "));
        let shared = Arc::new((Mutex::new(Collected::default()), Condvar::new()));
        match child.stdout.take() {
            Some(stdout) => {
                let shared = shared.clone();
                thread::spawn(move || {
                    let mut reader = BufReader::new(stdout);
                    let mut line = String::new();
                    loop {
                        {
                            let (m, cv) = &*shared;
                            let g = m.lock().unwrap();
                            drop(cv.wait_while(g, |c| c.paused).unwrap());
                        }
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                        let (m, cv) = &*shared;
                        m.lock()
                            .unwrap()
                            .stdout
                            .push(line.trim_end_matches('\n').to_string());
                        cv.notify_all();
                    }
                    let (m, cv) = &*shared;
                    m.lock().unwrap().stdout_closed = true;
                    cv.notify_all();
                });
            }
            None => shared.0.lock().unwrap().stdout_closed = true,
        }
        if let Some(stderr) = child.stderr.take() {
            let shared = shared.clone();
            thread::spawn(move || {
                let mut stderr = stderr;
                let mut buf = [0u8; 4096];
                loop {
                    match stderr.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let (m, cv) = &*shared;
                            m.lock()
                                .unwrap()
                                .stderr
                                .push_str(&String::from_utf8_lossy(&buf[..n]));
                            cv.notify_all();
                        }
                    }
                }
                let (m, cv) = &*shared;
                m.lock().unwrap().stderr_closed = true;
                cv.notify_all();
            });
        } else {
            shared.0.lock().unwrap().stderr_closed = true;
        }
        let stdin = child.stdin.take();
        Tool {
            child,
            stdin,
            shared,
            command,
        }
    }

    /// Stop reading stdout (the pipe fills and the tool's writes block).
    pub fn pause_stdout(&self) {
        self.shared.0.lock().unwrap().paused = true;
    }

    /// Read stdout again.
    pub fn resume_stdout(&self) {
        let (m, cv) = &*self.shared;
        m.lock().unwrap().paused = false;
        cv.notify_all();
    }

    /// Peak resident memory of the tool so far, in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Write lines to the tool's stdin.
    pub fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(text.as_bytes()).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Close the tool's stdin (EOF).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Wait until `pred(stdout lines, stderr)` holds; false after `timeout`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[String], &str) -> bool) -> bool {
        self.wait_every(timeout, timeout, pred)
    }

    /// Like [`Tool::wait_for`], re-checked at least every `step` as well, for
    /// conditions that also depend on something other than the output.
    pub fn wait_every(
        &self,
        timeout: Duration,
        step: Duration,
        pred: impl Fn(&[String], &str) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.shared;
        let mut g = m.lock().unwrap();
        loop {
            if pred(&g.stdout, &g.stderr) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = cv.wait_timeout(g, left.min(step)).unwrap().0;
        }
    }

    /// Wait until `pred()` holds, about something other than the output
    /// (files, the simulator), checked every 20 ms; false after `timeout`.
    pub fn poll(&self, timeout: Duration, pred: impl Fn() -> bool) -> bool {
        self.wait_every(timeout, Duration::from_millis(20), |_, _| pred())
    }

    /// Whether a thread of the tool is blocked writing into a full pipe
    /// (its stdout, when [`Tool::pause_stdout`] stopped reading it): the
    /// kernel says where each thread sleeps (`wchan`), or else which
    /// system call it is in (`write` to fd 1).
    pub fn blocked_on_stdout(&self) -> bool {
        // The number of `write` in /proc/PID/task/TID/syscall.
        let write_call = if cfg!(target_arch = "aarch64") {
            "64 0x1 "
        } else {
            "1 0x1 "
        };
        let tasks = format!("/proc/{}/task", self.pid());
        std::fs::read_dir(tasks)
            .into_iter()
            .flatten()
            .flatten()
            .any(|task| {
                let read = |name: &str| std::fs::read_to_string(task.path().join(name));
                read("wchan").is_ok_and(|w| w.contains("pipe_write"))
                    || read("syscall").is_ok_and(|s| s.starts_with(write_call))
            })
    }

    /// Wait until the child's stdout reached EOF.
    pub fn wait_stdout_closed(&self, timeout: Duration) -> bool {
        let (m, cv) = &*self.shared;
        let g = m.lock().unwrap();
        !cv.wait_timeout_while(g, timeout, |c| !c.stdout_closed)
            .unwrap()
            .1
            .timed_out()
    }

    /// Wait until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str) -> bool {
        self.wait_for(WAIT, |_, err| err.contains(needle))
    }

    /// Wait until at least `n` stdout lines arrived.
    pub fn wait_lines(&self, n: usize) -> bool {
        self.wait_for(WAIT, |out, _| out.len() >= n)
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().stdout.clone()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.shared.0.lock().unwrap().stderr.clone()
    }

    /// Send a signal with the system's `kill`.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Wait for exit within `timeout`; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads take the last output: both pipes
                // reach EOF once the child is gone (stdout only if it is
                // being read). A child that exits at once can be reaped
                // before its stderr was read.
                let (m, cv) = &*self.shared;
                let g = m.lock().unwrap();
                let _g = cv
                    .wait_timeout_while(g, Duration::from_secs(5), |c| {
                        (!c.stdout_closed && !c.paused) || !c.stderr_closed
                    })
                    .unwrap();
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // Polling a child's exit has no event to block on without libc;
            // 10 ms steps, bounded by `timeout`.
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The command, its stdout (last lines) and stderr, for failure messages.
    pub fn describe(&self) -> String {
        let g = self.shared.0.lock().unwrap();
        let tail: Vec<&String> = g.stdout.iter().rev().take(20).collect::<Vec<_>>();
        let tail: Vec<&str> = tail.into_iter().rev().map(String::as_str).collect();
        format!(
            "\n--- command: {}\n--- stdout ({} lines, last 20):\n{}\n--- stderr:\n{}",
            self.command,
            g.stdout.len(),
            tail.join("\n"),
            g.stderr
        )
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the outside program `program` (jq, python3, man, …) is
/// installed, for a test that needs it. Under `CI=true` a missing program
/// fails the test: CI installs every one of them (`.ci/run`), so a test
/// there cannot pass by skipping. Elsewhere the test may skip: this says
/// so on the terminal (past the test harness's capture, which shows only a
/// failed test's output) and returns false.
pub fn require(program: &str) -> bool {
    if installed(program) {
        return true;
    }
    let current = thread::current();
    let test = current.name().unwrap_or("a test");
    let under_ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    assert!(
        !under_ci,
        "{test} needs {program}, which is not installed (or does not run): \
         .ci/run installs it, and under CI=true a test may not skip"
    );
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test}: it needs {program}, which is not installed here \
         (under CI=true this is a failure)"
    );
    false
}

/// What [`require`] takes for the Python modules that read Parquet files
/// (installed by `.ci/run` from PyPI).
pub const PARQUET_READERS: &str = "pyarrow, pandas, duckdb and polars";

/// Whether `program` runs: it answers its version question with success.
/// (A minimized Ubuntu's `/usr/bin/man` is a stub that only says it was
/// removed.)
fn installed(program: &str) -> bool {
    if program == PARQUET_READERS {
        return Command::new("python3")
            .args(["-c", "import pyarrow, pandas, duckdb, polars"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    }
    let probe: &[&str] = match program {
        "openssl" => &["version"],
        // mandoc has no version option: format an empty page.
        "mandoc" => &["-Tascii", "/dev/null"],
        _ => &["--version"],
    };
    Command::new(program)
        .args(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The token every simulator expects (unless a test says otherwise) and
/// every tool is given. Tests check it never reaches the output.
pub const TOKEN: &str = "tok-SECRET-9f8e7d6c";

/// A simulator configuration pushing `ticks_per_sec` per code and accepting
/// only [`TOKEN`].
pub fn config(ticks_per_sec: f64) -> SimConfig {
    SimConfig {
        ticks_per_sec,
        expected_token: Some(TOKEN.into()),
        ..SimConfig::default()
    }
}

/// Start a simulator on 127.0.0.1 with `cfg`.
pub fn start_sim(cfg: SimConfig) -> Simulator {
    Simulator::start(cfg).expect("start simulator")
}

/// A simulator pushing `ticks_per_sec` per code, accepting only [`TOKEN`].
pub fn sim(ticks_per_sec: f64) -> Simulator {
    start_sim(config(ticks_per_sec))
}

/// A simulator pushing `rate` ticks/s per code that pushes each code's last
/// trade again on every subscription.
pub fn repushing(rate: f64) -> Simulator {
    start_sim(SimConfig {
        readings: alltick_stream::sim::Readings {
            repush_last_trade: true,
            ..Default::default()
        },
        ..config(rate)
    })
}

/// A simulator pushing `rate` ticks/s per code whose clock reads 1.5 s
/// before the next midnight UTC; and that midnight (ms).
pub fn before_midnight(rate: f64) -> (Simulator, i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let midnight = (now / 86_400_000 + 1) * 86_400_000;
    let sim = start_sim(SimConfig {
        clock_offset_ms: midnight - 1_500 - now,
        ..config(rate)
    });
    (sim, midnight)
}

/// Run the tool against `url` with [`TOKEN`], then `extra` arguments.
pub fn start_url(url: &str, extra: &[&str]) -> Tool {
    let mut args = vec!["--url", url];
    args.extend_from_slice(extra);
    Tool::start(&args, Some(TOKEN))
}

/// Run the tool against `sim` with [`TOKEN`], then `extra` arguments.
pub fn start(sim: &Simulator, extra: &[&str]) -> Tool {
    start_url(&sim.url(), extra)
}

/// The tool's capture of `sim` into `file` (`--output`) of `symbols`, until
/// it holds `lines` lines; then stopped.
pub fn capture_into(sim: &Simulator, file: &std::path::Path, symbols: &[&str], lines: usize) {
    let mut args = vec!["--output", file.to_str().unwrap()];
    args.extend_from_slice(symbols);
    let mut tool = start(sim, &args);
    let grown = tool.poll(WAIT, || {
        std::fs::read_to_string(file).is_ok_and(|t| t.lines().count() >= lines)
    });
    check!(tool, grown);
    stop(&mut tool);
}

/// `history` against `sim`'s HTTP API (both bases), then `args`.
pub fn history_argv(sim: &Simulator, args: &[&str]) -> Vec<String> {
    let mut argv = vec![
        "history".to_string(),
        "--stock-api".into(),
        sim.http_base(true),
        "--forex-api".into(),
        sim.http_base(false),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

/// `args` as the `&str`s [`Tool::start`] takes.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// SIGINT, and require a clean exit.
pub fn stop(tool: &mut Tool) {
    tool.signal("INT");
    let status = tool.wait_exit(WAIT);
    check!(tool, status.is_some_and(|s| s.success()), "exit {status:?}");
}

/// Wait until the latest trade subscription (22004) was acknowledged and
/// carries exactly `want`.
pub fn wait_for_set(sim: &Simulator, want: &[&str]) -> bool {
    sim.wait_until(WAIT, |s| {
        s.requests
            .iter()
            .rev()
            .find(|r| r.cmd_id == CMD_SUB_TRADES)
            .is_some_and(|r| r.ret == 200 && r.codes() == want)
    })
}

/// Wait until a 22004 acknowledged with 200 on a connection >= `conn`
/// carries exactly `want`.
pub fn acked_set(sim: &Simulator, conn: u64, want: &[&str]) -> bool {
    sim.wait_until(WAIT, |s| {
        s.requests.iter().any(|r| {
            r.conn >= conn && r.cmd_id == CMD_SUB_TRADES && r.ret == 200 && r.codes() == want
        })
    })
}

/// Wait (up to `timeout`) until a 22004 with any codes was acknowledged with
/// 200 on a connection >= `conn`.
pub fn acked_on(sim: &Simulator, conn: u64, timeout: Duration) -> bool {
    sim.wait_until(timeout, |s| {
        s.requests
            .iter()
            .any(|r| r.conn >= conn && r.cmd_id == CMD_SUB_TRADES && r.ret == 200)
    })
}

/// Parse stdout lines as JSON, failing on any that is not.
pub fn json_lines(tool: &Tool) -> Vec<Value> {
    tool.stdout()
        .iter()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}{}", tool.describe()))
        })
        .collect()
}

/// (code, seq): what identifies a trade.
pub fn key(v: &Value) -> (String, u64) {
    (
        v["code"].as_str().unwrap_or_default().to_owned(),
        v["seq"].as_u64().unwrap_or_default(),
    )
}

/// The ticks of `sent` that are not among the output `lines`.
pub fn unwritten<'a>(lines: &[Value], sent: &'a [SentTick]) -> Vec<&'a SentTick> {
    let got: HashSet<(String, u64)> = lines.iter().map(key).collect();
    sent.iter()
        .filter(|t| !got.contains(&(t.code.clone(), t.seq)))
        .collect()
}

/// Per code, seqs on stdout strictly increase (no duplicates, no reordering).
pub fn assert_ordered(tool: &Tool, lines: &[Value]) {
    let codes: HashSet<&str> = lines.iter().filter_map(|v| v["code"].as_str()).collect();
    for code in codes {
        let seqs: Vec<u64> = lines
            .iter()
            .filter(|v| v["code"] == code)
            .map(|v| v["seq"].as_u64().expect("seq"))
            .collect();
        check!(
            tool,
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{code}: seqs out of order or repeated"
        );
    }
}

/// Run `jq ARGS` over `input`, bounded by [`WAIT`].
pub fn jq(args: &[&str], input: &str) -> Output {
    let mut child = Command::new("jq")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jq is installed");
    let mut stdin = child.stdin.take().expect("jq stdin");
    let input = input.to_owned();
    // Written from a thread: jq's output may fill its pipe before it has
    // read all of its input.
    thread::spawn(move || stdin.write_all(input.as_bytes()));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(WAIT) {
        Ok(out) => out.expect("wait for jq"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("jq {args:?} did not finish within {WAIT:?}");
        }
    }
}

/// A fresh directory, removed when dropped. Unique per call: the tests share
/// one process.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("alltick-tests-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file under `dir` but dot files, sorted.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !e.file_name().to_string_lossy().starts_with('.') {
                // A dot file beside a capture is the tool's memory of it.
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `YYYY-MM-DD` of a day count since 1970 (an independent computation of
/// the civil calendar, for checking file names).
pub fn civil(day: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{}", day * 86_400), "+%Y-%m-%d"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
