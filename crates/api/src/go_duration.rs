//! Durations written the way Go's `time.Duration.String` writes them ("42s", "1m30s",
//! "1h0m0s", "1.5s", "250ms"): the format of `lastSyncDuration` in the Go operators' status,
//! which tools reading it parse.

use std::time::Duration;

/// Formats a duration the way Go's `time.Duration.String` does ("42s", "1m30s", "1h0m0s",
/// "1.5s", "250ms"), which is what tools reading `lastSyncDuration` parse.
pub fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    if d < Duration::from_secs(1) {
        let nanos = d.as_nanos();
        return if nanos < 1_000 {
            format!("{nanos}ns")
        } else if nanos < 1_000_000 {
            format!("{}µs", trim_fraction(nanos, 1_000))
        } else {
            format!("{}ms", trim_fraction(nanos, 1_000_000))
        };
    }
    let total = d.as_secs();
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    let seconds = trim_fraction(
        u128::from(seconds) * 1_000_000_000 + u128::from(d.subsec_nanos()),
        1_000_000_000,
    );
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// Parses a Go duration string as [`go_duration`] writes it (and Go's `time.ParseDuration`
/// reads: "1.5s", "45.00133ms", "2m3s", "1h0m0s"); `None` for anything else, such as a
/// negative or unitless value, so a malformed `lastSyncDuration` is reported, not guessed.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "µs" | "us" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// `value / unit` with its fraction, trailing zeros trimmed ("1.5", "2").
fn trim_fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(42), "42s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(3), "3µs"),
            (Duration::from_secs(86_400 + 61), "24h1m1s"),
        ];
        for (d, text) in cases {
            assert_eq!(go_duration(d), text, "{d:?}");
        }
    }

    #[test]
    fn parses_what_it_writes_and_refuses_the_rest() {
        for d in [
            Duration::ZERO,
            Duration::from_millis(250),
            Duration::from_micros(45_001),
            Duration::from_secs(123),
            Duration::from_secs(3600),
            Duration::from_millis(1500),
        ] {
            let back = parse_go_duration(&go_duration(d)).unwrap();
            assert!(back.abs_diff(d) < Duration::from_nanos(2), "{d:?}");
        }
        for bad in ["", "5", "-1s", "1x", "s", "1.2.3s", "1s2"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }
}
