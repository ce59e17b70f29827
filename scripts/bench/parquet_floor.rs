//! The parquet crate's own cost per trade row: N rows (default 2 M) of
//! the trade columns, their values built beforehand (like
//! `flood_server`'s: 50 codes, prices in cents, round-lot volumes,
//! turnover = price x volume, sides buy, sell and null), written with the
//! file's encodings and row groups of 64 Ki rows; the time to build the
//! values is left out.
//!
//!   parquet_floor N zstd|none page|chunk|none|time [BATCH] [OUT]
//!
//! (statistics of every column by page, by chunk, none, or of `seq` and
//! `time` only, as the tool writes them)
//!
//! prints the time per row of the encoding and writing alone, per column
//! and in all, and the file's size: the floor under `--format parquet`'s
//! CPU per tick, whatever reads the lines (docs/PARQUET.md).
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, LogicalType, Repetition, Type as P, ZstdLevel};
use parquet::data_type::{
    ByteArray, ByteArrayType, FixedLenByteArray, FixedLenByteArrayType, Int64Type,
};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnPath, Type};

fn col(name: &str, p: P, l: LogicalType, opt: bool, len: i32, dec: bool) -> Arc<Type> {
    let mut t = Type::primitive_type_builder(name, p)
        .with_repetition(if opt {
            Repetition::OPTIONAL
        } else {
            Repetition::REQUIRED
        })
        .with_logical_type(Some(l));
    if dec {
        t = t
            .with_precision(if len == 16 { 38 } else { 18 })
            .with_scale(8);
    }
    if len == 16 {
        t = t.with_length(16);
    }
    Arc::new(t.build().unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(2_000_000, |s| s.parse().unwrap());
    let codec = args.get(2).map_or("zstd", |s| s.as_str());
    let stats = args.get(3).map_or("page", |s| s.as_str());
    let batch: usize = args.get(4).map_or(4096, |s| s.parse().unwrap());
    let path = args
        .get(5)
        .map_or("/tmp/parquet_floor.parquet", |s| s.as_str());
    let fields = vec![
        col("type", P::BYTE_ARRAY, LogicalType::String, false, 0, false),
        col(
            "symbol",
            P::BYTE_ARRAY,
            LogicalType::String,
            false,
            0,
            false,
        ),
        col("code", P::BYTE_ARRAY, LogicalType::String, false, 0, false),
        col(
            "seq",
            P::INT64,
            LogicalType::integer(64, false),
            false,
            0,
            false,
        ),
        col(
            "time",
            P::INT64,
            LogicalType::timestamp(true, parquet::basic::TimeUnit::MILLIS),
            false,
            0,
            false,
        ),
        col(
            "price",
            P::INT64,
            LogicalType::decimal(8, 18),
            false,
            0,
            true,
        ),
        col(
            "volume",
            P::FIXED_LEN_BYTE_ARRAY,
            LogicalType::decimal(8, 38),
            true,
            16,
            true,
        ),
        col(
            "turnover",
            P::FIXED_LEN_BYTE_ARRAY,
            LogicalType::decimal(8, 38),
            true,
            16,
            true,
        ),
        col("side", P::BYTE_ARRAY, LogicalType::String, true, 0, false),
    ];
    let schema = Arc::new(
        Type::group_type_builder("schema")
            .with_fields(fields)
            .build()
            .unwrap(),
    );
    let comp = match codec {
        "zstd" => Compression::ZSTD(ZstdLevel::try_new(3).unwrap()),
        _ => Compression::UNCOMPRESSED,
    };
    let st = match stats {
        "none" | "time" => EnabledStatistics::None,
        "chunk" => EnabledStatistics::Chunk,
        _ => EnabledStatistics::Page,
    };
    let mut b = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(comp)
        .set_statistics_enabled(st);
    for k in ["seq", "time"] {
        if stats == "time" {
            b = b.set_column_statistics_enabled(ColumnPath::from(k), EnabledStatistics::Page);
        }
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(k), false)
            .set_column_encoding(ColumnPath::from(k), Encoding::DELTA_BINARY_PACKED);
    }
    b = b
        .set_column_dictionary_enabled(ColumnPath::from("turnover"), false)
        .set_column_encoding(ColumnPath::from("turnover"), Encoding::PLAIN);
    let props = Arc::new(b.build());
    // rows like flood_server's
    let codes: Vec<String> = (0..50).map(|i| format!("C{i:03}.US")).collect();
    let group = 65536usize;
    let t0 = Instant::now();
    let out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut w = SerializedFileWriter::new(out, schema, props).unwrap();
    let mut built = std::time::Duration::ZERO;
    let mut per = [std::time::Duration::ZERO; 9];
    let mut row = 0usize;
    while row < n {
        let m = group.min(n - row);
        let tb = Instant::now();
        let typ: Vec<ByteArray> = (0..m).map(|_| ByteArray::from("trade")).collect();
        let code: Vec<ByteArray> = (0..m)
            .map(|i| ByteArray::from(codes[(row + i) % 50].as_str()))
            .collect();
        let seq: Vec<i64> = (0..m).map(|i| (row + i + 1) as i64).collect();
        let time: Vec<i64> = (0..m)
            .map(|i| 1_796_083_200_000 + ((row + i) / 1000) as i64)
            .collect();
        let cents: Vec<i64> = (0..m)
            .map(|i| 2000 + ((((row + i) % 50) * 7919) % 48000) as i64 + ((row + i) % 97) as i64)
            .collect();
        let price: Vec<i64> = cents.iter().map(|c| c * 1_000_000).collect();
        let vol: Vec<i128> = (0..m)
            .map(|i| 100 * (1 + ((row + i) % 20) as i128) * 100_000_000)
            .collect();
        let turn: Vec<i128> = (0..m)
            .map(|i| cents[i] as i128 * 100 * (1 + ((row + i) % 20) as i128) * 1_000_000)
            .collect();
        let fl = |v: &[i128]| {
            let mut all = Vec::with_capacity(v.len() * 16);
            for x in v {
                all.extend_from_slice(&x.to_be_bytes());
            }
            let all = Bytes::from(all);
            (0..v.len())
                .map(|i| FixedLenByteArray::from(ByteArray::from(all.slice(i * 16..i * 16 + 16))))
                .collect::<Vec<_>>()
        };
        let volf = fl(&vol);
        let turnf = fl(&turn);
        let sides = [ByteArray::from("buy"), ByteArray::from("sell")];
        let side_def: Vec<i16> = (0..m).map(|i| i16::from((row + i) % 3 != 2)).collect();
        let side: Vec<ByteArray> = (0..m)
            .filter(|i| (row + i) % 3 != 2)
            .map(|i| sides[(row + i) % 3].clone())
            .collect();
        let ones = vec![1i16; m];
        built += tb.elapsed();
        let mut g = w.next_row_group().unwrap();
        let mut ci = 0;
        while let Some(mut c) = g.next_column().unwrap() {
            let tc = Instant::now();
            for from in (0..m).step_by(batch) {
                let to = (from + batch).min(m);
                match ci {
                    0 => {
                        c.typed::<ByteArrayType>()
                            .write_batch(&typ[from..to], None, None)
                            .unwrap();
                    }
                    1 | 2 => {
                        c.typed::<ByteArrayType>()
                            .write_batch(&code[from..to], None, None)
                            .unwrap();
                    }
                    3 => {
                        c.typed::<Int64Type>()
                            .write_batch(&seq[from..to], None, None)
                            .unwrap();
                    }
                    4 => {
                        c.typed::<Int64Type>()
                            .write_batch(&time[from..to], None, None)
                            .unwrap();
                    }
                    5 => {
                        c.typed::<Int64Type>()
                            .write_batch(&price[from..to], None, None)
                            .unwrap();
                    }
                    6 => {
                        c.typed::<FixedLenByteArrayType>()
                            .write_batch(&volf[from..to], Some(&ones[from..to]), None)
                            .unwrap();
                    }
                    7 => {
                        c.typed::<FixedLenByteArrayType>()
                            .write_batch(&turnf[from..to], Some(&ones[from..to]), None)
                            .unwrap();
                    }
                    _ => {
                        let d = &side_def[from..to];
                        let a = side_def[..from].iter().filter(|&&x| x == 1).count();
                        let k = d.iter().filter(|&&x| x == 1).count();
                        c.typed::<ByteArrayType>()
                            .write_batch(&side[a..a + k], Some(d), None)
                            .unwrap();
                    }
                }
            }
            c.close().unwrap();
            per[ci] += tc.elapsed();
            ci += 1;
        }
        g.close().unwrap();
        row += m;
    }
    w.close().unwrap();
    let total = t0.elapsed();
    let size = std::fs::metadata(path).unwrap().len();
    let enc = total - built;
    for (i, d) in per.iter().enumerate() {
        println!("  col {i}: {:.1} ns/row", d.as_secs_f64() * 1e9 / n as f64);
    }
    println!(
        "codec={codec} stats={stats} batch={batch} rows={n} total={:.3}s build={:.3}s encode+write={:.3}s => {:.1} ns/row, size={size}",
        total.as_secs_f64(),
        built.as_secs_f64(),
        enc.as_secs_f64(),
        enc.as_secs_f64() * 1e9 / n as f64
    );
}
