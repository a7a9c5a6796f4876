//! Keeps the IAM policies of `docs/iam.md` equal to the AWS calls the code makes: the
//! system-account policy lists exactly the `ssm:` actions of the SSM operations the
//! controller calls, and the controller's own policy exactly the `sts:` actions it needs.
//! A new call without a policy update (or a policy action no code calls) fails here,
//! naming the actions both ways.
//!
//! How the calls are found, and why none can slip through silently:
//!
//! - The operations that exist come from the aws-sdk-ssm (and aws-sdk-sts) crate this
//!   workspace builds against, located with `cargo metadata`: one module per operation
//!   under `src/operation/`, whose file names the wire operation (`.operation_name("...")`,
//!   which is also the IAM action). No hand-kept list can fall behind the SDK. The crate's
//!   layout is checked, not assumed: every operation module must have its `Client` method
//!   of the same name (`src/client/<op>.rs`) and one operation name, else the test fails.
//! - Code can start an SSM operation only by naming it: the `Client` method
//!   (`client.describe_patch_baselines()`, `Client::describe_patch_baselines(&c)`), the
//!   operation module (`operation::describe_patch_baselines::builders::...Builder::send_with`)
//!   or a waiter (`wait_until_command_executed`, mapped to the operations its module uses).
//!   All of them contain the operation's snake_case name as one identifier token. So every
//!   identifier of every `.rs` file under `controller/*/src` (comments and string literals
//!   left out, so prose and operation labels do not count) that equals an operation name
//!   is a call. Matching tokens, not `.x().send()` chains, keeps calls split over lines,
//!   built in one place and sent in another, paginated or sent through `send_with` in view.
//!   The scan errs on the loud side: a same-named helper would count as a call and make
//!   the test ask for the action, never hide one.
//! - Not covered, by design: requests signed by hand over raw HTTP, and identifiers made
//!   by macros (`paste!`). The code does neither; keep it so.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

type Result<T> = std::result::Result<T, String>;

fn workspace_root() -> PathBuf {
    // controller/ssm -> the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// ---------------------------------------------------------------------------------------
// The SDK's operations.

/// An AWS SDK crate's operations: snake_case name (module and `Client` method) to the
/// wire name (the IAM action without its prefix), and waiter identifiers to the
/// operations they call.
struct SdkOperations {
    by_snake: BTreeMap<String, String>,
    waiters: BTreeMap<String, BTreeSet<String>>,
}

impl SdkOperations {
    /// The operations a code identifier starts, if any.
    fn called_by(&self, ident: &str) -> Vec<String> {
        if let Some(op) = self.by_snake.get(ident) {
            return vec![op.clone()];
        }
        self.waiters
            .get(ident)
            .map(|ops| ops.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Where cargo keeps the source of `package` for this workspace's lockfile.
fn sdk_source(package: &str) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // Only the host's packages: the others (android_system_properties, windows-*) were never
    // downloaded on a machine that built only for itself, and --offline would fail on them.
    let host = host_triple()?;
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8(out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let metadata =
        serde_json::from_str::<Value>(&text).map_err(|e| format!("cargo metadata output: {e}"))?;
    let packages = metadata
        .get("packages")
        .and_then(Value::as_array)
        .ok_or("cargo metadata: no packages")?;
    let manifests: BTreeSet<&str> = packages
        .iter()
        .filter(|p| p.get("name").and_then(Value::as_str) == Some(package))
        .filter_map(|p| p.get("manifest_path").and_then(Value::as_str))
        .collect();
    match manifests.iter().collect::<Vec<_>>().as_slice() {
        [one] => Path::new(one)
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| format!("{package}: manifest path {one} has no parent")),
        other => Err(format!(
            "expected exactly one {package} in the dependency graph, found {other:?}"
        )),
    }
}

/// The triple this test was built for, as `rustc -vV` names it.
fn host_triple() -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("running rustc -vV: {e}"))?;
    let text = String::from_utf8(out.stdout).map_err(|e| format!("rustc -vV: {e}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| format!("rustc -vV names no host: {text}"))
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn file_stems(dir: &Path) -> Result<BTreeSet<String>> {
    let entries = fs::read_dir(dir).map_err(|e| format!("listing {}: {e}", dir.display()))?;
    let mut stems = BTreeSet::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("listing {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            stems.insert(stem.to_owned());
        }
    }
    Ok(stems)
}

/// All `needle"X"` string arguments in `text`, such as `.operation_name("X")`.
fn quoted_after(text: &str, needle: &str) -> BTreeSet<String> {
    text.match_indices(needle)
        .filter_map(|(at, _)| {
            let rest = text.get(at + needle.len()..)?.strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_owned())
        })
        .collect()
}

fn sdk_operations(package: &str) -> Result<SdkOperations> {
    let src = sdk_source(package)?.join("src");
    let modules = file_stems(&src.join("operation"))?;
    let mut by_snake = BTreeMap::new();
    for module in &modules {
        let text = read(&src.join("operation").join(format!("{module}.rs")))?;
        let names = quoted_after(&text, ".operation_name(");
        let [name] = names.iter().collect::<Vec<_>>()[..] else {
            return Err(format!(
                "{package}: operation module {module} names {names:?}, expected one operation: \
                 the SDK's layout changed, update this test"
            ));
        };
        by_snake.insert(module.clone(), name.clone());
    }
    // Every operation has its fluent Client method of the same name, and nothing else
    // does (src/client/customize.rs holds the customization API, not an operation).
    let mut methods = file_stems(&src.join("client"))?;
    methods.remove("customize");
    if methods != modules {
        return Err(format!(
            "{package}: Client methods and operation modules differ: only methods {:?}, only \
             modules {:?}: the SDK's layout changed, update this test",
            methods.difference(&modules).collect::<Vec<_>>(),
            modules.difference(&methods).collect::<Vec<_>>()
        ));
    }
    if by_snake.len() < 10 {
        return Err(format!(
            "{package}: only {} operations found under {}",
            by_snake.len(),
            src.display()
        ));
    }
    let mut waiters = BTreeMap::new();
    let waiters_dir = src.join("waiters");
    if waiters_dir.is_dir() {
        for waiter in file_stems(&waiters_dir)? {
            let text = read(&waiters_dir.join(format!("{waiter}.rs")))?;
            let ops: BTreeSet<String> = by_snake
                .iter()
                .filter(|(snake, _)| text.contains(&format!("crate::operation::{snake}::")))
                .map(|(_, op)| op.clone())
                .collect();
            if !ops.is_empty() {
                waiters.insert(format!("wait_until_{waiter}"), ops.clone());
                waiters.insert(waiter, ops);
            }
        }
    }
    Ok(SdkOperations { by_snake, waiters })
}

// ---------------------------------------------------------------------------------------
// The code's calls.

/// Every `.rs` file under `controller/*/src`: the code of the binary, whatever crate
/// a call lands in (the SDK client is reachable from outside the SSM crate).
fn controller_sources() -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let entries = fs::read_dir(dir).map_err(|e| format!("listing {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("listing {}: {e}", dir.display()))?
                .path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
        Ok(())
    }
    let controller = workspace_root().join("controller");
    let mut files = Vec::new();
    let crates =
        fs::read_dir(&controller).map_err(|e| format!("listing {}: {e}", controller.display()))?;
    for entry in crates {
        let src = entry
            .map_err(|e| format!("listing {}: {e}", controller.display()))?
            .path()
            .join("src");
        if src.is_dir() {
            walk(&src, &mut files)?;
        }
    }
    files.sort();
    Ok(files)
}

/// Identifiers of Rust source, without comments, string, byte-string and char literals.
fn identifiers(src: &str) -> Vec<&str> {
    let b = src.as_bytes();
    let is_ident = |c: u8| c == b'_' || c.is_ascii_alphanumeric();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0usize;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'\'' {
            // A char literal ('a', '\n', '\''), else a lifetime or label ('a).
            if next == Some(b'\\') {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            } else {
                let width = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                if b.get(i + 1 + width) == Some(&b'\'') {
                    i += 2 + width;
                } else {
                    i += 1;
                }
            }
        } else if is_ident(c) && !c.is_ascii_digit() {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            let word = &src[start..i];
            // Raw strings (r"..", r#".."#, br#".."#) and raw identifiers (r#ident).
            let hashes = b[i..].iter().take_while(|&&h| h == b'#').count();
            if (word == "r" || word == "br") && b.get(i + hashes) == Some(&b'"') {
                let close = format!("\"{}", "#".repeat(hashes));
                let body = i + hashes + 1;
                i = src[body..]
                    .find(&close)
                    .map_or(b.len(), |at| body + at + close.len());
            } else if word == "b" && b.get(i) == Some(&b'"') {
                // b"..": the string branch skips it next.
            } else if word == "b" && b.get(i) == Some(&b'\'') {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            } else if word == "r" && hashes == 1 && b.get(i + 1).is_some_and(|&n| is_ident(n)) {
                let start = i + 1;
                i = start;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                out.push(&src[start..i]);
            } else {
                out.push(word);
            }
        } else if c.is_ascii_digit() {
            // Numbers with suffixes (10u32, 1e5) are not identifiers.
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Operations of `sdk` the controller's code starts, with the files that start them.
fn called_operations(sdk: &SdkOperations) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let files = controller_sources()?;
    if !files.iter().any(|f| f.ends_with("ssm/src/apply.rs")) {
        return Err(format!(
            "the scan missed controller/ssm/src/apply.rs; it read {files:?}"
        ));
    }
    let root = workspace_root();
    let mut called: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let text = read(file)?;
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        for ident in identifiers(&text) {
            for op in sdk.called_by(ident) {
                called.entry(op).or_default().insert(shown.clone());
            }
        }
    }
    Ok(called)
}

fn sources_containing(ident: &str) -> Result<bool> {
    for file in controller_sources()? {
        if identifiers(&read(&file)?).contains(&ident) {
            return Ok(true);
        }
    }
    Ok(false)
}

// ---------------------------------------------------------------------------------------
// The documented policies.

struct Policy {
    /// The ```json block's first line number in docs/iam.md.
    line: usize,
    statements: Vec<Value>,
}

impl Policy {
    fn is_trust_policy(&self) -> bool {
        self.statements.iter().any(|s| s.get("Principal").is_some())
    }

    fn actions(&self) -> BTreeSet<String> {
        let mut actions = BTreeSet::new();
        for s in &self.statements {
            if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
                continue;
            }
            match s.get("Action") {
                Some(Value::String(a)) => {
                    actions.insert(a.clone());
                }
                Some(Value::Array(list)) => {
                    actions.extend(list.iter().filter_map(|a| a.as_str()).map(str::to_owned));
                }
                _ => {}
            }
        }
        actions
    }

    fn resources(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.statements {
            match s.get("Resource") {
                Some(Value::String(r)) => out.push(r.clone()),
                Some(Value::Array(list)) => {
                    out.extend(list.iter().filter_map(|r| r.as_str()).map(str::to_owned));
                }
                _ => {}
            }
        }
        out
    }
}

fn documented_policies() -> Result<(String, Vec<Policy>)> {
    let path = workspace_root().join("docs/iam.md");
    let doc = read(&path)?;
    let mut policies = Vec::new();
    let mut lines = doc.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line.trim() != "```json" {
            continue;
        }
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| l.trim() != "```")
            .collect();
        let value: Value = serde_json::from_str(&body.join("\n"))
            .map_err(|e| format!("docs/iam.md line {}: the json block: {e}", n + 1))?;
        let statements = match value.get("Statement") {
            Some(Value::Array(list)) => list.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => {
                return Err(format!(
                    "docs/iam.md line {}: a json block that is not a policy (no Statement)",
                    n + 1
                ));
            }
        };
        policies.push(Policy {
            line: n + 1,
            statements,
        });
    }
    Ok((doc, policies))
}

/// The one permission policy (not a trust policy) with actions of `prefix`.
fn permission_policy<'a>(policies: &'a [Policy], prefix: &str) -> Result<&'a Policy> {
    let found: Vec<&Policy> = policies
        .iter()
        .filter(|p| !p.is_trust_policy() && p.actions().iter().any(|a| a.starts_with(prefix)))
        .collect();
    match found[..] {
        [one] => Ok(one),
        _ => Err(format!(
            "docs/iam.md must have exactly one ```json permission policy with {prefix} actions, \
             found {} (lines {:?})",
            found.len(),
            found.iter().map(|p| p.line).collect::<Vec<_>>()
        )),
    }
}

fn difference_report(
    what: &str,
    in_code: &BTreeMap<String, BTreeSet<String>>,
    documented: &BTreeSet<String>,
) -> Option<String> {
    let missing: Vec<String> = in_code
        .iter()
        .filter(|(action, _)| !documented.contains(*action))
        .map(|(action, files)| format!("{action} (named in {})", join(files)))
        .collect();
    let extra: Vec<&String> = documented
        .iter()
        .filter(|a| !in_code.contains_key(*a))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return None;
    }
    Some(format!(
        "{what} differs from the calls the code makes.\n  missing from docs/iam.md: {missing:?}\n  \
         in docs/iam.md but called nowhere: {extra:?}\nUpdate the policy in docs/iam.md \
         (and the resource scoping of each action, see the Service Authorization Reference)."
    ))
}

fn join(items: &BTreeSet<String>) -> String {
    items.iter().cloned().collect::<Vec<_>>().join(", ")
}

fn prefixed(
    prefix: &str,
    ops: BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, BTreeSet<String>> {
    ops.into_iter()
        .map(|(op, files)| (format!("{prefix}{op}"), files))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn the_scan_finds_calls_however_they_are_written() {
    let sdk = SdkOperations {
        by_snake: BTreeMap::from([
            (
                "get_patch_baseline".to_owned(),
                "GetPatchBaseline".to_owned(),
            ),
            ("send_command".to_owned(), "SendCommand".to_owned()),
        ]),
        waiters: BTreeMap::from([(
            "wait_until_command_executed".to_owned(),
            BTreeSet::from(["GetCommandInvocation".to_owned()]),
        )]),
    };
    let src = r##"
        // client.send_command() in a comment is not a call
        let label = "send_command"; let raw = r#"send_command"#; let c = '"';
        let b = s.ssm()
            .get_patch_baseline ()
            .baseline_id(id);
        b.send().await?;
        client.wait_until_command_executed();
        let lifetime: &'a str = x;
    "##;
    let found: BTreeSet<String> = identifiers(src)
        .into_iter()
        .flat_map(|i| sdk.called_by(i))
        .collect();
    assert_eq!(
        found,
        BTreeSet::from([
            "GetPatchBaseline".to_owned(),
            "GetCommandInvocation".to_owned()
        ])
    );
}

/// Fails the test with the message as written (a returned `Err(String)` prints escaped).
fn check(result: Result<()>) {
    if let Err(message) = result {
        panic!("{message}");
    }
}

#[test]
fn system_account_policy_lists_exactly_the_ssm_operations_called() {
    check(ssm_actions_match());
}

fn ssm_actions_match() -> Result<()> {
    let sdk = sdk_operations("aws-sdk-ssm")?;
    let called = prefixed("ssm:", called_operations(&sdk)?);
    if called.len() < 5 {
        return Err(format!(
            "found only {called:?}: the scan is broken, the controller calls more SSM"
        ));
    }
    let (_, policies) = documented_policies()?;
    let policy = permission_policy(&policies, "ssm:")?;
    let documented = policy.actions();
    let foreign: Vec<&String> = documented
        .iter()
        .filter(|a| !a.starts_with("ssm:") || a.contains('*'))
        .collect();
    if !foreign.is_empty() {
        return Err(format!(
            "docs/iam.md line {}: the system-account policy may list only exact ssm: actions, \
             not {foreign:?}",
            policy.line
        ));
    }
    match difference_report("The system-account policy", &called, &documented) {
        Some(report) => Err(report),
        None => Ok(()),
    }
}

#[test]
fn controller_policy_allows_exactly_the_sts_actions_needed() {
    check(sts_actions_match());
}

fn sts_actions_match() -> Result<()> {
    let sdk = sdk_operations("aws-sdk-sts")?;
    let mut called = prefixed("sts:", called_operations(&sdk)?);
    // Assumed roles come from aws-config's provider, which calls sts:AssumeRole.
    if sources_containing("AssumeRoleProvider")? {
        called
            .entry("sts:AssumeRole".to_owned())
            .or_default()
            .insert("AssumeRoleProvider (aws-config)".to_owned());
    }
    // GetCallerIdentity needs no permission; the doc says so.
    let (doc, policies) = documented_policies()?;
    if called.remove("sts:GetCallerIdentity").is_some()
        && !doc.contains("API_GetCallerIdentity.html")
    {
        return Err(
            "docs/iam.md must say (and cite) that sts:GetCallerIdentity needs no \
                    permission"
                .to_owned(),
        );
    }
    if !called.contains_key("sts:AssumeRole") {
        return Err(format!(
            "found no sts:AssumeRole in the code ({called:?}): the scan is broken"
        ));
    }
    let policy = permission_policy(&policies, "sts:")?;
    let documented = policy.actions();
    let mut problems = Vec::new();
    if let Some(report) = difference_report("The controller's policy", &called, &documented) {
        problems.push(report);
    }
    let resources = policy.resources();
    if resources.is_empty() || resources.iter().any(|r| !r.starts_with("arn:aws:iam::")) {
        problems.push(format!(
            "docs/iam.md line {}: the controller's policy must name the system-account roles \
             by ARN pattern (arn:aws:iam::...:role/...), not {resources:?}",
            policy.line
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// A task registered with a ServiceRoleArn passes that role to Systems Manager, which
/// needs iam:PassRole
/// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html>).
#[test]
fn passing_a_task_role_is_documented_with_pass_role_toward_ssm_only() {
    check(pass_role_documented());
}

fn pass_role_documented() -> Result<()> {
    if !sources_containing("set_service_role_arn")? {
        return Ok(());
    }
    let (_, policies) = documented_policies()?;
    let policy = permission_policy(&policies, "iam:")?;
    let ok = policy.actions() == BTreeSet::from(["iam:PassRole".to_owned()])
        && policy.statements.iter().all(|s| {
            s.get("Condition")
                .and_then(|c| c.get("StringEquals"))
                .and_then(|c| c.get("iam:PassedToService"))
                .and_then(Value::as_str)
                == Some("ssm.amazonaws.com")
        })
        && policy
            .resources()
            .iter()
            .all(|r| r.contains(":role/") && !r.ends_with('*'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "docs/iam.md line {}: the code passes task roles (ServiceRoleArn), so the page \
             must show a policy granting only iam:PassRole on named roles with \
             iam:PassedToService ssm.amazonaws.com",
            policy.line
        ))
    }
}

#[test]
fn system_account_trust_policy_requires_the_external_id() {
    check(trust_policy_has_external_id());
}

fn trust_policy_has_external_id() -> Result<()> {
    let (_, policies) = documented_policies()?;
    let ok = policies.iter().filter(|p| p.is_trust_policy()).any(|p| {
        p.statements.iter().any(|s| {
            let assume = match s.get("Action") {
                Some(Value::String(a)) => a == "sts:AssumeRole",
                Some(Value::Array(list)) => {
                    list.iter().any(|a| a.as_str() == Some("sts:AssumeRole"))
                }
                _ => false,
            };
            let external_id = s
                .get("Condition")
                .and_then(|c| c.get("StringEquals"))
                .and_then(|c| c.get("sts:ExternalId"))
                .is_some();
            assume && external_id
        })
    });
    if ok {
        Ok(())
    } else {
        Err(
            "docs/iam.md must show the system-account role's trust policy: sts:AssumeRole with \
             a StringEquals sts:ExternalId condition"
                .to_owned(),
        )
    }
}
