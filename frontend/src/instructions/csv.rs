//! One CSV record, as `--mount` and `--device` values are read (Go's `encoding/csv` rules via
//! `go-csvvalue`): fields split on `,`; a field starting with `"` is quoted, `""` inside it
//! is one quote; any other `"` is an error. Quoting lets a value hold a comma.

/// Splits `line` into fields, or returns Go's parse error text.
pub(crate) fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        let mut field = String::new();
        let field_start = chars.peek().map_or(line.len(), |&(i, _)| i);
        if line[field_start..].starts_with('"') {
            chars.next();
            loop {
                match chars.next() {
                    Some((_, '"')) => match chars.peek() {
                        Some(&(_, '"')) => {
                            field.push('"');
                            chars.next();
                        }
                        Some(&(_, ',')) | None => break,
                        Some(&(i, _)) => return Err(parse_error(line, i, QUOTE)),
                    },
                    Some((_, c)) => field.push(c),
                    None => return Err(parse_error(line, line.len(), QUOTE)),
                }
            }
        } else {
            while let Some(&(i, c)) = chars.peek() {
                match c {
                    ',' => break,
                    '"' => return Err(parse_error(line, i, BARE_QUOTE)),
                    _ => field.push(c),
                }
                chars.next();
            }
        }
        out.push(field);
        match chars.next() {
            Some((_, ',')) => continue,
            _ => return Ok(out),
        }
    }
}

const QUOTE: &str = "extraneous or missing \" in quoted-field";
const BARE_QUOTE: &str = "bare \" in non-quoted-field";

fn parse_error(line: &str, at: usize, what: &str) -> String {
    let col = line[..at.min(line.len())].chars().count() + 1;
    format!("parse error on line 1, column {col}: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_unquotes() {
        assert_eq!(fields("a=1,b").unwrap(), ["a=1", "b"]);
        assert_eq!(fields("\"a=1,2\",b").unwrap(), ["a=1,2", "b"]);
        assert_eq!(fields("\"x\"\"y\"").unwrap(), ["x\"y"]);
        assert_eq!(fields("a,").unwrap(), ["a", ""]);
        assert_eq!(fields("").unwrap(), [""]);
    }

    #[test]
    fn rejects_stray_quotes() {
        assert_eq!(
            fields("a\"b").unwrap_err(),
            "parse error on line 1, column 2: bare \" in non-quoted-field"
        );
        assert!(
            fields("\"ab")
                .unwrap_err()
                .contains("extraneous or missing")
        );
        assert!(
            fields("\"a\"b")
                .unwrap_err()
                .contains("extraneous or missing")
        );
    }
}
