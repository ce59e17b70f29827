//! The benchmark's consumer: reads a client's stdout from stdin.
//!
//! ```text
//! latency_consumer --count N [--idle-timeout S] [--deadline S]
//! latency_consumer --samples N [--warmup W] [--idle-timeout S] [--deadline S]
//! ```
//!
//! * `--count N` (throughput): count newlines in 256 KiB reads, without looking
//!   at the lines. The clock starts when the first line is complete and stops
//!   when line N is: `rate = (N - 1) / (t_N - t_1)`, i.e. steady-state
//!   delivery, excluding start-up (process start, connect, subscribe).
//!   Prints `lines=… secs=… rate=…`.
//! * `--samples N` (latency): read line by line as soon as bytes arrive; in each
//!   line find `"seq"` followed by optional spaces, `:`, optional spaces and
//!   digits (matches alltick-stream's output, raw frames and Python's
//!   `json.dumps`), and record `now_ns − seq` (the flood server with
//!   `--seq-ns` puts its send time there). Lines without a seq are skipped.
//!   The first `--warmup W` samples are dropped. Stops after N samples.
//!   Prints `samples=… secs=… rate=… p50_us=… p99_us=… max_us=…`.
//!
//! Both modes also stop at EOF, after `--idle-timeout` seconds with no input
//! (counted from start until the first input; default 10), or at `--deadline`
//! seconds after start (default 600), and then report what they have with
//! `complete=0`.

use std::io::{self, BufRead, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Default)]
struct Report {
    count_mode: bool,
    lines: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    lat_ns: Vec<u64>,
    warmup_left: u64,
}

impl Report {
    fn print(&mut self, complete: bool) {
        let secs = match (self.first, self.last) {
            (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
            _ => 0.0,
        };
        let n = if self.count_mode {
            self.lines
        } else {
            self.lat_ns.len() as u64
        };
        let rate = if secs > 0.0 && n > 1 {
            (n - 1) as f64 / secs
        } else {
            0.0
        };
        let mut line = format!(
            "{}={n} secs={secs:.4} rate={rate:.0} complete={}",
            if self.count_mode { "lines" } else { "samples" },
            u8::from(complete)
        );
        if !self.count_mode {
            self.lat_ns.sort_unstable();
            let pct = |p: f64| -> f64 {
                if self.lat_ns.is_empty() {
                    return f64::NAN;
                }
                let i = ((self.lat_ns.len() as f64 - 1.0) * p).round() as usize;
                self.lat_ns[i] as f64 / 1000.0
            };
            line.push_str(&format!(
                " p50_us={:.1} p99_us={:.1} max_us={:.1}",
                pct(0.5),
                pct(0.99),
                pct(1.0)
            ));
        }
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The number after `"seq"` in `line`, if any.
fn find_seq(line: &[u8]) -> Option<u64> {
    let key = b"\"seq\"";
    let pos = line.windows(key.len()).position(|w| w == key)?;
    let mut i = pos + key.len();
    while i < line.len() && line[i] == b' ' {
        i += 1;
    }
    if line.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    while i < line.len() && line[i] == b' ' {
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    while i < line.len() && line[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(u64::from(line[i] - b'0'))?;
        i += 1;
    }
    (i > start).then_some(v)
}

fn main() -> ExitCode {
    let mut count: Option<u64> = None;
    let mut samples: Option<u64> = None;
    let mut warmup = 0u64;
    let mut idle_timeout = 10.0f64;
    let mut deadline = 600.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().and_then(|v| v.parse::<f64>().ok());
        let Some(v) = v else {
            eprintln!("latency_consumer: {a} needs a number");
            return ExitCode::from(2);
        };
        match a.as_str() {
            "--count" => count = Some(v as u64),
            "--samples" => samples = Some(v as u64),
            "--warmup" => warmup = v as u64,
            "--idle-timeout" => idle_timeout = v,
            "--deadline" => deadline = v,
            other => {
                eprintln!("latency_consumer: unknown flag {other}");
                return ExitCode::from(2);
            }
        }
    }
    if count.is_some() == samples.is_some() {
        eprintln!(
            "usage: latency_consumer (--count N | --samples N [--warmup W]) [--idle-timeout S] [--deadline S]"
        );
        return ExitCode::from(2);
    }
    let report = Arc::new(Mutex::new(Report {
        count_mode: count.is_some(),
        warmup_left: warmup,
        lat_ns: Vec::with_capacity(samples.unwrap_or(0).min(50_000_000) as usize),
        ..Report::default()
    }));

    // Watchdog: idle timeout and deadline.
    let started = Instant::now();
    let last_input_ms = Arc::new(AtomicU64::new(0));
    {
        let report = report.clone();
        let last_input_ms = last_input_ms.clone();
        thread::spawn(move || {
            loop {
                thread::sleep(Duration::from_millis(100));
                let now_ms = started.elapsed().as_millis() as u64;
                let last = last_input_ms.load(Ordering::Relaxed);
                let idle = now_ms.saturating_sub(last) as f64 > idle_timeout * 1000.0;
                if idle || now_ms as f64 > deadline * 1000.0 {
                    let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                    r.print(false);
                    std::process::exit(3);
                }
            }
        });
    }

    let stdin = io::stdin();
    let mut input = stdin.lock();
    if let Some(n) = count {
        let mut buf = vec![0u8; 256 * 1024];
        let mut lines = 0u64;
        let mut first: Option<Instant> = None;
        loop {
            let got = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let t = Instant::now();
            last_input_ms.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            let chunk = &buf[..got];
            let mut newlines = chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            if newlines > 0 && first.is_none() {
                first = Some(t);
            }
            if lines + newlines >= n {
                newlines = n - lines;
            }
            lines += newlines;
            // Publish progress for the watchdog (cheap: once per read).
            {
                let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                r.lines = lines;
                r.first = first;
                if newlines > 0 {
                    r.last = Some(t);
                }
                if lines >= n {
                    r.print(true);
                    return ExitCode::SUCCESS;
                }
            }
        }
        let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
        r.print(false);
        return ExitCode::from(3);
    }

    let n = samples.unwrap_or(0);
    let mut line: Vec<u8> = Vec::with_capacity(1024);
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        let at = now_ns();
        let t = Instant::now();
        last_input_ms.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        let Some(seq) = find_seq(&line) else { continue };
        let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
        if r.warmup_left > 0 {
            r.warmup_left -= 1;
            continue;
        }
        r.lat_ns.push(at.saturating_sub(seq));
        r.first.get_or_insert(t);
        r.last = Some(t);
        if r.lat_ns.len() as u64 >= n {
            r.print(true);
            return ExitCode::SUCCESS;
        }
    }
    let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
    r.print(false);
    ExitCode::from(3)
}
