use bytes::Bytes;
use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;
use parquet::record::Field;

use super::*;
use crate::form::columns::BAR_KEYS;
use crate::form::line::TRADE_KEYS;

const TRADES: [&str; 4] = [
    r#"{"type":"trade","symbol":"NASDAQ:AAPL","code":"AAPL.US","seq":1605509068000001,"time":1605509068000,"price":651.12,"volume":300,"turnover":12345.6,"side":"buy"}"#,
    r#"{"type":"trade","symbol":"A\"B","code":"EURUSD","seq":18446744073709551615,"time":1796083200001,"price":1.08214001,"volume":null,"turnover":null,"side":null}"#,
    r#"{"type":"trade","symbol":"NASDAQ:AAPL","code":"AAPL.US","seq":2,"time":1796083200002,"price":0.00000001,"volume":0.5,"turnover":1234567890123456789012.12345678,"side":"sell"}"#,
    // Another key order, spaces: read member by member.
    r#"{ "time": 1796083200003, "type": "trade", "code": "AAPL.US", "seq": 3, "symbol": "NASDAQ:AAPL", "price": 1e2, "volume": 1.50E-3, "turnover": 0, "side": "buy" }"#,
];

const BARS: [&str; 2] = [
    r#"{"type":"bar","symbol":"NASDAQ:AAPL","code":"AAPL.US","interval":"1m","start":1796166540000,"end":1796166600000,"open":651.10,"high":651.48,"low":650.95,"close":651.20,"volume":12400,"turnover":8074633.00,"trades":42}"#,
    r#"{"type":"kline","symbol":"EURUSD","code":"EURUSD","interval":"1m","start":1796428800000,"end":1796428860000,"open":1.08214,"high":1.08222,"low":1.08203,"close":1.08219,"volume":null,"turnover":1644.93,"trades":null}"#,
];

/// The file of `lines` with columns `names`, in row groups of `group`.
fn file(names: &[&'static str], lines: &[&str], group: usize) -> Vec<u8> {
    let options = Options {
        row_group_rows: group,
        ..Options::default()
    };
    let mut f = ParquetFile::with_options(Vec::new(), names, options).unwrap();
    for line in lines {
        f.push(format!("{line}\n").as_bytes()).unwrap();
    }
    assert_eq!(f.rows(), lines.len() as u64);
    f.finish().unwrap()
}

fn reader(bytes: Vec<u8>) -> SerializedFileReader<Bytes> {
    SerializedFileReader::new(Bytes::from(bytes)).unwrap()
}

/// Each row's values, as text: strings as they are, decimals with their
/// scale's decimals, times and integers in digits, `null`.
fn values(r: &SerializedFileReader<Bytes>) -> Vec<Vec<String>> {
    r.get_row_iter(None)
        .unwrap()
        .map(|row| {
            row.unwrap()
                .get_column_iter()
                .map(|(_, f)| match f {
                    Field::Null => "null".to_string(),
                    Field::Str(s) => s.clone(),
                    Field::Decimal(d) => {
                        let mut be = [if d.data()[0] & 0x80 != 0 { 0xff } else { 0 }; 16];
                        be[16 - d.data().len()..].copy_from_slice(d.data());
                        decimal::text(i128::from_be_bytes(be), d.scale() as u32)
                    }
                    Field::TimestampMillis(ms) => ms.to_string(),
                    Field::ULong(v) => v.to_string(),
                    Field::Long(v) => v.to_string(),
                    other => panic!("unexpected {other:?}"),
                })
                .collect()
        })
        .collect()
}

#[test]
fn trades_read_back_with_their_types_and_exact_values() {
    let r = reader(file(&TRADE_KEYS, &TRADES, 3));
    let meta = r.metadata();
    assert_eq!(meta.num_row_groups(), 2, "row groups of 3 rows");
    let schema = meta.file_metadata().schema_descr();
    let column = |name: &str| {
        let i = (0..schema.num_columns())
            .find(|&i| schema.column(i).name() == name)
            .unwrap();
        schema.column(i)
    };
    for (name, physical, logical, optional) in [
        ("type", PhysicalType::BYTE_ARRAY, LogicalType::String, false),
        ("code", PhysicalType::BYTE_ARRAY, LogicalType::String, false),
        ("side", PhysicalType::BYTE_ARRAY, LogicalType::String, true),
        (
            "seq",
            PhysicalType::INT64,
            LogicalType::integer(64, false),
            false,
        ),
        (
            "time",
            PhysicalType::INT64,
            LogicalType::timestamp(true, TimeUnit::MILLIS),
            false,
        ),
        (
            "price",
            PhysicalType::INT64,
            LogicalType::decimal(8, 18),
            false,
        ),
        (
            "turnover",
            PhysicalType::FIXED_LEN_BYTE_ARRAY,
            LogicalType::decimal(8, 38),
            true,
        ),
    ] {
        let c = column(name);
        assert_eq!(c.physical_type(), physical, "{name}");
        assert_eq!(c.logical_type_ref(), Some(&logical), "{name}");
        let repetition = c.self_type().get_basic_info().repetition();
        assert_eq!(repetition == Repetition::OPTIONAL, optional, "{name}");
    }
    assert_eq!(
        (
            column("price").type_precision(),
            column("price").type_scale()
        ),
        (18, 8)
    );
    assert_eq!(column("volume").type_length(), 16);
    let rows = values(&r);
    let row = |i: usize| rows[i].join(" ");
    assert_eq!(
        row(0),
        "trade NASDAQ:AAPL AAPL.US 1605509068000001 1605509068000 651.12000000 300.00000000 12345.60000000 buy"
    );
    assert_eq!(
        row(1),
        "trade A\"B EURUSD 18446744073709551615 1796083200001 1.08214001 null null null"
    );
    assert_eq!(
        row(2),
        "trade NASDAQ:AAPL AAPL.US 2 1796083200002 0.00000001 0.50000000 1234567890123456789012.12345678 sell"
    );
    assert_eq!(
        row(3),
        "trade NASDAQ:AAPL AAPL.US 3 1796083200003 100.00000000 0.00150000 0.00000000 buy"
    );
}

#[test]
fn statistics_are_of_seq_and_time_only() {
    let r = reader(file(&TRADE_KEYS, &TRADES, 3));
    let meta = r.metadata();
    let group = meta.row_group(0);
    let Some(Statistics::Int64(time)) = group.column(4).statistics() else {
        panic!("{:?}", group.column(4).statistics())
    };
    assert_eq!(
        (time.min_opt(), time.max_opt()),
        (Some(&1_605_509_068_000), Some(&1_796_083_200_002))
    );
    assert!(matches!(
        group.column(3).statistics(),
        Some(Statistics::Int64(_))
    ));
    for other in [0, 1, 2, 5, 6, 7, 8] {
        assert!(group.column(other).statistics().is_none(), "column {other}");
    }
}

#[test]
fn bars_and_klines_keep_their_type_and_a_null_count() {
    let r = reader(file(&BAR_KEYS, &BARS, ROW_GROUP_ROWS));
    let rows = values(&r);
    assert_eq!(
        rows[0].join(" "),
        "bar NASDAQ:AAPL AAPL.US 1m 1796166540000 1796166600000 651.10000000 651.48000000 650.95000000 651.20000000 12400.00000000 8074633.00000000 42"
    );
    assert_eq!(
        rows[1].join(" "),
        "kline EURUSD EURUSD 1m 1796428800000 1796428860000 1.08214000 1.08222000 1.08203000 1.08219000 null 1644.93000000 null"
    );
    let schema = r.metadata().file_metadata().schema_descr_ptr();
    let trades = schema.column(12);
    assert_eq!(
        trades.logical_type_ref(),
        Some(&LogicalType::integer(64, true))
    );
}

#[test]
fn some_columns_in_their_order() {
    let r = reader(file(&["price", "code", "time"], &TRADES[..1], 10));
    assert_eq!(values(&r), [["651.12000000", "AAPL.US", "1605509068000"]]);
    // Columns both kinds of lines have: the first line decides.
    let mut f = ParquetFile::new(Vec::new(), &["code", "volume"]).unwrap();
    assert_eq!(f.lines(), None);
    f.push(BARS[1].as_bytes()).unwrap();
    assert_eq!(f.lines(), Some(Rows::Bars));
    let e = f.push(TRADES[0].as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not a row of this Parquet file: a trade line in a file of bars"
    );
    let r = reader(f.finish().unwrap());
    assert_eq!(values(&r), [["EURUSD", "null"]]);
}

#[test]
fn a_refused_line_adds_nothing_of_itself() {
    let mut f = ParquetFile::new(Vec::new(), &TRADE_KEYS).unwrap();
    f.push(TRADES[0].as_bytes()).unwrap();
    // The price is refused after the strings and numbers before it.
    let precise = TRADES[0].replace("651.12", "651.123456789");
    match f.push(precise.as_bytes()) {
        Err(RowError::Unfit { key, value, why }) => {
            assert_eq!((key, value.as_str()), ("price", "651.123456789"));
            assert!(why.contains("would round"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let big = TRADES[0].replace("12345.6", "1e30");
    assert!(matches!(
        f.push(big.as_bytes()),
        Err(RowError::Unfit {
            key: "turnover",
            ..
        })
    ));
    for (line, what) in [
        (
            r#"{"type":"gap","connection":"stock#1","codes":["A"],"from":1,"to":2,"reason":"x"}"#,
            "a gap line",
        ),
        (BARS[0], "a bar line in a file of trades"),
        ("garbage", "not a JSON object"),
    ] {
        match f.push(line.as_bytes()) {
            Err(RowError::NotARow(w)) => assert_eq!(w, what),
            other => panic!("{other:?}"),
        }
    }
    f.push(TRADES[1].as_bytes()).unwrap();
    assert_eq!(f.rows(), 2);
    let rows = values(&reader(f.finish().unwrap()));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][1], "A\"B");
}

#[test]
fn columns_the_lines_have_not_are_refused() {
    let refused = |names: &[&'static str]| match ParquetFile::new(Vec::new(), names) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{names:?} taken"),
    };
    assert!(refused(&["time", "open"]).contains("mixed"));
    assert!(refused(&["price", "nope"]).contains("\"nope\" is not a key"));
    assert!(refused(&["code", "code"]).contains("twice"));
    assert!(refused(&[]).contains("no columns"));
}

#[test]
fn an_empty_file_is_a_file() {
    let r = reader(
        ParquetFile::new(Vec::new(), &TRADE_KEYS)
            .unwrap()
            .finish()
            .unwrap(),
    );
    assert_eq!(r.metadata().file_metadata().num_rows(), 0);
}

/// A writer that fails once `left` bytes are written.
#[derive(Debug)]
struct Full {
    left: usize,
}

impl Write for Full {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.left {
            return Err(std::io::Error::other("disk full"));
        }
        self.left -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failed_write_breaks_the_file_and_says_so() {
    let options = Options {
        row_group_rows: 1,
        ..Options::default()
    };
    let mut f = ParquetFile::with_options(Full { left: 100 }, &TRADE_KEYS, options).unwrap();
    // A group is written once the thread has encoded it, through a
    // buffer: the error comes with a later push.
    let e = (0..1000)
        .find_map(|_| f.push(TRADES[0].as_bytes()).err())
        .expect("the disk fills up");
    assert!(matches!(e, RowError::Write(_)), "{e}");
    assert!(e.to_string().contains("disk full"), "{e}");
    let again = f.push(TRADES[0].as_bytes()).unwrap_err();
    assert!(again.to_string().contains("broken"), "{again}");
    assert!(f.finish().is_err());
    // Failing at the end, it fails there.
    let mut f = ParquetFile::new(Full { left: 100 }, &TRADE_KEYS).unwrap();
    f.push(TRADES[0].as_bytes()).unwrap();
    assert!(f.finish().unwrap_err().to_string().contains("disk full"));
}
