//! The chart's Grafana dashboard and alerts query only metrics the controllers export — read
//! from the live `/metrics` of a replicating pair's controllers and a data mover — and every
//! query parses (promtool: `LIFELINE_PROMTOOL`, else PATH; `cargo xtask ci` provides it; missing, the
//! test fails).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use lifeline_e2e::metrics::{sample, scrape};
use lifeline_e2e::sites::TwoSites;
use lifeline_e2e::wait;

fn chart_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/lifeline/files")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every PromQL query in the dashboard and in the alerts, with where it is from.
fn queries() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dashboard: serde_json::Value =
        serde_json::from_str(&chart_file("grafana-dashboard.json")).unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            out.push((format!("panel {:?}", panel["title"]), expr.to_owned()));
        }
    }
    let rules: serde_json::Value =
        serde_saphyr::from_str(&chart_file("prometheus-rules.yaml")).unwrap();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            out.push((
                format!("alert {}", rule["alert"]),
                rule["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

/// The `lifeline_*` metric names a query reads (histogram series named by their family).
fn metric_names(query: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = query.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c == '"' {
            // A label value: skip to its closing quote.
            for (_, c) in chars.by_ref() {
                if c == '"' {
                    break;
                }
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut end = start + c.len_utf8();
            while let Some(&(i, c)) = chars.peek() {
                if !(c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            let word = &query[start..end];
            if word.starts_with("lifeline_") {
                let family = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| word.strip_suffix(s))
                    .unwrap_or(word);
                names.insert(family.to_owned());
            }
        }
    }
    names
}

#[test]
fn metric_names_are_found_outside_label_values() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (le) (rate(lifeline_csi_rpc_duration_seconds_bucket{job="lifeline_x"}[5m])))"#
        ),
        BTreeSet::from(["lifeline_csi_rpc_duration_seconds".to_owned()])
    );
}

#[tokio::test]
async fn dashboard_and_alerts_query_only_exported_metrics_and_parse() {
    let mut sites = TwoSites::start().await.unwrap();
    sites.replicated("db").await.unwrap();
    sites.a.start_datamover().await.unwrap();
    // Both sites have reported sync facts: every per-volume series exists.
    let (a, b) = wait::until(
        Duration::from_secs(60),
        "sync facts on both sites",
        || async {
            let a = sites.a.controller_metrics().await.ok()?;
            let b = sites.b.controller_metrics().await.ok()?;
            let since = "lifeline_volume_replication_seconds_since_last_sync";
            sample(&a, since, &[("role", "primary")])?;
            sample(&b, since, &[("role", "secondary")])?;
            Some((a, b))
        },
    )
    .await
    .unwrap();
    let (_, admin) = sites.a.datamover.as_ref().unwrap();
    let datamover = scrape(admin).await.unwrap();
    let exported: BTreeSet<String> = [a, b, datamover]
        .iter()
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .filter_map(|l| l.split(' ').next())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();

    let queries = queries();
    assert!(queries.len() >= 10, "{queries:?}");
    for (from, query) in &queries {
        let names = metric_names(query);
        assert!(
            !names.is_empty(),
            "{from} reads no Lifeline metric: {query}"
        );
        for name in names {
            assert!(
                exported.contains(&name),
                "{from} reads {name}, which no controller exports ({exported:?})"
            );
        }
    }

    // Every query parses: promtool checks them as recording rules.
    let rules = serde_json::json!({"groups": [{"name": "queries", "rules": queries
        .iter()
        .enumerate()
        .map(|(i, (_, q))| serde_json::json!({"record": format!("lifeline:query:{i}"), "expr": q}))
        .collect::<Vec<_>>()}]});
    let file = sites.a.cluster.dir().join("queries.rules.json");
    std::fs::write(&file, rules.to_string()).unwrap();
    let promtool = std::env::var("LIFELINE_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let output = std::process::Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{promtool} does not run ({e}): `cargo xtask ci` provides it (LIFELINE_PROMTOOL)"
            )
        });
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
