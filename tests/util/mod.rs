//! Test harness: runs the real `alltick-stream` binary as a child process,
//! collects its stdout lines and stderr text as they arrive, and lets a test
//! await conditions on them with a bound. A failed check prints the command,
//! its stdout and its stderr, so a red test explains itself.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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
        let mut child = cmd.spawn().expect("spawn alltick-stream");
        let shared = Arc::new((Mutex::new(Collected::default()), Condvar::new()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        {
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
        {
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
            });
        }
        let stdin = child.stdin.take();
        Tool {
            child,
            stdin,
            shared,
            command: format!("alltick-stream {}", args.join(" ")),
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
            g = cv.wait_timeout(g, left).unwrap().0;
        }
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
                // Let the reader threads take the last output.
                self.wait_for(Duration::from_secs(5), |_, _| true);
                let (m, cv) = &*self.shared;
                let g = m.lock().unwrap();
                let _g = cv
                    .wait_timeout_while(g, Duration::from_secs(5), |c| {
                        !c.stdout_closed && !c.paused
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

/// A simulator on 127.0.0.1 pushing `ticks_per_sec` per code and
/// accepting only `token`.
pub fn simulator(ticks_per_sec: f64, token: &str) -> alltick_stream::sim::Simulator {
    alltick_stream::sim::Simulator::start(alltick_stream::sim::SimConfig {
        ticks_per_sec,
        expected_token: Some(token.into()),
        ..alltick_stream::sim::SimConfig::default()
    })
    .expect("start simulator")
}

/// Run the tool against `url` with `token`, then `extra` arguments.
pub fn start_url(url: &str, token: &str, extra: &[&str]) -> Tool {
    let mut args = vec!["--url", url];
    args.extend_from_slice(extra);
    Tool::start(&args, Some(token))
}

/// Wait until the latest trade subscription (22004) was acknowledged and
/// carries exactly `want`.
pub fn wait_for_set(sim: &alltick_stream::sim::Simulator, want: &[&str]) -> bool {
    sim.wait_until(WAIT, |s| {
        s.requests
            .iter()
            .rev()
            .find(|r| r.cmd_id == alltick_stream::protocol::CMD_SUB_TRADES)
            .is_some_and(|r| r.ret == 200 && r.codes() == want)
    })
}

/// Assert with the tool's output attached.
#[macro_export]
macro_rules! check {
    ($tool:expr, $cond:expr) => {
        assert!($cond, "check failed: {}{}", stringify!($cond), $tool.describe())
    };
    ($tool:expr, $cond:expr, $($msg:tt)+) => {
        assert!($cond, "{}{}", format!($($msg)+), $tool.describe())
    };
}

/// Parse stdout lines as JSON, failing on any that is not.
pub fn json_lines(tool: &Tool) -> Vec<serde_json::Value> {
    tool.stdout()
        .iter()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}{}", tool.describe()))
        })
        .collect()
}
