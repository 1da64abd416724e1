//! What the user sees while debootstrap runs: a bar on a terminal, one line
//! per phase otherwise, nothing with `-q`.
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::progress::{Event, Level};

pub enum Ui {
    Quiet,
    Plain { phase: String },
    Bar { bar: ProgressBar, phase: String },
}

impl Ui {
    pub fn new(quiet: bool) -> Ui {
        if quiet {
            Ui::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner:.green} {prefix:.bold} [{bar:25.cyan/blue}] {percent:>3}% {elapsed:>4} {wide_msg:.dim}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Ui::Bar {
                bar,
                phase: String::new(),
            }
        } else {
            Ui::Plain {
                phase: String::new(),
            }
        }
    }

    /// Lines only, never a bar (no thread: for before the backend starts).
    pub fn plain(quiet: bool) -> Ui {
        if quiet {
            Ui::Quiet
        } else {
            Ui::Plain {
                phase: String::new(),
            }
        }
    }

    /// A line for the user (above the bar when there is one).
    pub fn say(&self, line: &str) {
        match self {
            Ui::Quiet => {}
            Ui::Plain { .. } => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            // Once the bar is gone ([`Ui::finish`]), a plain line: the bar
            // would pad it to its width, and the next line would follow it.
            Ui::Bar { bar, .. } if bar.is_finished() => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            Ui::Bar { bar, .. } => bar.println(line),
        }
    }

    /// Whether what is said is seen (not `-q`).
    pub fn shows(&self) -> bool {
        !matches!(self, Ui::Quiet)
    }

    pub fn event(&mut self, ev: &Event) {
        match (self, ev) {
            (Ui::Quiet, _) => {}
            (Ui::Plain { phase }, Event::Phase { name, text, .. }) => {
                if name != phase {
                    let _ = writeln!(
                        std::io::stderr(),
                        "create: {}",
                        shown(text.trim_end_matches('.'))
                    );
                    *phase = name.clone();
                }
            }
            (
                Ui::Plain { .. },
                Event::Message {
                    level: Level::Warning,
                    text,
                    ..
                },
            ) => {
                let _ = writeln!(std::io::stderr(), "create: warning: {}", shown(text));
            }
            (Ui::Plain { .. }, _) => {}
            (
                Ui::Bar { bar, phase },
                Event::Phase {
                    now,
                    end,
                    name,
                    text,
                },
            ) => {
                if name != phase {
                    bar.set_prefix(shown(text.trim_end_matches('.')));
                    bar.set_message("");
                    *phase = name.clone();
                }
                bar.set_length((*end).max(1));
                bar.set_position((*now).min(*end));
            }
            (Ui::Bar { bar, .. }, Event::Position { now, end }) => {
                bar.set_length((*end).max(1));
                bar.set_position((*now).min(*end));
            }
            (Ui::Bar { bar, .. }, Event::Message { level, text, .. }) => match level {
                Level::Info => bar.set_message(shown(text)),
                Level::Warning => bar.println(format!("create: warning: {}", shown(text))),
                Level::Error => {}
            },
            (Ui::Bar { .. }, Event::Text(_)) => {}
        }
    }

    /// Removes the bar (before the final messages).
    pub fn finish(&self) {
        if let Ui::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

/// debootstrap's text is data (it names the suite, DIR, URLs): escaped and
/// bounded before it reaches the terminal.
fn shown(text: &str) -> String {
    crate::show::bytes(text.as_bytes())
}
