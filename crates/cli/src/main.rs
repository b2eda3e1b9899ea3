//! `kubectl-lifeline` (a kubectl plugin: `kubectl lifeline …`). Thin: parse, run, exit code:
//! 0 the end state was verified (`status`: every volume protected), 1 it was not, 2 the
//! command could not run (bad flags, no sites, a timeout).

use std::process::ExitCode;

use clap::Parser;
use k8s_openapi::jiff::Timestamp;
use lifeline_cli::args::{Cli, Command, Output};
use lifeline_cli::{sites, status};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
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
    }
}
