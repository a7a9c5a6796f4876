//! The test fixture: one real control plane (etcd + kube-apiserver, tests/env/control-plane)
//! per test binary, with patchfleet's CRDs installed, and a namespace per test.
//!
//! When `PATCHFLEET_TEST_KUBECONFIG` names a running control plane (README's test command
//! starts one for the whole suite), every test binary shares it. Otherwise the first test
//! that asks starts one for this binary; the script watches this process and stops the
//! control plane when it exits, also when a test fails or the run is interrupted.
//! `KUBECONFIG` is deliberately ignored: the tests install CRDs and must never run against
//! a cluster someone pointed their shell at.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A running control plane with patchfleet's CRDs established.
#[derive(Debug)]
pub struct ControlPlane {
    pub kubeconfig: PathBuf,
    /// The state directory of a control plane this process started, if it did.
    state_dir: Option<PathBuf>,
}

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The control plane of this test binary, started on first use.
pub fn shared() -> anyhow::Result<&'static ControlPlane> {
    SHARED
        .get_or_init(|| start_or_reuse().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("control plane unavailable: {e}"))
}

pub fn script() -> PathBuf {
    crate::repo_root().join("tests/env/control-plane")
}

fn start_or_reuse() -> anyhow::Result<ControlPlane> {
    let plane = match std::env::var_os("PATCHFLEET_TEST_KUBECONFIG") {
        Some(path) => ControlPlane {
            kubeconfig: PathBuf::from(path),
            state_dir: None,
        },
        None => start()?,
    };
    plane.install_crds()?;
    Ok(plane)
}

/// A control plane of its own, for a test that runs a controller: a controller watches
/// the whole cluster, so two of them must not share one. Stopped when this process exits.
pub fn dedicated(test: &str) -> anyhow::Result<ControlPlane> {
    static SERIAL: AtomicU32 = AtomicU32::new(0);
    let serial = SERIAL.fetch_add(1, Ordering::SeqCst);
    let dir =
        std::env::temp_dir().join(format!("patchfleet-{test}-{}-{serial}", std::process::id()));
    let plane = start_in(dir)?;
    plane.install_crds()?;
    Ok(plane)
}

fn start() -> anyhow::Result<ControlPlane> {
    start_in(std::env::temp_dir().join(format!("patchfleet-test-{}", std::process::id())))
}

fn start_in(state_dir: PathBuf) -> anyhow::Result<ControlPlane> {
    let output = Command::new(script())
        .arg("up")
        .arg("--dir")
        .arg(&state_dir)
        .arg("--watch-pid")
        .arg(std::process::id().to_string())
        .output()
        .context("running tests/env/control-plane up")?;
    if !output.status.success() {
        bail!(
            "tests/env/control-plane up failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let kubeconfig = stdout
        .lines()
        .last()
        .and_then(|line| line.strip_prefix("export KUBECONFIG="))
        .context("control-plane up did not print `export KUBECONFIG=...` last")?;
    Ok(ControlPlane {
        kubeconfig: PathBuf::from(kubeconfig.trim()),
        state_dir: Some(state_dir),
    })
}

impl ControlPlane {
    /// Runs the pinned kubectl against this control plane; fails with its stderr.
    pub fn kubectl<I, S>(&self, args: I) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let output = self
            .kubectl_command(args)
            .output()
            .context("running kubectl")?;
        if !output.status.success() {
            bail!(
                "kubectl failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// A kubectl command bound to this control plane, to run as the caller likes.
    pub fn kubectl_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        // README's test command exports the pinned kubectl; otherwise the script finds it.
        let mut command = match std::env::var_os("PATCHFLEET_KUBECTL") {
            Some(kubectl) => {
                let mut command = Command::new(kubectl);
                command.arg("--kubeconfig").arg(&self.kubeconfig);
                command
            }
            None => {
                let mut command = Command::new(script());
                command.arg("kubectl");
                if let Some(dir) = &self.state_dir {
                    command.arg("--dir").arg(dir);
                }
                command
            }
        };
        command.args(args);
        command
    }

    /// Applies crds/ (server-side) and waits until every CRD is Established.
    fn install_crds(&self) -> anyhow::Result<()> {
        let crds = crate::repo_root().join("crds");
        self.kubectl([
            "apply".as_ref(),
            "--server-side".as_ref(),
            "--field-manager=patchfleet-tests".as_ref(),
            "--force-conflicts".as_ref(),
            "-f".as_ref(),
            crds.as_os_str(),
        ])?;
        for crd in patchfleet_api::crds() {
            let name = crd.metadata.name.unwrap_or_default();
            // A CRD read before the API server wrote its first status has no conditions,
            // and `kubectl wait` then fails at once instead of waiting: ask again.
            let mut attempts = 0;
            loop {
                match self.kubectl([
                    "wait",
                    "--for=condition=Established",
                    "--timeout=60s",
                    &format!("crd/{name}"),
                ]) {
                    Ok(_) => break,
                    Err(error)
                        if attempts < 50 && format!("{error:#}").contains("accessor error") =>
                    {
                        attempts += 1;
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }

    /// Stops a control plane this process started (a shared one is left alone).
    pub fn stop(&self) {
        if let Some(dir) = &self.state_dir {
            let _ = Command::new(script())
                .arg("down")
                .arg("--dir")
                .arg(dir)
                .output();
        }
    }

    /// A client for this control plane, bound to the calling test's runtime.
    pub async fn client(&self) -> anyhow::Result<Client> {
        client_from(&self.kubeconfig).await
    }
}

async fn client_from(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).context("reading the kubeconfig")?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("loading the kubeconfig")?;
    Client::try_from(config).context("building a client")
}

/// A namespace of its own for one test, so tests run in parallel. No namespace controller
/// runs in this control plane, so a deleted namespace stays Terminating; names never
/// repeat within a control plane's life.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

static NAMESPACES: AtomicU32 = AtomicU32::new(0);

impl TestNamespace {
    pub async fn create(client: &Client, test: &str) -> anyhow::Result<Self> {
        let serial = NAMESPACES.fetch_add(1, Ordering::SeqCst);
        let name = format!("{test}-{}-{serial}", std::process::id());
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"patchfleet.io/test": test}}
        }))?;
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(TestNamespace {
            name,
            client: client.clone(),
        })
    }

    /// Deletes the namespace (best effort: the control plane is thrown away anyway).
    pub async fn delete(self) {
        let namespaces: Api<Namespace> = Api::all(self.client);
        let _ = namespaces
            .delete(&self.name, &DeleteParams::default())
            .await;
    }
}
