//! The pinned helm (tests/env/helm) and a scratch home for it, shared by the chart tests
//! and the end-to-end test that runs the controller with the chart's RBAC.
//!
//! helm comes from `PATCHFLEET_HELM` (scripts/test sets it), else `tests/env/helm path`
//! (which builds it once). Every invocation gets its own HELM_CACHE_HOME, HELM_CONFIG_HOME
//! and HELM_DATA_HOME in a temp dir, so nothing touches the user's home.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use crate::repo_root;

pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/patchfleet")
}

/// The pinned helm binary.
pub fn helm_bin() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        if let Some(path) = std::env::var_os("PATCHFLEET_HELM") {
            return PathBuf::from(path);
        }
        let output = Command::new(repo_root().join("tests/env/helm"))
            .arg("path")
            .output()
            .expect("running tests/env/helm path");
        assert!(
            output.status.success(),
            "tests/env/helm path failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// A scratch directory for one test: helm's homes, values files, rendered manifests.
/// Removed when dropped.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "patchfleet-chart-{test}-{}-{serial}",
            std::process::id()
        ));
        for home in ["cache", "config", "data"] {
            std::fs::create_dir_all(dir.join(home)).expect("creating a scratch dir");
        }
        Scratch { dir }
    }

    /// A path inside the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `values` (YAML text) to a file and returns its path.
    pub fn values(&self, name: &str, values: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.yaml"));
        std::fs::write(&path, values).expect("writing a values file");
        path
    }

    /// A helm command with its homes in this scratch dir (and no user kubeconfig).
    pub fn helm<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(helm_bin());
        command
            .env("HELM_CACHE_HOME", self.dir.join("cache"))
            .env("HELM_CONFIG_HOME", self.dir.join("config"))
            .env("HELM_DATA_HOME", self.dir.join("data"))
            .env_remove("KUBECONFIG")
            .env_remove("HELM_KUBECONTEXT")
            .env_remove("HELM_NAMESPACE")
            .args(args);
        command
    }

    /// Runs helm; fails the test with helm's output unless it succeeds.
    pub fn helm_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = self.helm(args);
        let output = run(&mut command);
        assert!(
            output.status.success(),
            "{command:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `helm template RELEASE charts/patchfleet -n NAMESPACE -f VALUES [EXTRA...]`.
    pub fn render(&self, release: &str, namespace: &str, values: &Path, extra: &[&str]) -> String {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "template".as_ref(),
            release.as_ref(),
            "--namespace".as_ref(),
            namespace.as_ref(),
            "--values".as_ref(),
            values.as_os_str(),
        ];
        let chart = chart_dir();
        args.insert(2, chart.as_os_str());
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        self.helm_ok(args)
    }

    /// [`Scratch::render`], parsed.
    pub fn template(&self, release: &str, namespace: &str, values: &Path) -> Vec<Value> {
        parse_documents(&self.render(release, namespace, values, &[]))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

/// Every non-empty YAML document of a multi-document stream.
pub fn parse_documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|document| serde::Deserialize::deserialize(document).expect("helm renders valid YAML"))
        .filter(|value: &Value| !value.is_null())
        .collect()
}
