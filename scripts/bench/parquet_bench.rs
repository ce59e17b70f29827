//! The Parquet form's benchmark: a capture of the tool's lines into one
//! Parquet file with `ParquetFile`, timed.
//!
//! ```text
//! parquet_bench CAPTURE.jsonl OUT.parquet [--codec zstd|zstd:LEVEL|snappy|none]
//!               [--group ROWS] [--bars]
//! ```
//!
//! Reads CAPTURE (trade lines, or bar lines with `--bars`) in 1 MiB reads,
//! pushes every line, and prints one line: `rows=… refused=… secs=…
//! rows_per_s=… bytes=… peak_rss_kib=…` (peak RSS from the kernel's
//! `VmHWM`, as `/usr/bin/time -f %M` gives it). Lines the file refuses
//! (gap or depth lines, values it cannot hold) are counted, not fatal.
//! `scripts/parquet_bench.sh` runs it over a generated capture.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::process::ExitCode;
use std::time::Instant;

use alltick_stream::form::parquet::{Options, ParquetFile};
use alltick_stream::form::{Columns, Format};
use parquet::basic::{Compression, ZstdLevel};

struct Args {
    capture: String,
    out: String,
    options: Options,
    bars: bool,
}

fn args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut it = std::env::args().skip(1);
    let mut files = Vec::new();
    let mut options = Options::default();
    let mut bars = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--codec" => {
                let c = it.next().ok_or("--codec needs a value")?;
                options.compression = match c.as_str() {
                    "snappy" => Compression::SNAPPY,
                    "none" => Compression::UNCOMPRESSED,
                    "zstd" => Compression::ZSTD(ZstdLevel::default()),
                    z => {
                        let level = z.strip_prefix("zstd:").ok_or("unknown codec")?.parse()?;
                        Compression::ZSTD(ZstdLevel::try_new(level)?)
                    }
                };
            }
            "--group" => options.row_group_rows = it.next().ok_or("--group needs rows")?.parse()?,
            "--bars" => bars = true,
            _ => files.push(a),
        }
    }
    let [capture, out] = <[String; 2]>::try_from(files)
        .map_err(|_| "usage: parquet_bench CAPTURE.jsonl OUT.parquet [--codec C] [--group N]")?;
    Ok(Args {
        capture,
        out,
        options,
        bars,
    })
}

/// The peak resident set of this process, KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn run(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let names: Vec<&'static str> = Columns::all(Format::Jsonl, a.bars).names().collect();
    let mut input = BufReader::with_capacity(1 << 20, File::open(&a.capture)?);
    let out = BufWriter::with_capacity(1 << 20, File::create(&a.out)?);
    let start = Instant::now();
    let mut file = ParquetFile::with_options(out, &names, a.options)?;
    let mut line = Vec::with_capacity(512);
    let mut refused = 0u64;
    while {
        line.clear();
        input.read_until(b'\n', &mut line)? > 0
    } {
        if let Err(e) = file.push(&line) {
            if refused == 0 {
                eprintln!("parquet_bench: first refused: {e}");
            }
            refused += 1;
        }
    }
    let rows = file.rows();
    file.finish()?.into_inner()?;
    let secs = start.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&a.out)?.len();
    println!(
        "rows={rows} refused={refused} secs={secs:.3} rows_per_s={:.0} bytes={bytes} peak_rss_kib={}",
        rows as f64 / secs,
        peak_rss_kib()
    );
    Ok(())
}

fn main() -> ExitCode {
    match args().and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parquet_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
