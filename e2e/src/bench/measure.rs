//! What the replication benchmark measures of one phase, and its report: CPU seconds and peak
//! RSS from `/proc`, RPCs from the fake driver, API requests from the audit log.

use std::collections::BTreeMap;

use lifeline_csi_client::fake::{FakeDriver, Received};
use serde_json::{Value, json};

use crate::audit::Access;

/// CPU seconds and peak RSS (MiB) of a process, from /proc (zeros once it is gone).
pub fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based); after the ")" they are 12 and 13 (1-based).
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm_kib / 1024.0)
}

/// The API requests in `log` of any of `users`, by "verb resource" (the audit log's view:
/// reads included, a watch counted once).
pub fn requests(log: &[Access], users: &[String]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for a in log.iter().filter(|a| users.contains(&a.user)) {
        *counts
            .entry(format!("{} {}", a.verb, a.resource))
            .or_default() += 1;
    }
    counts
}

/// The sum of the counts whose verb is one of `verbs`.
pub fn of_verbs(requests: &BTreeMap<String, u64>, verbs: &[&str]) -> u64 {
    requests
        .iter()
        .filter(|(k, _)| verbs.iter().any(|v| k.split(' ').next() == Some(*v)))
        .map(|(_, v)| v)
        .sum()
}

pub const READS: &[&str] = &["get", "list", "watch"];
pub const WRITES: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// CPU seconds so far of each measured process.
pub fn cpu_of(processes: &[(&'static str, u32)]) -> BTreeMap<&'static str, f64> {
    processes
        .iter()
        .map(|(name, pid)| (*name, usage(*pid).0))
        .collect()
}

pub fn cpu_diff(
    after: &BTreeMap<&'static str, f64>,
    before: &BTreeMap<&'static str, f64>,
) -> BTreeMap<&'static str, f64> {
    after
        .iter()
        .map(|(k, v)| (*k, v - before.get(k).copied().unwrap_or(0.0)))
        .collect()
}

/// Peak RSS (MiB) so far of each of `processes`.
pub fn rss_of(processes: &[(&'static str, u32)]) -> BTreeMap<&'static str, f64> {
    processes
        .iter()
        .map(|(name, pid)| (*name, usage(*pid).1))
        .collect()
}

/// The RPCs the driver received, by method.
pub fn calls(driver: &FakeDriver) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    for r in driver.received() {
        let name = match r {
            Received::Enable(_) => "Enable",
            Received::Disable(_) => "Disable",
            Received::Promote(_) => "Promote",
            Received::Demote(_) => "Demote",
            Received::Resync(_) => "Resync",
            Received::Info(_) => "GetInfo",
            Received::DestInfo(_) => "GetDestInfo",
            other => other.method().as_str(),
        };
        *counts.entry(name).or_default() += 1;
    }
    counts
}

/// One phase's measurements.
pub struct Phase {
    pub name: &'static str,
    pub seconds: f64,
    /// CPU seconds of the controller's processes and of each control plane process.
    pub cpu: BTreeMap<&'static str, f64>,
    /// Peak RSS (MiB) of the controller's processes, so far.
    pub rss: BTreeMap<&'static str, f64>,
    pub calls: BTreeMap<&'static str, u64>,
    /// The controller's API requests by "verb resource".
    pub requests: BTreeMap<String, u64>,
}

fn per(count: u64, n: usize) -> String {
    format!("{:.2}", count as f64 / n.max(1) as f64)
}

fn listed<K: std::fmt::Display, V>(map: &BTreeMap<K, V>, show: impl Fn(&V) -> String) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {}", show(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints each phase and returns the JSON report of the run.
pub fn report(controller: &str, release: &str, phases: &[Phase], n: usize) -> Value {
    println!("\n== {release}, {n} VolumeReplications");
    let mut json = Vec::new();
    for p in phases {
        let rate = if p.seconds > 0.0 {
            n as f64 / p.seconds
        } else {
            0.0
        };
        println!(
            "\n{}: {:.2} s, {:.1} VR/s\n  peak RSS MiB: {}\n  CPU seconds: {}",
            p.name,
            p.seconds,
            rate,
            listed(&p.rss, |v| format!("{v:.1}")),
            listed(&p.cpu, |v| format!("{v:.2}"))
        );
        println!("  RPCs per VR: {}", listed(&p.calls, |v| per(*v, n)));
        println!(
            "  API requests per VR: {}",
            listed(&p.requests, |v| per(*v, n))
        );
        let (reads, writes) = (of_verbs(&p.requests, READS), of_verbs(&p.requests, WRITES));
        let minutes = (p.seconds / 60.0).max(f64::MIN_POSITIVE);
        let rpcs_per_minute = p.calls.values().sum::<u64>() as f64 / minutes;
        let writes_per_minute = writes as f64 / minutes;
        if p.name == "idle" {
            println!(
                "  {rpcs_per_minute:.0} RPCs per minute, {writes_per_minute:.0} API writes per minute for {n} healthy primaries"
            );
        }
        json.push(json!({"phase": p.name, "seconds": p.seconds, "vr_per_second": rate, "cpu_seconds": p.cpu,
                         "peak_rss_mib": p.rss, "rpcs": p.calls, "requests": p.requests,
                         "reads": reads, "writes": writes,
                         "rpcs_per_minute": rpcs_per_minute, "writes_per_minute": writes_per_minute}));
    }
    json!({"controller": controller, "release": release, "vrs": n,
           "backend": "kube-apiserver v1.36 (audit log)", "phases": json})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(user: &str, verb: &str, resource: &str) -> Access {
        Access {
            user: user.into(),
            agent: String::new(),
            verb: verb.into(),
            group: String::new(),
            resource: resource.into(),
            namespace: None,
            name: None,
            code: 200,
        }
    }

    #[test]
    fn requests_are_counted_for_the_controllers_users_only() {
        let log = [
            access("manager", "patch", "volumereplications/status"),
            access("sidecar", "update", "csiaddonsnodes"),
            access("admin", "create", "volumereplications"),
            access("manager", "patch", "volumereplications/status"),
        ];
        let counted = requests(&log, &["manager".into(), "sidecar".into()]);
        assert_eq!(counted["patch volumereplications/status"], 2);
        assert_eq!(counted["update csiaddonsnodes"], 1);
        assert!(!counted.contains_key("create volumereplications"));
        assert_eq!(of_verbs(&counted, WRITES), 3);
        assert_eq!(of_verbs(&counted, READS), 0);
    }

    #[test]
    fn a_gone_process_measures_zero() {
        assert_eq!(usage(u32::MAX), (0.0, 0.0));
        let (cpu, rss) = usage(std::process::id());
        assert!(cpu >= 0.0 && rss > 0.0, "{cpu} {rss}");
    }
}
