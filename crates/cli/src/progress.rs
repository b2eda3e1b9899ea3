//! Each step printed as it happens, with the time since the command started (stderr, so
//! `-o json` on stdout stays parseable).

use std::fmt::Display;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Steps {
    started: Instant,
    /// `Some(indent)`: on stdout, indented (a caller that narrates, like the demo).
    stdout: Option<&'static str>,
    /// What the command is waiting for right now, if it is waiting: what a timeout names.
    waiting: Mutex<Option<String>>,
}

impl Default for Steps {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            stdout: None,
            waiting: Mutex::new(None),
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

    /// Says that the command now waits for `what` (until the next step is said), so a timeout
    /// can name exactly that.
    pub fn wait_for(&self, what: impl Display) {
        let what = what.to_string();
        self.say(format!("waiting until {what}"));
        *self.waiting.lock().unwrap() = Some(what);
    }

    /// Says how a wait under way is going, without ending it.
    pub fn still(&self, text: impl Display) {
        self.print(text);
    }

    /// What the command was waiting for when asked, if it was.
    pub fn waiting(&self) -> Option<String> {
        self.waiting.lock().unwrap().clone()
    }

    /// Says a step (ending any wait).
    pub fn say(&self, text: impl Display) {
        *self.waiting.lock().unwrap() = None;
        self.print(text);
    }

    fn print(&self, text: impl Display) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_under_way_is_remembered_until_the_next_step() {
        let steps = Steps::on_stdout("");
        assert_eq!(steps.waiting(), None);
        steps.wait_for("site a: no Pod mounts the claims");
        assert_eq!(
            steps.waiting().as_deref(),
            Some("site a: no Pod mounts the claims")
        );
        steps.still("site a: still waiting");
        assert!(
            steps.waiting().is_some(),
            "progress within a wait does not end it"
        );
        steps.say("site a: db demoted");
        assert_eq!(steps.waiting(), None);
    }
}
