//! CSV read back: the cells of a row under RFC 4180 quoting ([`cells`]),
//! and the header row that starts a CSV capture ([`header`]). The rows
//! read are the ones [`super::columns`] writes.

/// The cells of one CSV row (RFC 4180 quoting), without its line end.
pub fn cells(row: &[u8]) -> Vec<Vec<u8>> {
    let row = row.strip_suffix(b"\r").unwrap_or(row);
    let mut cells = vec![Vec::new()];
    let mut quoted = false;
    let mut i = 0;
    while i < row.len() {
        let b = row[i];
        let cell = cells.last_mut().expect("one cell at least");
        match (quoted, b) {
            (true, b'"') if row.get(i + 1) == Some(&b'"') => {
                cell.push(b'"');
                i += 1;
            }
            (true, b'"') => quoted = false,
            (false, b'"') if cell.is_empty() => quoted = true,
            (false, b',') => cells.push(Vec::new()),
            _ => cell.push(b),
        }
        i += 1;
    }
    cells
}

/// The column names of the header row at the start of `head` (a file's
/// first bytes); `None` when the file is JSON lines (it starts with `{`)
/// or its first line is empty or not whole.
pub fn header(head: &[u8]) -> Option<Vec<String>> {
    let end = head.iter().position(|&b| b == b'\n')?;
    if end == 0 || head[0] == b'{' {
        return None;
    }
    Some(
        cells(&head[..end])
            .into_iter()
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_follow_rfc_4180_quoting() {
        assert_eq!(
            cells(b"a,\"b,\"\"c\"\"\",,d\r"),
            [&b"a"[..], b"b,\"c\"", b"", b"d"]
        );
        assert_eq!(cells(b""), [&b""[..]]);
    }

    #[test]
    fn a_header_row_names_the_columns_and_json_lines_have_none() {
        assert_eq!(
            header(b"time,\"code\",seq\r\n1,A,2\n").as_deref(),
            Some(&["time".to_string(), "code".into(), "seq".into()][..])
        );
        for head in [&b"{\"type\":\"trade\"}\n"[..], b"\n", b"time,code", b""] {
            assert_eq!(header(head), None, "{}", String::from_utf8_lossy(head));
        }
    }
}
