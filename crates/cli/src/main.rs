//! `kubectl-lifeline` (a kubectl plugin: `kubectl lifeline …`). Thin: parse, run, exit code:
//! 0 the end state was verified (`status`: every volume protected), 1 it was not (or a check
//! refused to go on), 2 the command could not run (bad flags, no sites, a timeout).

use std::process::ExitCode;

use clap::Parser;
use k8s_openapi::jiff::Timestamp;
use lifeline_cli::args::{Cli, Command, Output};
use lifeline_cli::{protect, sites, status};

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
            .map_err(|_| anyhow::anyhow!("no answer within --timeout {:?}", cli.global.timeout))?;
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
                let started = std::time::Instant::now();
                let step =
                    |text: String| eprintln!("[{:>5.1}s] {text}", started.elapsed().as_secs_f64());
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
    }
}
