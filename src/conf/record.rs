//! The record syntax shared by every record section (`[bind]`, `[limits]`, `[run]`):
//! whitespace-separated `key:value` pairs, `;` between records on one line,
//! `"quoted"` values (no escapes inside) and `\` escapes outside quotes.

/// One record: the pairs of one `;`-separated part of a line, in the order
/// written. A key appears once: when a record repeats a key, the last value wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Line in tool.conf (1-based) the record came from.
    pub line: usize,
    pub pairs: Vec<(String, String)>,
}

impl Record {
    /// The value of `key`, if the record has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == ';'
}

/// Splits one line into records. An empty record (a stray or trailing `;`)
/// is dropped. The error is a message for the user; the caller adds the line.
pub(crate) fn parse_line(text: &str) -> Result<Vec<Vec<(String, String)>>, String> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let mut records = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    loop {
        i = skip_ws(&chars, i);
        if i == n {
            break;
        }
        if chars[i] == ';' {
            if !cur.is_empty() {
                records.push(std::mem::take(&mut cur));
            }
            i += 1;
            continue;
        }

        let start = i;
        while i < n && is_key_char(chars[i]) {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        i = skip_ws(&chars, i);
        if key.is_empty() || i == n || chars[i] != ':' {
            let end = (start..n).find(|&j| is_separator(chars[j])).unwrap_or(n);
            let found: String = chars[start..end].iter().collect();
            return Err(format!(
                "expected key:value, found {}",
                crate::show::quote(&found)
            ));
        }
        i += 1;

        let after_colon = i;
        i = skip_ws(&chars, i);
        // `src: tgt:/b` reads as a missing value for src, not as src = "tgt:/b".
        let missing = i == n || chars[i] == ';' || (i > after_colon && starts_with_key(&chars, i));
        if missing {
            return Err(format!(
                "missing value for {} (write {}:\"\" for an empty value)",
                crate::show::quote(&key),
                crate::show::bytes(key.as_bytes())
            ));
        }

        let (value, next) = read_value(&chars, i)?;
        i = next;
        match cur.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => cur.push((key, value)),
        }
    }
    if !cur.is_empty() {
        records.push(cur);
    }
    Ok(records)
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

/// Whether a `key:` (or `key :`) starts at `i`.
fn starts_with_key(chars: &[char], i: usize) -> bool {
    let mut j = i;
    while j < chars.len() && is_key_char(chars[j]) {
        j += 1;
    }
    if j == i {
        return false;
    }
    let j = skip_ws(chars, j);
    j < chars.len() && chars[j] == ':'
}

/// Reads a value starting at `i` up to unquoted whitespace or `;`.
/// Quoted parts are taken literally; outside quotes `\c` stands for `c`.
fn read_value(chars: &[char], mut i: usize) -> Result<(String, usize), String> {
    let n = chars.len();
    let mut value = String::new();
    while i < n && !is_separator(chars[i]) {
        match chars[i] {
            '"' => {
                let close = (i + 1..n)
                    .find(|&j| chars[j] == '"')
                    .ok_or_else(|| "unterminated quote (a value opened with \" must close with \" on the same line)".to_string())?;
                value.extend(&chars[i + 1..close]);
                i = close + 1;
            }
            '\\' => {
                if i + 1 == n {
                    return Err(
                        "\\ at the end of the line escapes nothing (write \\\\ for a backslash)"
                            .into(),
                    );
                }
                value.push(chars[i + 1]);
                i += 2;
            }
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    Ok((value, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn one(text: &str) -> Vec<(String, String)> {
        let mut records = parse_line(text).unwrap();
        assert_eq!(records.len(), 1, "{text:?} gave {records:?}");
        records.pop().unwrap()
    }

    fn err(text: &str) -> String {
        parse_line(text).unwrap_err()
    }

    #[test]
    fn plain_pairs_in_order() {
        assert_eq!(one("src:/a tgt:/b"), pairs(&[("src", "/a"), ("tgt", "/b")]));
    }

    #[test]
    fn spaces_around_colon() {
        let want = pairs(&[("src", "/a"), ("tgt", "/b")]);
        assert_eq!(one("src:/a tgt: /b"), want);
        assert_eq!(one("src :/a tgt : /b"), want);
        assert_eq!(one("src\t:\t/a   tgt:\t/b"), want);
    }

    #[test]
    fn semicolon_separates_records() {
        let r = parse_line("tgt:/a ; tgt:/b;tgt:/c").unwrap();
        assert_eq!(
            r,
            vec![
                pairs(&[("tgt", "/a")]),
                pairs(&[("tgt", "/b")]),
                pairs(&[("tgt", "/c")])
            ]
        );
    }

    #[test]
    fn empty_records_are_dropped() {
        assert_eq!(parse_line("tgt:/a;").unwrap().len(), 1);
        assert_eq!(parse_line(";; tgt:/a ; ;").unwrap().len(), 1);
        assert!(parse_line(";").unwrap().is_empty());
    }

    #[test]
    fn quoted_values_are_literal() {
        assert_eq!(
            one(r#"src:"/a b;c\d" tgt:/x"#),
            pairs(&[("src", r"/a b;c\d"), ("tgt", "/x")])
        );
        // quoted and unquoted parts join into one value
        assert_eq!(one(r#"tgt:/a" "b"#), pairs(&[("tgt", "/a b")]));
    }

    #[test]
    fn escapes_outside_quotes() {
        assert_eq!(
            one(r#"tgt:/a\ b\;c\"d\\e\:f"#),
            pairs(&[("tgt", r#"/a b;c"d\e:f"#)])
        );
    }

    #[test]
    fn empty_value_only_when_quoted() {
        assert_eq!(
            one(r#"src:"" tgt:/b"#),
            pairs(&[("src", ""), ("tgt", "/b")])
        );
        assert!(err("src:").contains("missing value for \"src\""));
        assert!(err("src: ;tgt:/b").contains("missing value for \"src\""));
        assert!(err("src: tgt:/b").contains("missing value for \"src\""));
        assert!(err("src: tgt :/b").contains("missing value for \"src\""));
    }

    #[test]
    fn colon_inside_value_is_kept() {
        assert_eq!(one("src:/a:b"), pairs(&[("src", "/a:b")]));
    }

    #[test]
    fn repeated_key_last_wins() {
        assert_eq!(
            one("tgt:/a src:/s tgt:/b"),
            pairs(&[("tgt", "/b"), ("src", "/s")])
        );
    }

    #[test]
    fn malformed_pairs() {
        assert_eq!(err("foo"), "expected key:value, found \"foo\"");
        assert_eq!(err("src /a"), "expected key:value, found \"src\"");
        assert_eq!(err("tgt:/a /b"), "expected key:value, found \"/b\"");
        assert_eq!(err(":/a"), "expected key:value, found \":/a\"");
        assert_eq!(err("s/rc:/a"), "expected key:value, found \"s/rc:/a\"");
        assert!(err(r#""src":/a"#).starts_with("expected key:value"));
    }

    #[test]
    fn unterminated_quote() {
        assert!(err(r#"tgt:"/a b"#).starts_with("unterminated quote"));
        assert!(err(r#"tgt:/a" ; src:/b"#).starts_with("unterminated quote"));
    }

    #[test]
    fn backslash_at_end() {
        assert!(err(r"tgt:/a\").contains("escapes nothing"));
    }

    #[test]
    fn record_get_returns_value() {
        let r = Record {
            line: 3,
            pairs: pairs(&[("memory", "512M"), ("cpus", "1.5")]),
        };
        assert_eq!(r.get("cpus"), Some("1.5"));
        assert_eq!(r.get("pids"), None);
    }

    #[test]
    fn key_characters() {
        assert_eq!(
            one("max_procs:1 no-new-privs:yes A9:z"),
            pairs(&[("max_procs", "1"), ("no-new-privs", "yes"), ("A9", "z")])
        );
        assert_eq!(one("_:1"), pairs(&[("_", "1")]));
        assert_eq!(one("-:1"), pairs(&[("-", "1")]));
        assert_eq!(err("a.b:1"), "expected key:value, found \"a.b:1\"");
        assert_eq!(err("é:1"), "expected key:value, found \"é:1\"");
    }

    #[test]
    fn value_that_looks_like_a_key() {
        // Right after the colon a value may look like a key...
        assert_eq!(one("src:tgt:/b"), pairs(&[("src", "tgt:/b")]));
        assert_eq!(one("opt:ro tgt:/b"), pairs(&[("opt", "ro"), ("tgt", "/b")]));
        // ...after a blank it is a value only when no colon follows the word.
        assert_eq!(one("src: abc"), pairs(&[("src", "abc")]));
        assert_eq!(one("src: abc "), pairs(&[("src", "abc")]));
        assert_eq!(one("src: a tgt:/b"), pairs(&[("src", "a"), ("tgt", "/b")]));
        assert_eq!(one("src: a-b_c;"), pairs(&[("src", "a-b_c")]));
        assert!(err("src: tgt:").contains("missing value for \"src\""));
    }
}
