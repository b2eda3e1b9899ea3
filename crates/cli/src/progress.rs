//! Each step printed as it happens, with the time since the command started (stderr, so
//! `-o json` on stdout stays parseable).

use std::fmt::Display;
use std::time::{Duration, Instant};

pub struct Steps {
    started: Instant,
    /// `Some(indent)`: on stdout, indented (a caller that narrates, like the demo).
    stdout: Option<&'static str>,
}

impl Default for Steps {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            stdout: None,
        }
    }
}

impl Steps {
    /// Steps on stdout, each line after `indent`.
    pub fn on_stdout(indent: &'static str) -> Self {
        Self {
            stdout: Some(indent),
            ..Self::default()
        }
    }

    pub fn say(&self, text: impl Display) {
        let line = format!("[{:>6.1}s] {text}", self.started.elapsed().as_secs_f64());
        match self.stdout {
            Some(indent) => println!("{indent}{line}"),
            None => eprintln!("{line}"),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// How often waits look again. A poll, not a watch: a CLI waits for a handful of objects on
/// sites that may be far away, and a list per second costs the API server nothing.
pub const POLL: Duration = Duration::from_secs(1);

/// How often a wait says it is still waiting.
pub const STILL_WAITING: Duration = Duration::from_secs(15);
