//! debootstrap's machine-readable output (`--debian-installer`), parsed.
//!
//! With `--debian-installer` debootstrap writes on fd 3:
//!
//! - `P: NOW END NAME` followed by `PA: ARG`… and `PF: FORMAT`: a phase
//!   (`NAME` is a template such as `DOWNDEBS`, `EXTRACTPKGS`, `INSTCORE`)
//!   and how far it is;
//! - `P: NOW END` alone: a position update inside the current phase (written
//!   while wget downloads);
//! - `I:`/`W:`/`E: NAME`, then `IA:`/`WA:`/`EA: ARG`…, then `IF:`/`WF:`/`EF:
//!   FORMAT`: an information, a warning or an error, as a printf format and
//!   its arguments.
//!
//! Errors found before debootstrap switches its fds (an unknown script, bad
//! options) come the same way on stdout, so both streams go through this
//! parser; any other line is plain text. Pure: lines in, events out.

/// How serious a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn tag(self) -> &'static str {
        match self {
            Level::Info => "I",
            Level::Warning => "W",
            Level::Error => "E",
        }
    }
}

/// One thing debootstrap told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A phase starts or moves on: `name` is its template (`DOWNDEBS`…),
    /// `text` its description with the arguments filled in.
    Phase {
        now: u64,
        end: u64,
        name: String,
        text: String,
    },
    /// A position inside the current phase.
    Position { now: u64, end: u64 },
    /// An `I:`/`W:`/`E:` message: `name` is its template (`RETRIEVING`,
    /// `NOGETREL`…), `args` its arguments, `text` the formatted message.
    Message {
        level: Level,
        name: String,
        args: Vec<String>,
        text: String,
    },
    /// Any other line.
    Text(String),
}

#[derive(Debug)]
enum Pending {
    Phase {
        now: u64,
        end: u64,
        name: String,
        args: Vec<String>,
    },
    Message {
        level: Level,
        name: String,
        args: Vec<String>,
    },
}

/// An incremental parser: feed it lines as they come, then `finish`.
#[derive(Debug, Default)]
pub struct Parser {
    pending: Option<Pending>,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Parses one line (without its newline); returns the events it completes.
    pub fn line(&mut self, line: &str) -> Vec<Event> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut out = vec![];
        let Some((tag, rest)) = split_tag(line) else {
            out.extend(self.finish());
            out.push(Event::Text(line.to_string()));
            return out;
        };
        match tag {
            "P" => {
                out.extend(self.finish());
                let mut words = rest.splitn(3, ' ');
                let now = words.next().and_then(|w| w.parse().ok());
                let end = words.next().and_then(|w| w.parse().ok());
                let name = words.next().map(str::trim).filter(|n| !n.is_empty());
                match (now, end, name) {
                    (Some(now), Some(end), Some(name)) => {
                        self.pending = Some(Pending::Phase {
                            now,
                            end,
                            name: name.to_string(),
                            args: vec![],
                        })
                    }
                    (Some(now), Some(end), None) => out.push(Event::Position { now, end }),
                    _ => out.push(Event::Text(line.to_string())),
                }
            }
            "I" | "W" | "E" => {
                out.extend(self.finish());
                let level = match tag {
                    "I" => Level::Info,
                    "W" => Level::Warning,
                    _ => Level::Error,
                };
                self.pending = Some(Pending::Message {
                    level,
                    name: rest.to_string(),
                    args: vec![],
                });
            }
            "PA" | "IA" | "WA" | "EA" => match &mut self.pending {
                Some(Pending::Phase { args, .. }) if tag == "PA" => args.push(rest.to_string()),
                Some(Pending::Message { level, args, .. }) if tag.starts_with(level.tag()) => {
                    args.push(rest.to_string())
                }
                _ => {
                    out.extend(self.finish());
                    out.push(Event::Text(line.to_string()));
                }
            },
            _ => {
                // PF / IF / WF / EF: the format that completes a record.
                match self.pending.take() {
                    Some(Pending::Phase {
                        now,
                        end,
                        name,
                        args,
                    }) if tag == "PF" => out.push(Event::Phase {
                        now,
                        end,
                        name,
                        text: printf(rest, &args),
                    }),
                    Some(Pending::Message { level, name, args })
                        if tag.starts_with(level.tag()) =>
                    {
                        out.push(Event::Message {
                            level,
                            name,
                            text: printf(rest, &args),
                            args,
                        })
                    }
                    other => {
                        self.pending = other;
                        out.extend(self.finish());
                        out.push(Event::Text(line.to_string()));
                    }
                }
            }
        }
        out
    }

    /// Completes a record left without its format line (debootstrap was
    /// killed halfway through writing it): the name stands for the text.
    pub fn finish(&mut self) -> Vec<Event> {
        match self.pending.take() {
            None => vec![],
            Some(Pending::Phase {
                now,
                end,
                name,
                args: _,
            }) => vec![Event::Phase {
                now,
                end,
                text: name.clone(),
                name,
            }],
            Some(Pending::Message { level, name, args }) => vec![Event::Message {
                level,
                text: std::iter::once(name.as_str())
                    .chain(args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
                name,
                args,
            }],
        }
    }
}

/// Parses a whole recorded stream.
pub fn parse(text: &str) -> Vec<Event> {
    let mut p = Parser::new();
    let mut out: Vec<Event> = text.lines().flat_map(|l| p.line(l)).collect();
    out.extend(p.finish());
    out
}

/// `TAG: rest` for the tags debootstrap uses, else None.
fn split_tag(line: &str) -> Option<(&str, &str)> {
    let (tag, rest) = line.split_once(':')?;
    const TAGS: [&str; 12] = [
        "P", "PA", "PF", "I", "IA", "IF", "W", "WA", "WF", "E", "EA", "EF",
    ];
    if !TAGS.contains(&tag) {
        return None;
    }
    Some((tag, rest.strip_prefix(' ').unwrap_or(rest)))
}

/// The subset of printf debootstrap's formats use: `%s`, `%d` and friends
/// take the next argument, `%%` is a percent sign, `\n` a new line.
pub fn printf(fmt: &str, args: &[String]) -> String {
    let mut out = String::with_capacity(fmt.len());
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('%') => out.push('%'),
                Some('s' | 'd' | 'i' | 'u') => out.push_str(args.next().map_or("", String::as_str)),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            },
            '\\' if chars.peek() == Some(&'n') => {
                chars.next();
                out.push('\n');
            }
            _ => out.push(c),
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn phase_with_args() {
        let ev = parse("P: 3 78 EXTRACTPKGS\nPA: libc6\nPF: Extracting %s...\n");
        assert_eq!(
            ev,
            vec![Event::Phase {
                now: 3,
                end: 78,
                name: "EXTRACTPKGS".into(),
                text: "Extracting libc6...".into()
            }]
        );
    }

    #[test]
    fn position_and_message() {
        let ev = parse("P: 12 100\nI: RETRIEVING\nIA: InRelease\nIA: \nIF: Retrieving %s %s\n");
        assert_eq!(ev[0], Event::Position { now: 12, end: 100 });
        assert_eq!(
            ev[1],
            Event::Message {
                level: Level::Info,
                name: "RETRIEVING".into(),
                args: s(&["InRelease", ""]),
                text: "Retrieving InRelease".into()
            }
        );
    }

    #[test]
    fn plain_text_and_unfinished_records() {
        let ev = parse("amd64: ok\nE: NOGETREL\nEA: http://x/dists/s/Release\n");
        assert_eq!(ev[0], Event::Text("amd64: ok".into()));
        assert!(
            matches!(&ev[1], Event::Message { level: Level::Error, name, .. } if name == "NOGETREL")
        );
    }

    #[test]
    fn printf_subset() {
        assert_eq!(printf("a %s b %d%%", &s(&["x", "7"])), "a x b 7%");
        assert_eq!(printf("one\\ntwo", &[]), "one\ntwo");
        assert_eq!(printf("%s %s", &s(&["only"])), "only");
    }
}
