//! Files produced by a task and committed (CRDs, chart renders): written in place, or compared
//! with what is committed so CI catches a forgotten regeneration.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, bail};

/// A directory of generated files: `ours` tells which existing files the task owns (and so
/// may delete or must account for).
pub struct Generated<'a> {
    pub dir: &'a Path,
    /// What the files are, for messages ("CRDs", "chart renders").
    pub what: &'a str,
    /// The command that regenerates them.
    pub command: &'a str,
    pub ours: &'a dyn Fn(&str, &str) -> bool,
}

impl Generated<'_> {
    /// Writes `wanted` and removes our files that are no longer generated.
    pub fn write(&self, wanted: &BTreeMap<String, String>) -> anyhow::Result<()> {
        fs::create_dir_all(self.dir)?;
        for (name, content) in wanted {
            fs::write(self.dir.join(name), content).with_context(|| format!("writing {name}"))?;
        }
        for stale in self.existing()? {
            if !wanted.contains_key(&stale) {
                fs::remove_file(self.dir.join(&stale))?;
            }
        }
        println!(
            "wrote {} {} to {}",
            wanted.len(),
            self.what,
            self.dir.display()
        );
        Ok(())
    }

    /// Fails with a diff when the committed files differ from `wanted`.
    pub fn check(&self, wanted: &BTreeMap<String, String>) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        for (name, content) in wanted {
            match fs::read_to_string(self.dir.join(name)) {
                Ok(committed) if &committed == content => {}
                Ok(committed) => {
                    problems.push(format!("{name} differs:\n{}", diff(&committed, content)))
                }
                Err(_) => problems.push(format!("{name} is missing")),
            }
        }
        for extra in self.existing()? {
            if !wanted.contains_key(&extra) {
                problems.push(format!("{extra} is not generated any more"));
            }
        }
        if problems.is_empty() {
            println!("{} in {} are up to date", self.what, self.dir.display());
            return Ok(());
        }
        bail!(
            "{} in {} are out of date; run `{}` and commit:\n{}",
            self.what,
            self.dir.display(),
            self.command,
            problems.join("\n")
        )
    }

    fn existing(&self) -> anyhow::Result<Vec<String>> {
        let Ok(entries) = fs::read_dir(self.dir) else {
            return Ok(Vec::new());
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let content = fs::read_to_string(entry.path()).unwrap_or_default();
            if (self.ours)(&name, &content) {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// A small line diff: lines only in the committed file (-) and only in the generated one (+).
fn diff(committed: &str, generated: &str) -> String {
    let old: Vec<&str> = committed.lines().collect();
    let new: Vec<&str> = generated.lines().collect();
    let mut out = String::new();
    for line in old.iter().filter(|l| !new.contains(l)) {
        out.push_str(&format!("  - {line}\n"));
    }
    for line in new.iter().filter(|l| !old.contains(l)) {
        out.push_str(&format!("  + {line}\n"));
    }
    if out.is_empty() {
        out.push_str("  (same lines in a different order)\n");
    }
    out
}
