//! `--generate`: the man page and the completion scripts, from the real
//! binary, checked against the library's own flag table (so the test cannot
//! drift from it) and by the programs that read them: `man`, `groff` and
//! `mandoc`, bash, zsh and fish.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use alltick_stream::cli::Generate;
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
fn generated(kind: Generate) -> String {
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
fn generated_file(dir: &TempDir, kind: Generate) -> std::path::PathBuf {
    let path = dir.path().join(kind.name());
    std::fs::write(&path, generated(kind)).expect("write the generated file");
    path
}

/// Run `program args FILE` with man's output settings: its output.
fn run(program: &str, args: &[&str], file: &Path) -> Output {
    Command::new(program)
        .args(args)
        .arg(file)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

#[test]
fn every_flag_of_the_table_is_in_the_man_page_and_each_completion() {
    for kind in Generate::ALL {
        let text = generated(kind);
        for flag in FLAGS {
            let long = flag.long_name();
            let (wanted, as_written) = match kind {
                Generate::Man => (long.replace('-', "\\-"), "roff-escaped"),
                Generate::CompleteFish => (format!("-l {}", flag.long), "fish's -l"),
                Generate::CompleteBash | Generate::CompleteZsh => (long.clone(), "as typed"),
            };
            assert!(
                text.contains(&wanted),
                "{long} ({as_written}: {wanted}) missing from --generate {}:\n{text}",
                kind.name()
            );
            if let (Some(c), Generate::CompleteBash | Generate::CompleteZsh) = (flag.short, kind) {
                assert!(text.contains(&format!("-{c}")), "-{c} missing");
            }
        }
    }
}

#[test]
fn man_page_renders_with_man_without_warnings_and_shows_every_flag() {
    if !util::require("man") {
        return;
    }
    let dir = TempDir::new("man");
    let page = generated_file(&dir, Generate::Man);
    let out = run("man", &["--warnings", "-l"], &page);
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
}

#[test]
fn man_page_passes_groff_and_mandoc_without_warnings() {
    if !util::require("groff") || !util::require("mandoc") {
        return;
    }
    let dir = TempDir::new("man-lint");
    let page = generated_file(&dir, Generate::Man);
    let out = run("groff", &["-man", "-ww", "-z"], &page);
    let why = explain("groff -man -ww -z alltick-stream.1", &out);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "groff warned{why}"
    );
    let out = run("mandoc", &["-Tlint", "-Wwarning"], &page);
    let why = explain("mandoc -Tlint -Wwarning alltick-stream.1", &out);
    // The page's date is left empty on purpose (the same binary makes the
    // same page), which mandoc notes; anything else it says is a fault.
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    let faults: Vec<&str> = said
        .lines()
        .filter(|l| !l.ends_with("WARNING: missing date, using \"\": TH"))
        .collect();
    assert!(faults.is_empty(), "mandoc warned{why}");
}

#[test]
fn bash_completion_parses_registers_and_completes_flags_and_choices() {
    let dir = TempDir::new("bash");
    let script = generated_file(&dir, Generate::CompleteBash);
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

/// `shell -n` (parse only) accepts the `kind` completion script.
fn completion_parses(kind: Generate, shell: &str) {
    if !util::require(shell) {
        return;
    }
    let dir = TempDir::new(shell);
    let script = generated_file(&dir, kind);
    let out = run(shell, &["-n"], &script);
    let why = explain(&format!("{shell} -n {}", kind.name()), &out);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{shell} -n{why}"
    );
}

#[test]
fn zsh_completion_parses() {
    completion_parses(Generate::CompleteZsh, "zsh");
}

#[test]
fn fish_completion_parses() {
    completion_parses(Generate::CompleteFish, "fish");
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
    for kind in Generate::ALL {
        assert!(err.contains(kind.name()), "{} not named{why}", kind.name());
    }
}
