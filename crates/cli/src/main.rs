//! `kubectl-lifeline` (a kubectl plugin: `kubectl lifeline …`). Thin: parse, run, exit code:
//! 0 the end state was verified (`status`: every volume protected), 1 it was not (or a check
//! refused to go on), 2 the command could not run (bad flags, no sites, a timeout).

use std::process::ExitCode;

use clap::Parser;
use k8s_openapi::jiff::Timestamp;
use lifeline_cli::args::{Cli, Command, Output};
use lifeline_cli::progress::Steps;
use lifeline_cli::runbook::Promotion;
use lifeline_cli::{failback, failover, migrate, protect, sites, status};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
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
    let sites = sites::resolve(&cli.global.sites, env.as_deref())?;
    let namespace = if cli.global.all_namespaces {
        None
    } else {
        Some(
            cli.global
                .namespace
                .clone()
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
            match cli.global.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Output::Table => print!("{}", status::table(&report, Timestamp::now())),
            }
            Ok(if report.all_protected() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Protect { from, to, dry_run } => {
            let namespace = namespace.ok_or_else(|| {
                anyhow::anyhow!("protect works on one namespace: give -n NAMESPACE, not -A")
            })?;
            let work = async {
                let steps = Steps::default();
                let step = |text: String| steps.say(text);
                let source = sites::connect(sites::named(&sites, &from)?).await?;
                let plans = protect::plan(&source, &from, &namespace).await?;
                step(format!(
                    "site {from}: {} VolumeReplication(s) in {namespace}",
                    plans.len()
                ));
                if dry_run {
                    let objects: Vec<_> = plans.iter().flat_map(|p| p.objects()).collect();
                    match cli.global.output {
                        Output::Json => println!("{}", serde_json::to_string_pretty(&objects)?),
                        Output::Table => {
                            for object in &objects {
                                println!("---\n{}", serde_saphyr::to_string(object)?.trim_end());
                            }
                        }
                    }
                    step(format!("dry run: nothing was created at site {to}"));
                    return Ok::<_, anyhow::Error>(ExitCode::SUCCESS);
                }
                let target = sites::connect(sites::named(&sites, &to)?).await?;
                for applied in protect::apply(&target, &to, &plans).await? {
                    step(format!(
                        "site {to}: {} {} {}",
                        applied.kind,
                        applied.name,
                        if applied.created {
                            "created"
                        } else {
                            "exists, kept"
                        }
                    ));
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
            within(cli.global.timeout, async {
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
            within(cli.global.timeout, async {
                let confirm = |promotions: &[Promotion]| {
                    match output {
                        Output::Json => println!(
                            "{}",
                            serde_json::to_string_pretty(promotions).expect("serializes")
                        ),
                        Output::Table => print!("{}", failover::table(promotions)),
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
        Command::Failback { to, from } => {
            let namespace = one_namespace(namespace, "failback")?;
            let steps = &Steps::default();
            within(cli.global.timeout, async {
                failback::run(&sites, &namespace, &to, &from, steps).await?;
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
    work: impl std::future::Future<Output = Result<(), lifeline_cli::Error>>,
) -> anyhow::Result<ExitCode> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result.map(|()| ExitCode::SUCCESS).map_err(Into::into),
        Err(_) => anyhow::bail!(
            "not done within --timeout {timeout:?}; the last step above says what it was waiting for. Run the same command again to go on from there"
        ),
    }
}

/// A failover loses the writes after each volume's last sync: `--yes`, or "yes" typed at a
/// terminal.
fn confirmed(yes: bool, site: &str, volumes: usize) -> Result<(), lifeline_cli::Error> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    let refused = || {
        lifeline_cli::Error::Refused(format!(
            "not confirmed: nothing was promoted. Rerun with --yes to promote {volumes} volume(s) at site {site}"
        ))
    };
    if !std::io::stdin().is_terminal() {
        return Err(refused());
    }
    eprint!(
        "Promote {volumes} volume(s) at site {site}? Writes after each one's last sync are lost. Type yes to go on: "
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(refused())
    }
}
