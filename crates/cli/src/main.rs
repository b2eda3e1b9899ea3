//! `kubectl-lifeline` (a kubectl plugin: `kubectl lifeline …`). Thin: parse, run, exit code:
//! 0 the end state was verified (`status`: every volume protected), 1 it was not (or a check
//! refused to go on), 2 the command could not run (bad flags, no sites, a timeout).

use std::process::ExitCode;

use clap::Parser;
use k8s_openapi::jiff::Timestamp;
use lifeline_cli::args::{Cli, Command, Method, Output};
use lifeline_cli::progress::Steps;
use lifeline_cli::runbook::Promotion;
use lifeline_cli::{failback, failover, migrate, protect, sites, status, volsync};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            // A check that refused to go on is "not verified" (1), not "could not run" (2).
            match e.downcast_ref::<lifeline_cli::Error>() {
                Some(lifeline_cli::Error::Refused(_)) => ExitCode::from(1),
                _ => ExitCode::from(2),
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let env = std::env::var("LIFELINE_SITES").ok();
    let from = sites::FromKubeconfig {
        kubeconfig: cli.global.kubeconfig.clone(),
        contexts: cli.global.contexts.clone(),
    };
    let sites = sites::resolve(&cli.global.sites, env.as_deref(), &from)?;
    let namespace = if cli.global.all_namespaces {
        None
    } else {
        Some(
            cli.global
                .namespace
                .clone()
                .or_else(|| sites.first().and_then(sites::context_namespace))
                .unwrap_or_else(|| "default".into()),
        )
    };
    match cli.command {
        Command::Status => {
            let report = tokio::time::timeout(
                cli.global.timeout,
                status::gather(&sites, namespace.as_deref()),
            )
            .await
            .map_err(|_| {
                anyhow::anyhow!("no answer within --timeout {:?}", cli.global.timeout)
            })??;
            let scope = namespace
                .as_deref()
                .map_or("any namespace".to_owned(), |n| format!("namespace {n}"));
            match structured(cli.global.output, &report)? {
                Some(text) => println!("{text}"),
                None => print!(
                    "{}",
                    status::table(
                        &report,
                        Timestamp::now(),
                        &scope,
                        cli.global.output == Output::Wide
                    )
                ),
            }
            Ok(if report.all_protected() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Protect {
            from,
            to,
            dry_run,
            method,
            interval,
            service_type,
        } => {
            let namespace = namespace.ok_or_else(|| {
                anyhow::anyhow!("protect works on one namespace: give -n NAMESPACE, not -A")
            })?;
            let work = async {
                let steps = Steps::default();
                let step = |text: String| steps.say(text);
                // Both sites must exist and differ before anything is read.
                sites::distinct(&from, &to)?;
                sites::named(&sites, &to)?;
                let source = sites::connect(sites::named(&sites, &from)?).await?;
                let plans = match method {
                    Method::Volsync => Vec::new(),
                    _ => protect::plan(&source, &from, &namespace).await?,
                };
                let pairs = match method {
                    Method::Replication => None,
                    _ => Some(
                        volsync::protect::plan(
                            &source,
                            &from,
                            &namespace,
                            method,
                            interval,
                            service_type,
                        )
                        .await?,
                    ),
                };
                let pair_count = pairs.as_ref().map_or(0, |p| p.claims.len());
                for (claim, why) in pairs.iter().flat_map(|p| &p.left) {
                    step(format!(
                        "site {from}: claim {claim} is left unprotected: {why}"
                    ));
                }
                if plans.is_empty() && pair_count == 0 {
                    return Err(lifeline_cli::Error::Refused(format!(
                        "site {from} has nothing to protect in namespace {namespace}: no VolumeReplication, and no claim for a VolSync pair (is -n right? --method volsync --interval 5m protects claims without one)"
                    ))
                    .into());
                }
                step(format!(
                    "site {from}: {} VolumeReplication(s) and {pair_count} claim(s) for VolSync in {namespace}",
                    plans.len()
                ));
                if dry_run {
                    let mut objects: Vec<_> = plans.iter().flat_map(|p| p.objects()).collect();
                    if let Some(pairs) = &pairs {
                        objects.extend(volsync::protect::objects(pairs, Timestamp::now()));
                    }
                    match cli.global.output {
                        Output::Json => println!("{}", serde_json::to_string_pretty(&objects)?),
                        Output::Table | Output::Wide | Output::Yaml => {
                            for object in &objects {
                                println!("---\n{}", serde_saphyr::to_string(object)?.trim_end());
                            }
                        }
                    }
                }
                let target = sites::connect(sites::named(&sites, &to)?).await?;
                let mut applied = protect::apply(&target, &to, &plans, dry_run).await?;
                if let Some(pairs) = &pairs {
                    applied.extend(
                        volsync::protect::apply(
                            (&source, &from),
                            (&target, &to),
                            pairs,
                            dry_run,
                            &steps,
                        )
                        .await?,
                    );
                }
                for applied in applied {
                    step(format!(
                        "site {}: {} {} {}",
                        applied.site,
                        applied.kind,
                        applied.name,
                        match (applied.created, dry_run) {
                            (true, false) => "created",
                            (true, true) => "would be created",
                            (false, _) => "exists, kept",
                        }
                    ));
                }
                if dry_run {
                    step(format!(
                        "dry run: the API servers checked each creation; nothing was created{}",
                        if pair_count > 0 {
                            " (a VolSync source is made once its destination has an address, so a dry run does not try it)"
                        } else {
                            ""
                        }
                    ));
                    return Ok::<_, anyhow::Error>(ExitCode::SUCCESS);
                }
                step(format!(
                    "site {to} is standby for {namespace}; `kubectl lifeline status -n {namespace}` says when each volume is protected"
                ));
                Ok(ExitCode::SUCCESS)
            };
            tokio::time::timeout(cli.global.timeout, work)
                .await
                .map_err(|_| {
                    anyhow::anyhow!("not done within --timeout {:?}", cli.global.timeout)
                })?
        }
        Command::Migrate {
            from,
            to,
            allow_stale,
        } => {
            let namespace = one_namespace(namespace, "migrate")?;
            let options = migrate::Options {
                from,
                to: to.clone(),
                allow_stale,
            };
            let steps = &Steps::default();
            within(cli.global.timeout, steps, async {
                migrate::run(&sites, &namespace, &options, steps).await?;
                steps.say(format!(
                    "done: site {to} holds every volume of {namespace} as primary"
                ));
                Ok(())
            })
            .await
        }
        Command::Failover { to, yes } => {
            let namespace = one_namespace(namespace, "failover")?;
            let output = cli.global.output;
            let steps = &Steps::default();
            within(cli.global.timeout, steps, async {
                let confirm = |promotions: &[Promotion]| {
                    match structured(output, &promotions).expect("serializes") {
                        Some(text) => println!("{text}"),
                        None => print!("{}", failover::table(promotions)),
                    }
                    confirmed(yes, &to, promotions.len())
                };
                failover::run(&sites, &namespace, &to, steps, confirm).await?;
                steps.say(format!(
                    "done: site {to} holds every volume of {namespace} as primary"
                ));
                Ok(())
            })
            .await
        }
        Command::Failback { to, from, yes } => {
            let namespace = one_namespace(namespace, "failback")?;
            let output = cli.global.output;
            let steps = &Steps::default();
            within(cli.global.timeout, steps, async {
                let confirm = |discards: &[failback::Discard]| {
                    match structured(output, &discards).expect("serializes") {
                        Some(text) => println!("{text}"),
                        None => print!("{}", failback::table(&to, discards)),
                    }
                    ask(
                        yes,
                        &format!(
                            "Discard those writes at site {to} and resync its {} volume(s) from site {from}?",
                            discards.len()
                        ),
                        &format!("nothing was demoted. Rerun with --yes to discard them and fail back to site {to}"),
                    )
                };
                failback::run(&sites, &namespace, &to, &from, steps, confirm).await?;
                steps.say(format!(
                    "done: site {to} is primary again for every volume of {namespace}"
                ));
                Ok(())
            })
            .await
        }
    }
}

fn one_namespace(namespace: Option<String>, command: &str) -> anyhow::Result<String> {
    namespace.ok_or_else(|| {
        anyhow::anyhow!("{command} works on one namespace: give -n NAMESPACE, not -A")
    })
}

/// Runs a switch within the timeout.
async fn within(
    timeout: std::time::Duration,
    steps: &Steps,
    work: impl std::future::Future<Output = Result<(), lifeline_cli::Error>>,
) -> anyhow::Result<ExitCode> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result.map(|()| ExitCode::SUCCESS).map_err(Into::into),
        Err(_) => {
            let doing = match steps.waiting() {
                Some(what) => format!("while waiting until {what}"),
                None => "during the step after the last one above".to_owned(),
            };
            anyhow::bail!(
                "not done within --timeout {}s, {doing}. Run the same command again to go on from there",
                timeout.as_secs()
            )
        }
    }
}

/// A failover loses the writes after each volume's last sync: `--yes`, or "yes" typed at a
/// terminal.
fn confirmed(yes: bool, site: &str, volumes: usize) -> Result<(), lifeline_cli::Error> {
    ask(
        yes,
        &format!(
            "Promote {volumes} volume(s) at site {site}? Writes after each one's last sync are lost."
        ),
        &format!(
            "nothing was promoted. Rerun with --yes to promote {volumes} volume(s) at site {site}"
        ),
    )
}

/// Asks `question` on a terminal (or takes `--yes`); anything but "yes" refuses with `refusal`.
fn ask(yes: bool, question: &str, refusal: &str) -> Result<(), lifeline_cli::Error> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    let refused = || lifeline_cli::Error::Refused(format!("not confirmed: {refusal}"));
    if !std::io::stdin().is_terminal() {
        return Err(refused());
    }
    eprint!("{question} Type yes to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(refused())
    }
}

/// `-o json` and `-o yaml` of `value`; `None` for the tables.
fn structured<T: serde::Serialize>(output: Output, value: &T) -> anyhow::Result<Option<String>> {
    Ok(match output {
        Output::Json => Some(serde_json::to_string_pretty(value)?),
        Output::Yaml => Some(serde_saphyr::to_string(value)?.trim_end().to_owned()),
        Output::Table | Output::Wide => None,
    })
}

/// The error and each cause not already in it, on one line (a kubeconfig error's cause chain
/// repeats itself otherwise).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}
