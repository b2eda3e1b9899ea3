//! What the restic mover says about its work, read from its output. Pure.
//!
//! VolSync's restic mover (`mover-restic/entry.sh`) prints a marker before each step
//! (`=== Starting backup ===`, …) and runs restic with `RESTIC_PROGRESS_FPS=0.1`, so restic,
//! without a terminal, prints a status line every 10 s:
//! `[0:10] 12.34%  5 files 1.234 MiB, total 40 files 10.000 MiB, 0 errors ETA 1:11`
//! (before it has counted the total: `[0:00] 0 files 0 B, 0 errors`). When the Job ends,
//! VolSync keeps restic's summary lines in `latestMoverStatus.logs`:
//! `Added to the repository: 4.769 MiB (…)`, `processed 2 files, 4.768 MiB in 0:04`,
//! `Restic completed in 5s`. Only numbers and the step are taken; no line is kept verbatim
//! (a file name could be anything).

use std::time::Duration;

use lifeline_api::datamover::{MoverPhase, MoverProgress};

/// Restic's counts from its last status line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub files_done: u64,
    pub bytes_done: u64,
    pub files_total: Option<u64>,
    pub bytes_total: Option<u64>,
}

/// The mover's step and restic's latest counts, from the tail of its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub phase: Option<MoverPhase>,
    pub counts: Option<Counts>,
}

/// Reads the tail of a mover Pod's log: the last marker or status line decides the step.
pub fn report(log: &str) -> Report {
    let mut report = Report::default();
    for line in log.lines() {
        if let Some(phase) = marker(line) {
            report.phase = Some(phase);
        } else if let Some(counts) = status_line(line) {
            report.counts = Some(counts);
            // A tail that starts after the marker still shows a backup going on.
            if matches!(
                report.phase,
                None | Some(MoverPhase::Preparing | MoverPhase::Initializing)
            ) {
                report.phase = Some(MoverPhase::BackingUp);
            }
        }
    }
    report
}

/// The step a marker line of the mover script starts.
fn marker(line: &str) -> Option<MoverPhase> {
    let text = line.trim().strip_prefix("===")?.strip_suffix("===")?.trim();
    let phase = match text {
        "Check for dir initialized" | "Initialize Dir" => MoverPhase::Initializing,
        "Starting unlock" => MoverPhase::Unlocking,
        "Starting backup" => MoverPhase::BackingUp,
        "Starting forget" => MoverPhase::Forgetting,
        "Starting prune" => MoverPhase::Pruning,
        "Starting restore" => MoverPhase::Restoring,
        "Done" => MoverPhase::Done,
        _ => return None,
    };
    Some(phase)
}

/// Restic's non-terminal status line: `[elapsed] [pct%  ]N files SIZE[, total M files SIZE], E errors[ ETA t]`.
pub fn status_line(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix('[')?;
    let (elapsed, rest) = rest.split_once(']')?;
    restic_duration(elapsed)?;
    let mut rest = rest.trim_start();
    // An optional percentage before the counts.
    if let Some((first, after)) = rest.split_once(char::is_whitespace)
        && first.ends_with('%')
    {
        first.trim_end_matches('%').parse::<f64>().ok()?;
        rest = after.trim_start();
    }
    let mut parts = rest.split(", ");
    let (files_done, bytes_done) = files_and_size(parts.next()?)?;
    let mut counts = Counts {
        files_done,
        bytes_done,
        ..Counts::default()
    };
    let mut next = parts.next();
    if let Some(total) = next.and_then(|n| n.strip_prefix("total ")) {
        let (files, bytes) = files_and_size(total)?;
        counts.files_total = Some(files);
        counts.bytes_total = Some(bytes);
        next = parts.next();
    }
    // `E errors[ ETA t]`; a restore's line (restic ≥ 0.16) has none.
    if let Some(errors) = next {
        let mut words = errors.split_whitespace();
        words.next()?.parse::<u64>().ok()?;
        words.next().filter(|w| w.starts_with("error"))?;
    }
    (next.is_some() || counts.bytes_total.is_some()).then_some(counts)
}

/// `12 files 1.234 MiB` (restic ≥ 0.16 says `files/dirs` for a restore).
fn files_and_size(text: &str) -> Option<(u64, u64)> {
    let mut words = text.split_whitespace();
    let files = words.next()?.parse().ok()?;
    if !words.next()?.starts_with("files") {
        return None;
    }
    let size = size(&format!("{} {}", words.next()?, words.next()?))?;
    words.next().is_none().then_some((files, size))
}

/// Restic's byte sizes: `0 B`, `512 B`, `1.234 KiB` … `TiB`.
pub fn size(text: &str) -> Option<u64> {
    let mut parts = text.split_whitespace();
    let number: f64 = parts.next()?.parse().ok()?;
    let factor: f64 = match parts.next()? {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024f64.powi(2),
        "GiB" => 1024f64.powi(3),
        "TiB" => 1024f64.powi(4),
        _ => return None,
    };
    let bytes = number * factor;
    (number.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64 && parts.next().is_none())
        .then_some(bytes as u64)
}

/// Restic's `[m:ss]` or `[h:mm:ss]`.
pub fn restic_duration(text: &str) -> Option<Duration> {
    let parts: Vec<u64> = text
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let seconds = match parts.as_slice() {
        [m, s] if *s < 60 => m.checked_mul(60)?.checked_add(*s)?,
        [h, m, s] if *m < 60 && *s < 60 => h
            .checked_mul(3600)?
            .checked_add(m.checked_mul(60)?)?
            .checked_add(*s)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

/// What a finished mover run did, from the lines VolSync keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub bytes_added: Option<u64>,
    pub files: Option<u64>,
    pub bytes: Option<u64>,
    /// The mover's own run time ("Restic completed in 5s"), else restic backup's.
    pub duration: Option<Duration>,
}

pub fn totals(logs: &str) -> Totals {
    let mut totals = Totals::default();
    let mut backup_took = None;
    for line in logs.lines().map(str::trim) {
        if let Some(added) = line.strip_prefix("Added to the repository:") {
            let amount = added.split('(').next().unwrap_or_default();
            totals.bytes_added = size(amount);
        } else if let Some(processed) = line.strip_prefix("processed ") {
            // `processed 2 files, 4.768 MiB in 0:04`
            if let Some((files, rest)) = processed.split_once(" files, ")
                && let Some((bytes, took)) = rest.split_once(" in ")
            {
                totals.files = files.trim().parse().ok();
                totals.bytes = size(bytes);
                backup_took = restic_duration(took.trim());
            }
        } else if let Some(seconds) = line
            .strip_prefix("Restic completed in ")
            .and_then(|s| s.strip_suffix('s'))
        {
            totals.duration = seconds.parse().ok().map(Duration::from_secs);
        }
    }
    totals.duration = totals.duration.or(backup_took);
    totals
}

/// The id of the snapshot restic saved (`snapshot 4f2a9c1b saved`), the last one in the log.
pub fn saved_snapshot(logs: &str) -> Option<String> {
    logs.lines()
        .rev()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix("snapshot ")?.strip_suffix(" saved"))
        .find(|id| !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_owned)
}

/// `4.8 MiB`, as people read sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `1h2m3s`, `4m5s`, `6s`.
pub fn human_duration(duration: Duration) -> String {
    let s = duration.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// The status while the mover runs: its step and counts (kept from the previous report when
/// the mover said nothing new), the request's elapsed time, and the one-line summary.
pub fn running(
    report: Report,
    previous: Option<&MoverProgress>,
    elapsed: Duration,
) -> MoverProgress {
    let previous = previous.cloned().unwrap_or_default();
    let phase = report
        .phase
        .or_else(|| previous.phase.as_ref().and_then(|p| p.known()))
        .unwrap_or(MoverPhase::Preparing);
    let mut progress = MoverProgress {
        phase: Some(phase.into()),
        elapsed_seconds: Some(elapsed.as_secs()),
        ..MoverProgress::default()
    };
    match report.counts {
        Some(c) => {
            progress.bytes_done = Some(c.bytes_done);
            progress.files_done = Some(c.files_done);
            progress.bytes_total = c.bytes_total;
            progress.files_total = c.files_total;
        }
        None => {
            progress.bytes_done = previous.bytes_done;
            progress.files_done = previous.files_done;
            progress.bytes_total = previous.bytes_total;
            progress.files_total = previous.files_total;
        }
    }
    let mut summary = phase.to_string();
    if let Some(done) = progress.bytes_done {
        match progress.bytes_total.filter(|t| *t > 0) {
            Some(total) => {
                let percent = (done as f64 / total as f64 * 100.0).min(100.0);
                summary.push_str(&format!(
                    " {percent:.0}% {} of {}",
                    human_bytes(done),
                    human_bytes(total)
                ));
            }
            None => summary.push_str(&format!(" {}", human_bytes(done))),
        }
    }
    summary.push_str(&format!(", {}", human_duration(elapsed)));
    progress.summary = Some(summary);
    progress
}

/// The status once the mover finished, from its kept summary lines.
pub fn finished(totals: Totals, elapsed: Duration) -> MoverProgress {
    let mut summary = String::from("Done");
    if let Some(added) = totals.bytes_added {
        summary.push_str(&format!(" {} added", human_bytes(added)));
    }
    if let Some(files) = totals.files {
        summary.push_str(&format!(", {files} files"));
    }
    summary.push_str(&format!(", {}", human_duration(elapsed)));
    MoverProgress {
        phase: Some(MoverPhase::Done.into()),
        bytes_done: totals.bytes,
        files_done: totals.files,
        bytes_total: totals.bytes,
        files_total: totals.files,
        bytes_added: totals.bytes_added,
        elapsed_seconds: Some(elapsed.as_secs()),
        updated: None,
        summary: Some(summary),
    }
}

/// The completion Event's words: bytes added, files, how long.
pub fn completion_message(totals: Totals, elapsed: Duration) -> String {
    let added = totals
        .bytes_added
        .map(human_bytes)
        .unwrap_or_else(|| "an unreported amount".into());
    let files = totals
        .files
        .map(|f| format!("{f} files"))
        .unwrap_or_else(|| "files uncounted".into());
    let mover = totals
        .duration
        .map(|d| format!(" (the mover ran {})", human_duration(d)))
        .unwrap_or_default();
    format!(
        "{added} added to the repository, {files}, in {}{mover}",
        human_duration(elapsed)
    )
}

/// The completion Event's words from the totals kept in `status.progress`.
pub fn completed_message(progress: &MoverProgress, elapsed: Duration) -> String {
    let totals = Totals {
        bytes_added: progress.bytes_added,
        files: progress.files_done,
        bytes: progress.bytes_done,
        duration: None,
    };
    completion_message(totals, elapsed)
}

/// Whether a new report is due: never more often than `every`.
pub fn due(
    updated: Option<k8s_openapi::jiff::Timestamp>,
    now: k8s_openapi::jiff::Timestamp,
    every: Duration,
) -> bool {
    updated.is_none_or(|u| {
        now.duration_since(u)
            .try_into()
            .is_ok_and(|since: Duration| since >= every)
            // A clock that went back: report again rather than never.
            || u > now
    })
}

#[cfg(test)]
mod tests;
