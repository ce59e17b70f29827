//! The `--help` text, built from the flag table so that it lists every flag
//! the parser knows, each with its default.

use super::flags::{FLAGS, Flag};
use super::prose::{self, Block, Section};

/// Lines stay shorter than this, to fit an 80-column terminal.
const WIDTH: usize = 80;
/// Left margin of every section's body.
const INDENT: usize = 4;
/// Where the descriptions of the flags (and other items) start.
const COLUMN: usize = INDENT + 23;

/// The `--help` text: usage, the prose sections and every flag with its
/// default, in the table's order.
pub fn help() -> String {
    let mut out = format!(
        "alltick-stream: {}\n\nUSAGE:\n    alltick-stream [FLAGS] [SYMBOL...]\n    alltick-stream replay [FLAGS] FILE... [SYMBOL...]\n    alltick-stream serve [FLAGS] FILE...\n    alltick-stream history [FLAGS] SYMBOL...\n",
        prose::ABOUT
    );
    for section in [prose::SYMBOLS, prose::STDIN, prose::MODES] {
        out.push('\n');
        out.push_str(&section_text(&section));
    }
    out.push_str("\nFLAGS:\n");
    let rows: Vec<(String, String)> = FLAGS.iter().map(|f| (term(f), described(f))).collect();
    out.push_str(&items(&rows, COLUMN));
    for section in [prose::ENVIRONMENT, prose::EXIT_STATUS] {
        out.push('\n');
        out.push_str(&section_text(&section));
    }
    out
}

/// The flag as the left column shows it: `-h, --help`, `--plan NAME`.
fn term(flag: &Flag) -> String {
    let mut term = match flag.short {
        Some(c) => format!("-{c}, {}", flag.long_name()),
        None => flag.long_name(),
    };
    if let Some(word) = flag.value_word() {
        term.push(' ');
        term.push_str(&word);
    }
    term
}

/// The flag's help with its default: `… [default: 10]`.
pub(super) fn described(flag: &Flag) -> String {
    match flag.default {
        Some(d) => format!("{} [default: {d}]", flag.text()),
        None => flag.text(),
    }
}

/// A prose section: its title, paragraphs wrapped at the margin, items in
/// two columns.
fn section_text(section: &Section) -> String {
    let mut out = format!("{}:\n", section.title);
    let terms = section.blocks.iter().filter_map(|b| match b {
        Block::Item(term, _) => Some(term.len()),
        Block::Text(_) => None,
    });
    // Short terms (exit statuses) need no wide column.
    let column = match terms.max() {
        Some(n) if n <= 8 => INDENT + n + 3,
        _ => COLUMN,
    };
    for block in section.blocks {
        match block {
            Block::Text(text) => {
                for line in wrap(text, WIDTH - INDENT) {
                    out.push_str(&format!("{:INDENT$}{line}\n", ""));
                }
            }
            Block::Item(term, text) => {
                out.push_str(&items(&[(term.to_string(), text.to_string())], column));
            }
        }
    }
    out
}

/// Two columns: each term at the margin, its text from `column` on,
/// wrapped; a term too wide for its column puts the text on the next line.
fn items(rows: &[(String, String)], column: usize) -> String {
    let mut out = String::new();
    for (term, text) in rows {
        let lines = wrap(text, WIDTH - column);
        let mut lines = lines.iter();
        let mut head = format!("{:INDENT$}{term}", "");
        if head.len() >= column {
            out.push_str(&head);
            out.push('\n');
            head.clear();
        }
        if let Some(first) = lines.next() {
            out.push_str(&format!("{head:column$}{first}\n"));
        }
        for line in lines {
            out.push_str(&format!("{:column$}{line}\n", ""));
        }
    }
    out
}

/// Words of `text` in lines shorter than `width`. `[default: …]` stays on
/// one line, so it can be found (and read) whole.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("[default: ") {
        words.extend(rest[..at].split_whitespace().map(str::to_string));
        let end = rest[at..].find(']').map_or(rest.len(), |e| at + e + 1);
        words.push(rest[at..end].to_string());
        rest = &rest[end..];
    }
    words.extend(rest.split_whitespace().map(str::to_string));
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in words {
        if !line.is_empty() && line.len() + 1 + word.len() >= width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_shows_every_flag_of_the_table_with_its_default() {
        let help = help();
        for flag in FLAGS {
            let line = help
                .lines()
                .find(|l| l.trim_start().starts_with(&term(flag)))
                .unwrap_or_else(|| panic!("{} missing from --help:\n{help}", term(flag)));
            if let Some(short) = flag.short {
                assert!(line.contains(&format!("-{short}, --")), "{line}");
            }
            if let Some(default) = flag.default {
                let shown = format!("[default: {default}]");
                assert!(
                    help.contains(&shown),
                    "{shown} missing from --help:\n{help}"
                );
            }
            for choice in flag.choices() {
                assert!(help.contains(choice), "{choice} missing from --help");
            }
        }
    }

    #[test]
    fn help_keeps_its_sections_and_fits_80_columns() {
        let help = help();
        for title in [
            "USAGE:",
            "SYMBOLS:",
            "STDIN:",
            "FLAGS:",
            "ENVIRONMENT:",
            "EXIT STATUS:",
        ] {
            assert!(help.contains(&format!("\n{title}\n")), "{title} missing");
        }
        for line in help.lines() {
            assert!(line.len() < WIDTH, "too wide: {line:?}");
        }
        assert!(help.contains("    --market stock|forex   use only this endpoint"));
        let plan = FLAGS.iter().find(|f| f.long == "plan").map(described);
        assert!(plan.is_some_and(|t| {
            t.starts_with("free, basic, premium, professional, all-hk or all-cn: set")
        }));
    }

    #[test]
    fn wrapping_keeps_a_default_whole() {
        let lines = wrap("aaaa bbbb [default: by code form]", 16);
        assert_eq!(lines, ["aaaa bbbb", "[default: by code form]"]);
    }
}
