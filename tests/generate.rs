//! `--generate`: the man page and the completion scripts, from the real
//! binary, checked against the library's own flag table (so the test cannot
//! drift from it) and by the programs that read them: `man`/`groff`, bash,
//! and zsh and fish where they are installed.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use alltick_stream::cli::Generate as Kind;
use alltick_stream::cli::flags::FLAGS;

use crate::util::{self, TempDir};

/// The command, its status, stdout and stderr: what a failed check shows.
fn explain(command: &str, out: &Output) -> String {
    format!(
        "\n--- command: {command}\n--- status: {}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `alltick-stream --generate KIND`, which must succeed quietly.
fn generated(kind: Kind) -> String {
    let out = Command::new(util::bin())
        .args(["--generate", kind.name()])
        .output()
        .expect("run alltick-stream");
    let why = explain(&format!("alltick-stream --generate {}", kind.name()), &out);
    assert!(out.status.success(), "exit status{why}");
    assert!(out.stderr.is_empty(), "stderr is not empty{why}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `kind` written to a file in `dir`, for the programs that check it.
fn generated_file(dir: &TempDir, kind: Kind) -> std::path::PathBuf {
    let path = dir.path().join(kind.name());
    std::fs::write(&path, generated(kind)).expect("write the generated file");
    path
}

/// Whether `program` is installed: it answers `--version`. (A minimized
/// Ubuntu's `/usr/bin/man` is a stub that only says it was removed.)
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run `program args`; `None` (with a note) when it is not installed.
fn run_if_installed(program: &str, args: &[&str], file: &Path) -> Option<Output> {
    if !installed(program) {
        println!("note: {program} is not installed; skipping its check of {file:?}");
        return None;
    }
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    Some(out)
}

#[test]
fn every_flag_of_the_table_is_in_the_man_page_and_each_completion() {
    for kind in Kind::ALL {
        let text = generated(kind);
        for flag in FLAGS {
            let long = flag.long_name();
            let (wanted, as_written) = match kind {
                Kind::Man => (long.replace('-', "\\-"), "roff-escaped"),
                Kind::CompleteFish => (format!("-l {}", flag.long), "fish's -l"),
                Kind::CompleteBash | Kind::CompleteZsh => (long.clone(), "as typed"),
            };
            assert!(
                text.contains(&wanted),
                "{long} ({as_written}: {wanted}) missing from --generate {}:\n{text}",
                kind.name()
            );
            if let (Some(c), Kind::CompleteBash | Kind::CompleteZsh) = (flag.short, kind) {
                assert!(text.contains(&format!("-{c}")), "-{c} missing");
            }
        }
    }
}

#[test]
fn man_page_renders_without_warnings_and_shows_every_flag() {
    let dir = TempDir::new("man");
    let page = generated_file(&dir, Kind::Man);
    let mut checked = false;
    if let Some(out) = run_if_installed("man", &["--warnings", "-l"], &page) {
        let why = explain("MANWIDTH=80 man --warnings -l alltick-stream.1", &out);
        assert!(out.status.success(), "man failed{why}");
        assert!(out.stderr.is_empty(), "man warned{why}");
        let text = String::from_utf8_lossy(&out.stdout);
        // Hyphenation is off, so no flag is broken across lines.
        for flag in FLAGS {
            let long = flag.long_name();
            assert!(text.contains(&long), "{long} not rendered{why}");
        }
        assert!(text.contains(env!("CARGO_PKG_VERSION")), "no version{why}");
        checked = true;
    }
    if let Some(out) = run_if_installed("groff", &["-man", "-ww", "-z"], &page) {
        let why = explain("groff -man -ww -z alltick-stream.1", &out);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff warned{why}"
        );
        checked = true;
    }
    if let Some(out) = run_if_installed("mandoc", &["-Tlint", "-Wwarning"], &page) {
        let why = explain("mandoc -Tlint -Wwarning alltick-stream.1", &out);
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "mandoc warned{why}"
        );
    }
    if !checked {
        println!("note: neither man nor groff is installed; the man page was not rendered");
    }
}

#[test]
fn bash_completion_parses_registers_and_completes_flags_and_choices() {
    let dir = TempDir::new("bash");
    let script = generated_file(&dir, Kind::CompleteBash);
    let out = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("run bash");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "bash -n refused the script{}",
        explain("bash -n complete-bash", &out)
    );
    std::fs::write(dir.path().join("token"), "t").expect("write a file to offer");
    // Each line: the words typed so far (the last one being completed),
    // then `=>` and what the completion offers.
    let probe = r#"
source "$1" || exit 1
complete -p alltick-stream
offer() {
    COMP_WORDS=(alltick-stream "$@"); COMP_CWORD=$#; COMPREPLY=()
    _alltick_stream
    echo "$* => ${COMPREPLY[*]}"
}
offer --mark
offer --market ''
offer --plan pr
offer --plan = pre
offer --generate complete-
offer --token-file "$2/to"
offer --heartbeat ''
offer -
"#;
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", probe, "probe"])
        .arg(&script)
        .arg(dir.path())
        .output()
        .expect("run bash");
    let why = explain("bash -c 'source complete-bash; …'", &out);
    assert!(out.status.success(), "the script failed when sourced{why}");
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = dir.path().display();
    for want in [
        "complete -F _alltick_stream alltick-stream".to_string(),
        "--mark => --market".into(),
        "--market  => stock forex".into(),
        "--plan pr => premium professional".into(),
        "--plan = pre => premium".into(),
        "--generate complete- => complete-bash complete-zsh complete-fish".into(),
        format!("--token-file {dir}/to => {dir}/token"),
        "--heartbeat  => \n".into(),
    ] {
        assert!(text.contains(&want), "{want:?} not offered{why}");
    }
    let every = text.lines().find(|l| l.starts_with("- => ")).unwrap_or("");
    for flag in FLAGS {
        let long = flag.long_name();
        assert!(
            every.split(' ').any(|w| w == long),
            "{long} not offered after -{why}"
        );
    }
}

#[test]
fn zsh_and_fish_completions_parse_where_the_shell_is_installed() {
    let dir = TempDir::new("shells");
    for (kind, shell) in [(Kind::CompleteZsh, "zsh"), (Kind::CompleteFish, "fish")] {
        let script = generated_file(&dir, kind);
        if let Some(out) = run_if_installed(shell, &["-n"], &script) {
            let why = explain(&format!("{shell} -n {}", kind.name()), &out);
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{shell} -n{why}"
            );
        }
    }
}

#[test]
fn printing_to_a_closed_stdout_exits_quietly() {
    for args in [&["--generate", "man"][..], &["--help"], &["--version"]] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        // Nobody reads: every write gets EPIPE.
        drop(reader);
        let out = Command::new(util::bin())
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run alltick-stream");
        let why = explain(
            &format!("alltick-stream {} >closed-pipe", args.join(" ")),
            &out,
        );
        assert_eq!(out.status.code(), Some(0), "exit status{why}");
        assert!(out.stderr.is_empty(), "stderr is not empty{why}");
    }
}

#[test]
fn generate_an_unknown_kind_is_a_usage_error_naming_the_kinds() {
    let out = Command::new(util::bin())
        .args(["--generate", "manpage"])
        .output()
        .expect("run alltick-stream");
    let why = explain("alltick-stream --generate manpage", &out);
    assert_eq!(out.status.code(), Some(2), "exit status{why}");
    assert!(out.stdout.is_empty(), "stdout is not empty{why}");
    let err = String::from_utf8_lossy(&out.stderr);
    for kind in Kind::ALL {
        assert!(err.contains(kind.name()), "{} not named{why}", kind.name());
    }
}
