//! docs/configuration.md documents every flag of `patchfleet run`, and nothing else: each
//! `--flag` and `PATCHFLEET_*` variable that `patchfleet run --help` shows appears in the
//! doc's flag table with the same default, and each flag and variable the doc lists
//! exists. docs/dashboard.md's flag table, the same for `patchfleet dashboard`. Runs the
//! built binary; no cluster needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use patchfleet_tests::stack::patchfleet_binary;

/// One flag as `--help` shows it.
#[derive(Debug, Default)]
struct HelpFlag {
    env: Option<String>,
    default: Option<String>,
}

/// Flags of `patchfleet SUBCOMMAND --help` (without --help and --version), by long name.
fn help_flags(subcommand: &str) -> Result<BTreeMap<String, HelpFlag>> {
    let binary = patchfleet_binary()?;
    let mut command = Command::new(&binary);
    command.args([subcommand, "--help"]);
    // A variable set in this environment would show as the value instead of the default.
    for (name, _) in std::env::vars() {
        if name.starts_with("PATCHFLEET_") {
            command.env_remove(name);
        }
    }
    let out = command
        .output()
        .with_context(|| format!("running {} {subcommand} --help", binary.display()))?;
    if !out.status.success() {
        bail!(
            "patchfleet {subcommand} --help failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let help = String::from_utf8(out.stdout)?;
    // Each flag's entry: its lines of help, joined.
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in help.lines() {
        let trimmed = line.trim_start();
        // `  -f, --flag <VALUE>` or `      --flag <VALUE>` starts an entry.
        let long = trimmed
            .strip_prefix("--")
            .or_else(|| {
                trimmed
                    .split_once(", --")
                    .filter(|(short, _)| short.starts_with('-') && short.len() == 2)
                    .map(|(_, rest)| rest)
            })
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect::<String>()
            });
        if let Some(long) = long.filter(|l| !l.is_empty()) {
            current = Some(long.clone());
            entries.entry(long).or_default();
        }
        if let Some(entry) = current.as_ref().and_then(|c| entries.get_mut(c)) {
            entry.push(' ');
            entry.push_str(line.trim());
        }
    }
    // clap appends `[env: NAME=]` then `[default: VALUE]` after the description; a
    // `[default: ...]` written in the description itself (a computed default) comes
    // before `[env: ` and is not a clap default.
    let mut flags: BTreeMap<String, HelpFlag> = BTreeMap::new();
    for (long, text) in entries {
        let mut flag = HelpFlag::default();
        let specs = match text.find("[env: ") {
            Some(at) => {
                let env = bracketed(&text[at..], "[env: ").unwrap_or_default();
                flag.env = Some(env.split('=').next().unwrap_or_default().to_owned());
                &text[at..]
            }
            None => text.as_str(),
        };
        flag.default = bracketed(specs, "[default: ").map(str::to_owned);
        flags.insert(long, flag);
    }
    flags.remove("help");
    flags.remove("version");
    if flags.len() < 5 {
        bail!("parsed only {flags:?} from patchfleet {subcommand} --help:\n{help}");
    }
    Ok(flags)
}

/// The text between `open` and the next `]` on the line.
fn bracketed<'a>(line: &'a str, open: &str) -> Option<&'a str> {
    let start = line.find(open)? + open.len();
    let len = line[start..].find(']')?;
    Some(&line[start..start + len])
}

/// Rows of the doc's flag table (`| `--flag` | ...`), by flag, and every PATCHFLEET_*
/// variable the doc names (in the whole doc, or only in the table's rows).
fn documented(
    doc_path: &str,
    vars_in_table_only: bool,
) -> Result<(BTreeMap<String, String>, BTreeSet<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(doc_path);
    let doc =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = BTreeMap::new();
    for line in doc.lines() {
        let Some(rest) = line.strip_prefix("| `--") else {
            continue;
        };
        let flag: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if rows.insert(flag.clone(), line.to_owned()).is_some() {
            bail!("{doc_path} lists --{flag} twice");
        }
    }
    let table = rows.values().cloned().collect::<Vec<_>>().join("\n");
    let scanned = if vars_in_table_only { &table } else { &doc };
    let mut vars = BTreeSet::new();
    for (at, _) in scanned.match_indices("PATCHFLEET_") {
        let name: String = scanned[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        // `PATCHFLEET_*` alone names the prefix, not a variable.
        if name != "PATCHFLEET_" {
            vars.insert(name);
        }
    }
    Ok((rows, vars))
}

#[test]
fn every_run_flag_is_documented_and_every_documented_flag_exists() -> Result<()> {
    agree("run", "docs/configuration.md", false)
}

#[test]
fn every_dashboard_flag_is_documented_and_every_documented_flag_exists() -> Result<()> {
    agree("dashboard", "docs/dashboard.md", true)
}

/// `patchfleet SUBCOMMAND --help` and the doc's flag table name the same flags, variables
/// and defaults.
fn agree(subcommand: &str, doc_path: &str, vars_in_table_only: bool) -> Result<()> {
    let flags = help_flags(subcommand)?;
    let (rows, documented_vars) = documented(doc_path, vars_in_table_only)?;
    let mut problems = Vec::new();

    for (flag, help) in &flags {
        let Some(row) = rows.get(flag) else {
            problems.push(format!("--{flag} is not in the flag table"));
            continue;
        };
        match &help.env {
            Some(env) if !row.contains(&format!("`{env}`")) => {
                problems.push(format!("the row of --{flag} does not name `{env}`"));
            }
            None => problems.push(format!(
                "--{flag} reads no PATCHFLEET_* variable (every flag should, for the chart)"
            )),
            _ => {}
        }
        if let Some(default) = &help.default
            && !row.contains(&format!("`{default}`"))
        {
            problems.push(format!(
                "the row of --{flag} does not give its default `{default}`"
            ));
        }
    }
    for flag in rows.keys() {
        if !flags.contains_key(flag) {
            problems.push(format!(
                "{doc_path} documents --{flag}, which patchfleet {subcommand} does not have"
            ));
        }
    }
    let help_vars: BTreeSet<&String> = flags.values().filter_map(|f| f.env.as_ref()).collect();
    for var in &documented_vars {
        if !help_vars.contains(var) {
            problems.push(format!(
                "{doc_path} names {var}, which patchfleet {subcommand} does not read"
            ));
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "{doc_path} and `patchfleet {subcommand} --help` disagree:\n  {}",
            problems.join("\n  ")
        )
    }
}
