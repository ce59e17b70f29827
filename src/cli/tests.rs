//! Unit tests of the parser, and of its agreement with the flag table.

use super::*;
use crate::bars::Interval;
use flags::Flag;

fn run(args: &[&str]) -> Result<Options, UsageError> {
    match parse(args.iter().map(|s| s.to_string()))? {
        Parsed::Run(o) => Ok(*o),
        other => panic!("{other:?}"),
    }
}

/// The message `args` are refused with.
fn refusal(args: &[&str]) -> String {
    match run(args) {
        Ok(o) => panic!("{args:?} taken: {o:?}"),
        Err(e) => e.to_string(),
    }
}

fn urls(o: &Options) -> Vec<(&str, Option<Market>)> {
    o.endpoints
        .iter()
        .map(|e| (e.url.as_str(), e.market))
        .collect()
}

#[test]
fn defaults() {
    let o = run(&["NASDAQ:AAPL"]).unwrap();
    assert_eq!(
        urls(&o),
        vec![
            (STOCK_URL, Some(Market::Stock)),
            (FOREX_URL, Some(Market::Forex))
        ]
    );
    assert_eq!(o.heartbeat, Duration::from_secs(10));
    assert_eq!(o.stale_after, Duration::from_secs(30));
    assert_eq!(&*o.symbols[0].code, "AAPL.US");
    assert_eq!(o.market, None);
    assert_eq!((o.connections, o.max_symbols), (1, None));
}

#[test]
fn plans_set_connections_and_symbols_and_explicit_flags_win() {
    let o = run(&["--plan", "premium"]).unwrap();
    assert_eq!((o.connections, o.max_symbols), (3, Some(200)));
    let o = run(&["--plan=free", "--max-symbols", "3"]).unwrap();
    assert_eq!((o.connections, o.max_symbols), (1, Some(3)));
    let o = run(&["--connections", "2", "--plan", "professional"]).unwrap();
    assert_eq!((o.connections, o.max_symbols), (2, Some(3000)));
    assert!(refusal(&["--plan", "gold"]).contains("premium"));
    assert!(run(&["--connections", "0"]).is_err());
}

#[test]
fn one_endpoint_for_everything_or_each_overridden() {
    let o = run(&["--url", "ws://h:1/x"]).unwrap();
    assert_eq!(urls(&o), vec![("ws://h:1/x", None)]);
    let o = run(&["--stock-url", "ws://s/", "--forex-url", "ws://f/"]).unwrap();
    assert_eq!(
        urls(&o),
        vec![
            ("ws://s/", Some(Market::Stock)),
            ("ws://f/", Some(Market::Forex))
        ]
    );
    let o = run(&["--market", "stock"]).unwrap();
    assert_eq!(urls(&o), vec![(STOCK_URL, None)]);
    assert_eq!(o.market, Some(Market::Stock));
    assert!(run(&["--url", "ws://a/", "--stock-url", "ws://b/"]).is_err());
    assert!(run(&["--demo", "--forex-url", "ws://b/"]).is_err());
}

#[test]
fn flags_with_and_without_equals() {
    let o = run(&[
        "--market=forex",
        "--heartbeat",
        "2",
        "--stale-after=5",
        "BTCUSDT",
    ])
    .unwrap();
    assert_eq!(urls(&o), vec![(FOREX_URL, None)]);
    assert_eq!(o.heartbeat, Duration::from_secs(2));
    assert_eq!(o.stale_after, Duration::from_secs(5));
}

#[test]
fn refuses_bad_combinations() {
    assert!(refusal(&["--heartbeat", "10", "--stale-after", "10"]).contains("must exceed"));
    assert!(run(&["--url", "http://x"]).is_err());
    assert!(refusal(&["--url", "wss://x/?token=abc"]).contains("ALLTICK_TOKEN"));
    assert!(run(&["--demo", "--url", "ws://x"]).is_err());
    assert!(refusal(&["--bogus"]).contains("unknown flag"));
    assert!(run(&["FOO:BAR"]).is_err());
    assert!(run(&["--queue", "0"]).is_err());
    assert!(refusal(&["--heartbeat"]).contains("needs a value"));
    for hb in ["30", "45"] {
        let r = refusal(&["--heartbeat", hb, "--stale-after", "90"]);
        assert!(r.contains("cut-off"), "{hb}");
    }
    assert!(run(&["--heartbeat", "29.5", "--stale-after", "90"]).is_ok());
}

/// A value `flag` takes without complaint, by its kind.
fn sample(flag: &Flag) -> Option<String> {
    let value = flag.value?;
    Some(match value.hint {
        flags::Hint::OneOf(choices) => choices[0].to_string(),
        flags::Hint::Path => "/dev/null".into(),
        flags::Hint::Url if flag.long.ends_with("-api") => "http://127.0.0.1:1/x".into(),
        flags::Hint::Url => "ws://127.0.0.1:1/x".into(),
        flags::Hint::Number => "20".into(),
        flags::Hint::Address => "127.0.0.1:0".into(),
        flags::Hint::List => "time,price".into(),
    })
}

#[test]
fn the_parser_takes_every_flag_of_the_table() {
    for flag in flags::FLAGS {
        let names = [Some(flag.long_name()), flag.short.map(|c| format!("-{c}"))];
        for name in names.into_iter().flatten() {
            // In its first mode: `replay` takes a file.
            let mode: Vec<String> = match flags::Mode::word(flag.modes[0]) {
                Some("history") => vec!["history".into(), "EURUSD".into()],
                Some(word) => vec![
                    word.into(),
                    concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").into(),
                ],
                None => vec![],
            };
            let mut args = mode.clone();
            args.push(name.clone());
            args.extend(sample(flag));
            // A flag about another one's output comes with it.
            if flag.long == "fsync" {
                args.extend(["--output".to_string(), "x.jsonl".into()]);
            }
            if flag.long == "bar-grace" || flag.long == "heal" {
                args.extend(["--bars".to_string(), "1m".into()]);
            }
            if flag.long == "heal-wait" {
                args.extend(["--heal".to_string(), "--bars".into(), "1m".into()]);
            }
            let parsed = parse(args.clone());
            assert!(parsed.is_ok(), "{args:?}: {parsed:?}");
            // A flag that takes a value needs one; one that does not
            // refuses it.
            let alone = |arg: String| mode.iter().cloned().chain([arg]).collect::<Vec<_>>();
            match flag.value {
                Some(_) => {
                    let value = flag.value.map_or("", |v| v.name);
                    assert_eq!(
                        parse(alone(name.clone())).unwrap_err().to_string(),
                        format!("{name} needs a value: {name} {value}")
                    )
                }
                None => assert!(parse(alone(format!("{name}=x"))).is_err(), "{name}=x"),
            }
            // Outside its modes it is refused.
            if !flag.modes.contains(&flags::Mode::Live) {
                let live = parse([name.clone(), "1".into()]);
                let e = live.unwrap_err().to_string();
                assert!(e.contains("belongs to "), "{name}: {e}");
            }
        }
    }
}

#[test]
fn the_parser_knows_no_flag_outside_the_table() {
    // Near misses of every table flag, and every letter not in the table
    // as a short flag.
    let mut words: Vec<String> = flags::FLAGS
        .iter()
        .flat_map(|f| {
            [
                format!("--{}s", f.long),
                format!("-{}", f.long),
                format!("--{}", f.long.to_uppercase()),
            ]
        })
        .collect();
    let shorts: Vec<char> = flags::FLAGS.iter().filter_map(|f| f.short).collect();
    words.extend(
        ('a'..='z')
            .chain('A'..='Z')
            .filter(|c| !shorts.contains(c))
            .map(|c| format!("-{c}")),
    );
    for word in words {
        assert!(flags::find(&word).is_none(), "{word}");
        match parse([word.clone(), "1".into()]) {
            Err(e) => assert_eq!(e.to_string(), format!("unknown flag {word} (see --help)")),
            Ok(parsed) => panic!("{word} was taken: {parsed:?}"),
        }
    }
}

#[test]
fn the_table_names_each_flag_once() {
    let mut names: Vec<String> = flags::FLAGS.iter().map(Flag::long_name).collect();
    names.extend(
        flags::FLAGS
            .iter()
            .filter_map(|f| f.short.map(|c| format!("-{c}"))),
    );
    let all = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all, "a name twice in the table");
}

#[test]
fn the_defaults_the_help_shows_are_the_parsers() {
    let o = run(&[]).unwrap();
    let default = |long: &str| {
        let flag = flags::FLAGS.iter().find(|f| f.long == long).expect(long);
        flag.default.expect(long).to_string()
    };
    let secs = |d: Duration| d.as_secs_f64().to_string();
    assert_eq!(default("heartbeat"), secs(o.heartbeat));
    assert_eq!(default("stale-after"), secs(o.stale_after));
    assert_eq!(default("connect-timeout"), secs(o.connect_timeout));
    assert_eq!(default("idle-close"), secs(o.idle_close));
    assert_eq!(default("queue"), o.queue.to_string());
    assert_eq!(default("connections"), o.connections.to_string());
    assert_eq!(o.max_symbols, None, "{}", default("max-symbols"));
    assert_eq!(o.stats, None, "{}", default("stats"));
    assert_eq!(o.market, None, "{}", default("market"));
}

#[test]
fn generate_takes_a_kind_and_names_the_kinds_when_it_is_wrong() {
    assert!(matches!(
        parse(["--generate".into(), "man".into()]),
        Ok(Parsed::Generate(Generate::Man))
    ));
    assert!(matches!(
        parse(["--generate=complete-zsh".to_string()]),
        Ok(Parsed::Generate(Generate::CompleteZsh))
    ));
    let err = parse(["--generate".into(), "roff".into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("man, complete-bash, complete-zsh, complete-fish"),
        "{err}"
    );
    assert_eq!(
        flags::FLAGS
            .iter()
            .find(|f| f.long == "plan")
            .map(Flag::choices),
        Some(&PLAN_NAMES[..])
    );
}

#[test]
fn token_sources() {
    assert_eq!(token(None, Some(" abc\n".into())).unwrap(), "abc");
    assert!(
        token(None, None)
            .unwrap_err()
            .to_string()
            .contains("ALLTICK_TOKEN")
    );
    let e = token(Some(&PathBuf::from("/nonexistent/token")), None).unwrap_err();
    assert!(e.to_string().contains("cannot read --token-file"), "{e}");
    assert!(token(None, Some("a b".into())).is_err());
    assert!(token(None, Some("  ".into())).is_err());
}

#[test]
fn encodes_query_values() {
    assert_eq!(url_encode("ab-_.~9"), "ab-_.~9");
    assert_eq!(url_encode("a/b+c="), "a%2Fb%2Bc%3D");
}

#[test]
fn output_flags_are_checked_together() {
    let o = run(&["--output", "t/%Y-%m-%d.jsonl", "--gaps"]).unwrap();
    assert!(o.output.is_some() && o.gaps);
    assert_eq!(o.fsync, Duration::from_secs(1));
    assert!(refusal(&["--output", "t/%q.jsonl"]).contains("%q"));
    assert!(refusal(&["--fsync", "5"]).contains("--output"));
    assert!(refusal(&["--output", "a.jsonl", "--resume", "b.jsonl"]).contains("--resume"));
    let o = run(&["--resume", "b.jsonl"]).unwrap();
    assert_eq!(o.resume, Some(PathBuf::from("b.jsonl")));
}

#[test]
fn replay_takes_files_then_symbols_and_its_own_flags() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let Ok(Parsed::Replay(r)) = parse(args(&[
        "replay",
        "--speed",
        "max",
        manifest,
        manifest,
        "NASDAQ:AAPL",
        "--from",
        "2026-12-01",
    ])) else {
        panic!("not a replay")
    };
    assert_eq!(r.files.len(), 2);
    assert_eq!(&*r.symbols[0].code, "AAPL.US");
    assert_eq!(r.speed, crate::replay::pace::Speed::Max);
    assert_eq!(r.from, Some(1_796_083_200_000));
    assert!(
        parse(args(&["replay"]))
            .unwrap_err()
            .to_string()
            .contains("FILE")
    );
    assert!(
        parse(args(&["replay", "nope/x.jsonl"]))
            .unwrap_err()
            .to_string()
            .contains("no such file")
    );
    assert!(
        parse(args(&["replay", manifest, "--fsync", "1"]))
            .unwrap_err()
            .to_string()
            .contains("not a flag of replay")
    );
    assert!(
        parse(args(&[
            "replay", manifest, "--output", "x", "--fields", "time"
        ]))
        .unwrap_err()
        .to_string()
        .contains("whole JSON lines")
    );
    assert!(parse(args(&["replay", manifest, "--output", "x.jsonl"])).is_ok());
    assert!(parse(args(&["replay", manifest, "--from", "5", "--to", "4"])).is_err());
}

#[test]
fn serve_takes_files_and_its_own_flags() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let Ok(Parsed::Serve(s)) = parse(args(&["serve", manifest])) else {
        panic!("not a serve")
    };
    assert_eq!(s.listen, "127.0.0.1:8765");
    let listen = flags::FLAGS.iter().find(|f| f.long == "listen");
    assert_eq!(listen.and_then(|f| f.default), Some(s.listen.as_str()));
    assert_eq!(s.speed, crate::replay::pace::Speed::Times(1.0));
    assert_eq!(s.token_file, None);
    let Ok(Parsed::Serve(s)) = parse(args(&[
        "serve",
        "--listen",
        "[::1]:0",
        "--speed",
        "max",
        "--token-file",
        "/dev/null",
        manifest,
        manifest,
        "--from",
        "2026-12-01",
    ])) else {
        panic!("not a serve")
    };
    assert_eq!(s.files.len(), 2);
    assert_eq!(s.listen, "[::1]:0");
    assert_eq!(s.speed, crate::replay::pace::Speed::Max);
    assert_eq!(s.token_file, Some(PathBuf::from("/dev/null")));
    assert_eq!(s.from, Some(1_796_083_200_000));
    assert!(
        parse(args(&["serve"]))
            .unwrap_err()
            .to_string()
            .contains("FILE")
    );
    for bad in ["8765", ":8765", "localhost", "localhost:http", "h:70000"] {
        let e = parse(args(&["serve", "--listen", bad, manifest]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("HOST:PORT"), "{bad}: {e}");
    }
    assert!(
        parse(args(&["serve", manifest, "NASDAQ:AAPL"]))
            .unwrap_err()
            .to_string()
            .contains("no such file")
    );
    assert!(
        parse(args(&["serve", manifest, "--output", "x"]))
            .unwrap_err()
            .to_string()
            .contains("not a flag of serve")
    );
    assert!(
        parse(args(&["--listen", "127.0.0.1:1"]))
            .unwrap_err()
            .to_string()
            .contains("belongs to serve")
    );
    assert!(
        parse(args(&["replay", manifest, "--listen", "127.0.0.1:1"]))
            .unwrap_err()
            .to_string()
            .contains("not a flag of replay")
    );
}

#[test]
fn bars_fields_and_format_are_checked_together() {
    let live = |args: &[&str]| match run(args) {
        Ok(o) => Ok(o.form),
        Err(e) => Err(e.to_string()),
    };
    let f = live(&[
        "--bars",
        "5m",
        "--fields",
        "start,code,close",
        "--format",
        "csv",
    ])
    .unwrap();
    assert_eq!(f.bars.map(Interval::name), Some("5m"));
    assert_eq!(
        f.columns.names().collect::<Vec<_>>(),
        ["start", "code", "close"]
    );
    assert_eq!(f.bar_grace, Duration::from_secs(2));
    let e = live(&["--bars", "2m"]).unwrap_err();
    assert!(
        e.contains("1s, 5s, 10s, 15s, 30s, 1m, 5m, 15m, 30m, 1h, 4h, 1d"),
        "{e}"
    );
    let e = live(&["--fields", "time,close"]).unwrap_err();
    assert!(
        e.contains("\"close\" is not a field of trade lines (valid: type,"),
        "{e}"
    );
    assert!(live(&["--bar-grace", "1"]).unwrap_err().contains("--bars"));
    assert_eq!(
        live(&["--bars", "1s", "--bar-grace", "0"])
            .unwrap()
            .bar_grace,
        Duration::ZERO
    );
    let e = live(&["--format", "csv", "NASDAQ:AAPL", "NASDAQ:TSLA@depth"]).unwrap_err();
    assert!(e.contains("depth (NASDAQ:TSLA) has no CSV form"), "{e}");
    assert!(
        live(&["--format", "tsv"])
            .unwrap_err()
            .contains("jsonl, csv or parquet")
    );
    let e = live(&["--format", "parquet", "--resume", "t.jsonl"]).unwrap_err();
    assert!(e.contains("--resume reads JSON or CSV lines back"), "{e}");
    let e = live(&["--format", "parquet", "HKEX:700@depth=5"]).unwrap_err();
    assert!(e.contains("depth (HKEX:700) has no Parquet form"), "{e}");
}

#[test]
fn the_flag_table_offers_exactly_the_bar_intervals() {
    let mut names: Vec<&str> = Interval::ALL.iter().map(|i| i.name()).collect();
    for k in crate::wire::kline::KlineInterval::NAMES {
        if !names.contains(&k) {
            names.push(k);
        }
    }
    let mut offered = flags::BAR_INTERVALS.to_vec();
    offered.sort_unstable();
    names.sort_unstable();
    assert_eq!(offered, names);
}
