//! Policy: what `run` executes inside, from the command line and the
//! sandbox's chroot.d (the original's rules, DESIGN.md "Dispatch of run").
use std::path::PathBuf;

/// What the user asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// One argument: a shell command line.
    Line(String),
    /// After `--`: an exact argv, never a shell.
    Argv(Vec<String>),
}

impl Request {
    /// The command line as `host-cmd` receives it in `$1`.
    pub fn display(&self) -> String {
        match self {
            Request::Line(l) => l.clone(),
            Request::Argv(a) => a
                .iter()
                .map(|w| shell_quote(w))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    fn first_word(&self) -> &str {
        match self {
            // Words as the shell that runs the line splits them: at its
            // blanks and newlines only (a no-break space is part of a word).
            Request::Line(l) => l.split(SH_BLANKS).find(|w| !w.is_empty()).unwrap_or(""),
            Request::Argv(a) => a.first().map(String::as_str).unwrap_or(""),
        }
    }
}

/// What to execute inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub argv: Vec<String>,
    /// Working directory inside the root.
    pub cwd: PathBuf,
    /// The entry of chroot.d that runs (a named command, or `chroot-cmd`).
    pub program: Option<String>,
}

/// The shell that runs command lines inside.
pub const SH: &str = "/bin/sh";

/// What separates the words of a line for [`SH`]: space, tab, newline.
const SH_BLANKS: [char; 3] = [' ', '\t', '\n'];

/// A word that may name a file in chroot.d: no `/`, not `.` or `..`, not empty.
pub fn is_plain_name(w: &str) -> bool {
    !w.is_empty() && w != "." && w != ".." && !w.contains('/') && !w.contains('\0')
}

/// Applies the four rules. `is_command(NAME)` tells whether chroot.d/NAME is
/// an executable file; `has_chroot_cmd` whether chroot.d/chroot-cmd exists.
pub fn dispatch(
    req: &Request,
    is_command: impl Fn(&str) -> bool,
    has_chroot_cmd: bool,
) -> Invocation {
    let word = req.first_word();
    let mut program = None;
    let (argv, cwd): (Vec<String>, &str) = if word.starts_with('/') {
        (direct(req, ""), "/")
    } else if is_plain_name(word) && is_command(word) {
        program = Some(word.to_string());
        (direct(req, "/chroot.d/"), "/chroot.d")
    } else if has_chroot_cmd {
        program = Some("chroot-cmd".to_string());
        // The words themselves, split as a shell would but with no shell
        // around: `;`, `|` and `>` are chroot-cmd's to interpret.
        let words = match req {
            Request::Line(l) => split_words(l).unwrap_or_else(|| vec![l.clone()]),
            Request::Argv(a) => a.clone(),
        };
        let argv = std::iter::once("/chroot.d/chroot-cmd".to_string())
            .chain(words)
            .collect();
        (argv, "/chroot.d")
    } else {
        (direct(req, ""), "/")
    };
    Invocation {
        argv,
        cwd: PathBuf::from(cwd),
        program,
    }
}

/// The request as it is, its first word prefixed with `prefix`.
fn direct(req: &Request, prefix: &str) -> Vec<String> {
    match req {
        Request::Line(l) => sh(format!("{prefix}{}", l.trim_start_matches(SH_BLANKS))),
        Request::Argv(a) => {
            let mut v = a.clone();
            if let Some(first) = v.first_mut() {
                *first = format!("{prefix}{first}");
            }
            v
        }
    }
}

fn sh(line: String) -> Vec<String> {
    vec![SH.to_string(), "-c".to_string(), line]
}

/// Splits a line into words as a POSIX shell would quote them (blanks
/// separate; `'...'` literal; `"..."` with `\\` escaping `"`, `\\`, `$`, `` ` ``;
/// `\\` outside quotes escapes the next character), nothing else interpreted.
/// None when a quote is left open.
pub fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = vec![];
    let mut cur: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if let Some(w) = cur.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => w.push(c),
                            '\n' => {}
                            c => {
                                w.push('\\');
                                w.push(c);
                            }
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => cur.get_or_insert_with(String::new).push(c),
                None => cur.get_or_insert_with(String::new).push('\\'),
            },
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(cur);
    Some(words)
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_quote(w: &str) -> String {
    if !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Request {
        Request::Line(s.into())
    }
    fn argv(a: &[&str]) -> Request {
        Request::Argv(a.iter().map(|s| s.to_string()).collect())
    }
    fn cmds(name: &str) -> bool {
        name == "build"
    }

    #[test]
    fn rule1_absolute_runs_as_is_from_root() {
        let i = dispatch(&line("/bin/echo hi"), cmds, true);
        assert_eq!(i.argv, vec!["/bin/sh", "-c", "/bin/echo hi"]);
        assert_eq!(i.cwd, PathBuf::from("/"));
        let i = dispatch(&argv(&["/bin/true"]), cmds, true);
        assert_eq!(i.argv, vec!["/bin/true"]);
    }

    #[test]
    fn rule2_chroot_d_command() {
        let i = dispatch(&line("build --fast x"), cmds, true);
        assert_eq!(i.argv, vec!["/bin/sh", "-c", "/chroot.d/build --fast x"]);
        assert_eq!(i.cwd, PathBuf::from("/chroot.d"));
        assert_eq!(i.program.as_deref(), Some("build"));
        let i = dispatch(&argv(&["build", "a b"]), cmds, false);
        assert_eq!(i.argv, vec!["/chroot.d/build", "a b"]);
        assert_eq!(i.program.as_deref(), Some("build"));
        let i = dispatch(&line(" \tbuild\tx"), cmds, false);
        assert_eq!(i.argv, vec!["/bin/sh", "-c", "/chroot.d/build\tx"]);
        assert_eq!(i.program.as_deref(), Some("build"));
    }

    /// The first word is the one the shell will run: a no-break space, a
    /// vertical tab or a form feed are part of it, as sh sees them, never
    /// an end that would name (and check) another entry than runs.
    #[test]
    fn the_first_word_ends_where_the_shell_ends_it() {
        for odd in ["\u{a0}", "\u{b}", "\u{c}", "\r", "\u{2003}"] {
            let l = format!("build{odd}y");
            let i = dispatch(&line(&l), cmds, false);
            assert_eq!(i.program, None, "{l:?}");
            assert_eq!(i.argv, vec!["/bin/sh", "-c", l.as_str()], "{l:?}");
            let named = |n: &str| n == l;
            let i = dispatch(&line(&format!("{l} z")), named, false);
            assert_eq!(i.program.as_deref(), Some(l.as_str()), "{l:?}");
        }
    }

    #[test]
    fn rule3_chroot_cmd_gets_the_words() {
        let i = dispatch(&line("deploy now"), cmds, true);
        assert_eq!(i.argv, vec!["/chroot.d/chroot-cmd", "deploy", "now"]);
        let i = dispatch(&line("echo a; env | head 'x y'"), cmds, true);
        assert_eq!(
            i.argv,
            vec![
                "/chroot.d/chroot-cmd",
                "echo",
                "a;",
                "env",
                "|",
                "head",
                "x y"
            ]
        );
        let i = dispatch(&argv(&["deploy", "x y"]), cmds, true);
        assert_eq!(i.argv, vec!["/chroot.d/chroot-cmd", "deploy", "x y"]);
        assert_eq!(i.cwd, PathBuf::from("/chroot.d"));
        assert_eq!(i.program.as_deref(), Some("chroot-cmd"));
    }

    #[test]
    fn rule4_shell_or_path() {
        let i = dispatch(&line("ls -l | wc -l"), cmds, false);
        assert_eq!(i.argv, vec!["/bin/sh", "-c", "ls -l | wc -l"]);
        assert_eq!(i.cwd, PathBuf::from("/"));
        let i = dispatch(&argv(&["ls", "-l"]), cmds, false);
        assert_eq!(i.argv, vec!["ls", "-l"]);
        assert_eq!(i.program, None);
        let i = dispatch(&argv(&["/chroot.d/build"]), cmds, true);
        assert_eq!(
            i.program, None,
            "a path is the program's own, not dispatched"
        );
    }

    #[test]
    fn names_that_leave_chroot_d_are_not_commands() {
        let yes = |_: &str| true;
        for w in ["../x", "..", ".", "a/b"] {
            let i = dispatch(&line(w), yes, false);
            assert_eq!(i.argv[2], w, "{w}");
            assert_eq!(i.cwd, PathBuf::from("/"));
        }
    }

    #[test]
    fn words_split_like_a_shell() {
        let w = |s: &str| split_words(s).map(|v| v.join("|"));
        assert_eq!(w("  a  b\tc "), Some("a|b|c".into()));
        assert_eq!(
            w(r#"'a b' "c \"d\" $x" e\ f"#),
            Some(r#"a b|c "d" $x|e f"#.into())
        );
        assert_eq!(w(r#"x''y "" '' "#), Some("xy||".into()));
        assert_eq!(w("'open"), None);
        assert_eq!(w(r#""open"#), None);
        assert_eq!(w(""), Some("".into()));
    }

    #[test]
    fn quoting() {
        assert_eq!(
            argv(&["echo", "a b", "it's"]).display(),
            r"echo 'a b' 'it'\''s'"
        );
        assert_eq!(shell_quote(""), "''");
    }
}
