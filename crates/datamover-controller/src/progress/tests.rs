use super::*;

const RUNNING: &str = "\
Starting container
VolSync restic container version: v0.12.0
=== Check for dir initialized ===
dir is initialized
=== Starting backup ===
/data ~
no parent snapshot found, will read all files
[0:00] 0 files 0 B, 0 errors
[0:10] 45.50%  3 files 1.234 GiB, total 40 files 2.712 GiB, 0 errors ETA 0:12
/data/db/table.bin
/data/db/index.bin
";

#[test]
fn a_running_backup_reports_its_step_and_restics_counts() {
    let report = report(RUNNING);
    assert_eq!(report.phase, Some(MoverPhase::BackingUp));
    let counts = report.counts.unwrap();
    assert_eq!(counts.files_done, 3);
    assert_eq!(counts.bytes_done, 1_324_997_410);
    assert_eq!(counts.files_total, Some(40));
    assert_eq!(counts.bytes_total, Some(2_911_987_826));
    let progress = running(report, None, Duration::from_secs(83));
    assert_eq!(
        progress.summary.as_deref(),
        Some("BackingUp 46% 1.2 GiB of 2.7 GiB, 1m23s")
    );
    assert_eq!(progress.elapsed_seconds, Some(83));
}

#[test]
fn the_last_marker_decides_the_step() {
    let log = format!("{RUNNING}\n=== Starting forget ===\n");
    assert_eq!(report(&log).phase, Some(MoverPhase::Forgetting));
    assert_eq!(
        report("=== Starting prune ===").phase,
        Some(MoverPhase::Pruning)
    );
    assert_eq!(
        report("=== Starting restore ===").phase,
        Some(MoverPhase::Restoring)
    );
    assert_eq!(
        report("Restic completed in 4s\n=== Done ===").phase,
        Some(MoverPhase::Done)
    );
    // A tail cut after the marker still shows the backup going on.
    assert_eq!(
        report("[1:00:00] 1 files 1 B, 0 errors").phase,
        Some(MoverPhase::BackingUp)
    );
}

#[test]
fn before_the_mover_says_anything_the_step_is_preparing_and_earlier_counts_stay() {
    let progress = running(Report::default(), None, Duration::from_secs(5));
    assert_eq!(
        progress.phase.and_then(|p| p.known()),
        Some(MoverPhase::Preparing)
    );
    assert_eq!(progress.summary.as_deref(), Some("Preparing, 5s"));
    let earlier = running(report(RUNNING), None, Duration::from_secs(10));
    let later = running(Report::default(), Some(&earlier), Duration::from_secs(20));
    assert_eq!(later.bytes_done, earlier.bytes_done);
    assert_eq!(later.phase, earlier.phase);
    assert_eq!(later.elapsed_seconds, Some(20));
}

#[test]
fn status_lines_without_totals_or_percent() {
    assert_eq!(
        status_line("[0:00] 0 files 0 B, 0 errors"),
        Some(Counts::default())
    );
    assert_eq!(
        status_line("[0:01] 2 files 4.768 MiB, total 2 files 4.768 MiB, 0 errors"),
        Some(Counts {
            files_done: 2,
            bytes_done: 4_999_610,
            files_total: Some(2),
            bytes_total: Some(4_999_610)
        })
    );
    // restic ≥ 0.16's restore line.
    assert_eq!(
        status_line("[0:02] 50.00%  1 files/dirs 1.000 KiB, total 2 files/dirs 2.000 KiB"),
        Some(Counts {
            files_done: 1,
            bytes_done: 1024,
            files_total: Some(2),
            bytes_total: Some(2048)
        })
    );
    // A file name that looks almost like a status line is not one.
    assert_eq!(status_line("[0:02] my files 1 B, 0 errors"), None);
    assert_eq!(status_line("[0:02] 1 files 1 B"), None);
    assert_eq!(status_line("[0:02] 1 files 1 B, lots of errors"), None);
}

#[test]
fn totals_from_what_volsync_keeps() {
    let logs = "no parent snapshot found, will read all files\nAdded to the repository: 4.769 MiB (4.769 MiB stored)\nprocessed 2 files, 4.768 MiB in 0:04\nsnapshot c45ab8e7 saved\nRestic completed in 6s";
    let totals = totals(logs);
    assert_eq!(totals.bytes_added, Some(5_000_658));
    assert_eq!(totals.files, Some(2));
    assert_eq!(totals.duration, Some(Duration::from_secs(6)));
    assert_eq!(
        completion_message(totals, Duration::from_secs(9)),
        "4.8 MiB added to the repository, 2 files, in 9s (the mover ran 6s)"
    );
    assert_eq!(
        finished(totals, Duration::from_secs(9)).summary.as_deref(),
        Some("Done 4.8 MiB added, 2 files, 9s")
    );
    // Without "Restic completed", restic backup's own time.
    assert_eq!(
        super::totals("processed 1 files, 0 B in 1:02:03").duration,
        Some(Duration::from_secs(3723))
    );
    assert_eq!(
        completion_message(Totals::default(), Duration::from_secs(61)),
        "an unreported amount added to the repository, files uncounted, in 1m1s"
    );
}

#[test]
fn sizes_and_durations() {
    assert_eq!(size("0 B"), Some(0));
    assert_eq!(size("1.500 KiB"), Some(1536));
    assert_eq!(size("1 TiB"), Some(1 << 40));
    assert_eq!(size("-1 B"), None);
    assert_eq!(size("1 PB"), None);
    assert_eq!(size("NaN MiB"), None);
    assert_eq!(size("inf GiB"), None);
    assert_eq!(size("1e300 TiB"), None);
    assert_eq!(restic_duration("0:04"), Some(Duration::from_secs(4)));
    assert_eq!(restic_duration("1:00:00"), Some(Duration::from_secs(3600)));
    assert_eq!(restic_duration("0:61"), None);
    assert_eq!(restic_duration("x:00"), None);
    assert_eq!(restic_duration("99999999999999999999:00"), None);
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_duration(Duration::from_secs(3723)), "1h2m3s");
}

#[test]
fn reports_are_due_at_most_every_interval() {
    let t = |s: i64| k8s_openapi::jiff::Timestamp::from_second(s).unwrap();
    let every = Duration::from_secs(10);
    assert!(due(None, t(100), every));
    assert!(!due(Some(t(95)), t(100), every));
    assert!(due(Some(t(90)), t(100), every));
    assert!(due(Some(t(200)), t(100), every), "a clock that went back");
}

/// Whatever the mover prints (a log is anyone's bytes: file names, a cut line, garbage),
/// reading it never panics and never invents a step from text that is not a marker.
#[test]
fn any_log_reads_without_panicking() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces = [
        "[",
        "]",
        "0:",
        "10",
        "%",
        " ",
        "  ",
        "files",
        " B",
        " MiB",
        ", ",
        "total ",
        "errors",
        "ETA",
        "===",
        "Starting backup",
        "\n",
        "-",
        "1e309",
        "é",
        "\u{0}",
        "Added to the repository:",
        "processed ",
        " in ",
        "Restic completed in ",
        "s",
        "(",
    ];
    for _ in 0..5_000 {
        let line: String = (0..(next() % 12))
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        let r = report(&line);
        let _ = running(r, None, Duration::from_secs(next() % 100_000));
        let t = totals(&line);
        let _ = completion_message(t, Duration::ZERO);
    }
    // Every prefix of a real log (a tail or a limit can cut anywhere).
    let full = format!(
        "{RUNNING}Added to the repository: 4.769 MiB (1 B stored)\nprocessed 2 files, 4.768 MiB in 0:04\n"
    );
    for end in (0..=full.len()).filter(|e| full.is_char_boundary(*e)) {
        let _ = report(&full[..end]);
        let _ = totals(&full[..end]);
        let _ = report(&full[end..]);
    }
    assert_eq!(report("=== Starting rm -rf ===").phase, None);
}

#[test]
fn the_saved_snapshots_id_is_read_from_the_log() {
    let log = "processed 1204 files, 9.812 GiB in 3:07\nsnapshot 4f2a9c1b saved\n";
    assert_eq!(saved_snapshot(log).as_deref(), Some("4f2a9c1b"));
    assert_eq!(saved_snapshot("snapshot  saved\nsnapshot xyz saved"), None);
    assert_eq!(saved_snapshot(""), None);
}
