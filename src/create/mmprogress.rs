//! mmdebstrap's output (`--verbose`), parsed into the same events as
//! debootstrap's (`progress::Event`), so that one progress bar and one
//! failure handling serve both backends.
//!
//! mmdebstrap has no machine-readable channel: with `--verbose` it writes
//! its steps as `I: ` lines (`I: running apt-get update...`, `I: downloading
//! packages with apt...`, `I: extracting archives...`, `I: installing
//! essential packages...`, `I: installing remaining packages inside the
//! chroot...`, `I: cleaning package lists and apt cache...`), its warnings
//! and errors as `W: `/`E: ` lines, and apt's and dpkg's own output in
//! between (`Get:N URL ...`, `N upgraded, M newly installed, ...`,
//! `Unpacking P (V) ...`, `Setting up P (V) ...`). The steps are the phases;
//! inside a phase, apt's and dpkg's lines counted against the package count
//! apt announced move the bar. Positions are out of [`END`] for the whole
//! run. Pure: lines in, events out.
use super::progress::{Event, Level};

/// The whole run, in positions.
pub const END: u64 = 1000;

/// mmdebstrap's steps: the text of its `I:` line, our name, what we show,
/// and where the step starts and ends in the whole run.
const STEPS: [(&str, &str, &str, u64, u64); 6] = [
    (
        "running apt-get update",
        "UPDATE",
        "Retrieving the package lists",
        0,
        80,
    ),
    (
        "downloading packages with apt",
        "DOWNLOAD",
        "Downloading packages",
        80,
        400,
    ),
    (
        "extracting archives",
        "EXTRACT",
        "Extracting packages",
        400,
        480,
    ),
    (
        "installing essential packages",
        "ESSENTIAL",
        "Installing the essential packages",
        480,
        780,
    ),
    (
        "installing remaining packages inside the chroot",
        "REMAINING",
        "Installing the remaining packages",
        780,
        980,
    ),
    (
        "cleaning package lists and apt cache",
        "CLEANUP",
        "Cleaning up",
        980,
        1000,
    ),
];

/// What an error line of apt or mmdebstrap is about.
pub const FETCH: &str = "FETCH";
pub const NORELEASE: &str = "NORELEASE";
pub const ERROR: &str = "ERROR";

/// An incremental parser: feed it lines as they come.
#[derive(Debug, Default)]
pub struct Parser {
    step: Option<usize>,
    /// Packages apt announced for the step (`M newly installed`).
    total: u64,
    /// Packages downloaded in the download step: the essential step
    /// installs about that many.
    downloaded: u64,
    /// Lines counted in the step (a `Get:`, or an unpack and a set-up per package).
    done: u64,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Parses one line (without its newline); returns its events.
    pub fn line(&mut self, line: &str) -> Vec<Event> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(text) = line.strip_prefix("I: ") {
            let what = text.trim_end_matches("...");
            if let Some(i) = STEPS.iter().position(|s| s.0 == what) {
                if self.step == Some(1) {
                    self.downloaded = self.done;
                }
                self.step = Some(i);
                self.done = 0;
                self.total = if i == 3 { self.downloaded } else { 0 };
                let (_, name, shown, start, _) = STEPS[i];
                return vec![Event::Phase {
                    now: start,
                    end: END,
                    name: name.into(),
                    text: shown.into(),
                }];
            }
            return vec![message(Level::Info, "INFO", vec![], text)];
        }
        if let Some(text) = line.strip_prefix("W: ") {
            return vec![message(Level::Warning, "WARNING", vec![], text)];
        }
        if let Some(text) = line.strip_prefix("E: ") {
            let (name, args) = error_of(text);
            return vec![message(Level::Error, name, args, text)];
        }
        let counted = match self.step {
            Some(0 | 1) => line.starts_with("Get:"),
            Some(3 | 4) => line.starts_with("Unpacking ") || line.starts_with("Setting up "),
            _ => false,
        };
        if let Some(n) = newly_installed(line) {
            self.total = n;
        }
        let mut out = vec![Event::Text(line.to_string())];
        if counted {
            self.done += 1;
            if let Some(p) = self.position() {
                out.push(p);
            }
        }
        out
    }

    /// Where the run is, from the current step and its count.
    fn position(&self) -> Option<Event> {
        let i = self.step?;
        let (_, _, _, start, end) = STEPS[i];
        // Installing takes two lines per package (unpack, set up).
        let per = if i >= 3 { 2 } else { 1 };
        let total = self.total * per;
        // Without a count (apt-get update): each line moves a little.
        let frac = if total == 0 {
            1.0 - 1.0 / (1.0 + self.done as f64 / 4.0)
        } else {
            (self.done as f64 / total as f64).min(1.0)
        };
        Some(Event::Position {
            now: start + ((end - start) as f64 * frac) as u64,
            end: END,
        })
    }
}

fn message(level: Level, name: &str, args: Vec<String>, text: &str) -> Event {
    Event::Message {
        level,
        name: name.into(),
        args,
        text: text.to_string(),
    }
}

/// `M` of apt's `N upgraded, M newly installed, ...` line.
fn newly_installed(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once(" upgraded, ")?;
    let (n, _) = rest.split_once(" newly installed")?;
    n.trim().parse().ok()
}

/// What an `E:` line says, as a name and its arguments: apt's `Failed to
/// fetch URL  REASON` (FETCH, [url, reason]) and `The repository 'URL SUITE
/// Release' does not have a Release file.` (NORELEASE, [url, suite]).
fn error_of(text: &str) -> (&'static str, Vec<String>) {
    if let Some(rest) = text.strip_prefix("Failed to fetch ") {
        let (url, reason) = rest.split_once("  ").unwrap_or((rest, ""));
        return (FETCH, vec![url.trim().into(), reason.trim().into()]);
    }
    if let Some(rest) = text.strip_prefix("The repository '") {
        if let Some((what, _)) = rest.split_once("' does not have a Release file") {
            let mut words = what.split_whitespace();
            let url = words.next().unwrap_or("").to_string();
            let suite = words.next().unwrap_or("").to_string();
            return (NORELEASE, vec![url, suite]);
        }
    }
    (ERROR, vec![])
}

/// Whether an `E:` line only repeats that something before it failed
/// (mmdebstrap's wrap-up), rather than saying what.
pub fn is_wrap_up(text: &str) -> bool {
    text == "mmdebstrap failed to run"
        || text.starts_with("Some index files failed to download")
        || (text.ends_with(" failed") && text.contains("apt-get "))
        || text.starts_with("run_progress() received signal")
}

/// Parses a whole recorded output.
pub fn parse(text: &str) -> Vec<Event> {
    let mut p = Parser::new();
    text.lines().flat_map(|l| p.line(l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_phases_and_counts_move_the_bar() {
        let text = "\
I: chroot architecture amd64 is equal to the host's architecture
I: running apt-get update...
Get:1 http://deb.debian.org/debian stable InRelease [140 kB]
Get:2 http://deb.debian.org/debian stable/main amd64 Packages [9678 kB]
I: downloading packages with apt...
0 upgraded, 4 newly installed, 0 to remove and 0 not upgraded.
Get:1 http://deb.debian.org/debian stable/main amd64 a 1 [1 kB]
Get:2 http://deb.debian.org/debian stable/main amd64 b 1 [1 kB]
I: extracting archives...
I: installing essential packages...
Unpacking a (1) ...
Setting up a (1) ...
I: installing remaining packages inside the chroot...
I: success in 8.6 seconds
";
        let ev = parse(text);
        let phases: Vec<&str> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Phase { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            phases,
            ["UPDATE", "DOWNLOAD", "EXTRACT", "ESSENTIAL", "REMAINING"]
        );
        let pos: Vec<u64> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Position { now, end } => {
                    assert_eq!(*end, END);
                    Some(*now)
                }
                _ => None,
            })
            .collect();
        // update: no count, moving; download: 1 and 2 of 4; essential: 2 of 2×2.
        assert_eq!(pos.len(), 6);
        assert!(pos[0] < pos[1] && pos[1] < 80, "{pos:?}");
        assert_eq!(pos[2], 80 + 320 / 4);
        assert_eq!(pos[3], 80 + 320 / 2);
        assert_eq!(pos[4], 480 + 300 / 4);
        assert_eq!(pos[5], 480 + 300 / 2);
        assert!(pos.windows(2).all(|w| w[0] <= w[1]));
        assert!(
            matches!(&ev[0], Event::Message { level: Level::Info, text, .. } if text.starts_with("chroot architecture"))
        );
        assert!(
            matches!(ev.last(), Some(Event::Message { level: Level::Info, text, .. }) if text == "success in 8.6 seconds")
        );
    }

    #[test]
    fn recorded_run_reaches_every_step() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/mmdebstrap/minbase.out"),
        )
        .unwrap();
        let ev = parse(&text);
        let phases = ev
            .iter()
            .filter(|e| matches!(e, Event::Phase { .. }))
            .count();
        assert_eq!(phases, 6);
        let last = ev
            .iter()
            .filter_map(|e| match e {
                Event::Position { now, .. } => Some(*now),
                _ => None,
            })
            .max()
            .unwrap();
        assert!(last > 900, "{last}");
        assert!(!ev.iter().any(|e| matches!(
            e,
            Event::Message {
                level: Level::Error,
                ..
            }
        )));
    }

    fn errors(text: &str) -> Vec<(String, Vec<String>, String)> {
        parse(text)
            .into_iter()
            .filter_map(|e| match e {
                Event::Message {
                    level: Level::Error,
                    name,
                    args,
                    text,
                } => Some((name, args, text)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn recorded_failures() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mmdebstrap");
        let bad = std::fs::read_to_string(dir.join("bad-mirror.out")).unwrap();
        let e = errors(&bad);
        assert_eq!(e[0].0, FETCH);
        assert_eq!(
            e[0].1[0],
            "http://127.0.0.1:9/debian/dists/stable/InRelease"
        );
        assert!(e[0].1[1].starts_with("Could not connect"), "{:?}", e[0]);
        assert!(e[1..].iter().all(|(_, _, t)| is_wrap_up(t)), "{e:?}");

        let suite = std::fs::read_to_string(dir.join("bad-suite.out")).unwrap();
        let e = errors(&suite);
        assert_eq!(e[0].0, NORELEASE);
        assert_eq!(e[0].1, ["http://deb.debian.org/debian", "nosuchsuite"]);
        assert!(e[1..].iter().all(|(_, _, t)| is_wrap_up(t)), "{e:?}");
        assert!(!is_wrap_up("cannot find newuidmap"));
    }
}
