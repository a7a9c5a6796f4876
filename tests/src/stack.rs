//! The whole local stack for end-to-end tests: a control plane of the test's own, the
//! SSM/STS simulator (in-process, so the test can count calls and inject faults), and the
//! real `patchfleet` binary running as a child process against both, exactly as it would
//! run against AWS: only the endpoints are overridden.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kube::Client;
use ssm_sim::config::{AccountConfig, RoleConfig};

use crate::control_plane::{self, ControlPlane};

/// The controller's own (long-term) credentials; the simulator maps them to its default
/// account, 123456789012.
pub const BASE_ACCESS_KEY: &str = "AKIAPATCHFLEETTEST01";
pub const BASE_SECRET_KEY: &str = "patchfleet-test-secret";

/// The accounts and roles examples/10-system-accounts.yaml declares.
pub fn example_accounts() -> Vec<AccountConfig> {
    vec![
        AccountConfig {
            id: "111111111111".into(),
            roles: vec![RoleConfig {
                name: "patchfleet".into(),
                external_id: Some("customer-a-7f3c".into()),
            }],
        },
        AccountConfig {
            id: "222222222222".into(),
            roles: vec![RoleConfig {
                name: "patchfleet".into(),
                external_id: Some("customer-b-91d2".into()),
            }],
        },
    ]
}

pub struct Stack {
    pub plane: ControlPlane,
    pub sim: ssm_sim::Server,
    pub cluster_id: String,
    replicas: std::sync::Mutex<Vec<Replica>>,
    test: String,
}

/// One `patchfleet run` process.
struct Replica {
    identity: String,
    child: Child,
    http: SocketAddr,
    log: PathBuf,
}

/// The four kinds, as `kubectl` names them (for `wait_ready`).
pub const ALL_KINDS: [&str; 4] = [
    "systemaccounts",
    "patchpolicies",
    "patchgroups",
    "maintenancewindows",
];
/// How long the examples may take to converge (a loaded 2-core machine takes far less).
pub const CONVERGE: Duration = Duration::from_secs(180);

/// The Lease timing of test controllers: short, so that handovers take seconds.
pub const LEASE_DURATION: Duration = Duration::from_secs(6);
/// How often test controllers renew and retry the Lease.
pub const LEASE_RETRY_PERIOD: Duration = Duration::from_secs(1);
const LEASE_FLAGS: [&str; 6] = [
    "--lease-duration",
    "6s",
    "--lease-renew-deadline",
    "4s",
    "--lease-retry-period",
    "1s",
];

impl Stack {
    /// A control plane with the CRDs, the simulator with the example accounts, and no
    /// controller yet.
    pub async fn start(test: &str) -> anyhow::Result<Self> {
        let binary = patchfleet_binary()?;
        let plane = tokio::task::spawn_blocking({
            let test = test.to_owned();
            move || control_plane::dedicated(&test)
        })
        .await??;
        let config = ssm_sim::Config {
            accounts: example_accounts(),
            ..ssm_sim::Config::default()
        };
        let sim = ssm_sim::Server::start(config, "127.0.0.1:0".parse()?).await?;
        drop(binary);
        Ok(Stack {
            plane,
            sim,
            cluster_id: format!("e2e-{test}"),
            replicas: std::sync::Mutex::new(Vec::new()),
            test: test.to_owned(),
        })
    }

    pub async fn client(&self) -> anyhow::Result<Client> {
        self.plane.client().await
    }

    /// The identity of the replica `start_controller` runs (the same on every restart, as a
    /// pod that keeps its name).
    pub fn main_identity(&self) -> String {
        format!("{}-main", self.cluster_id)
    }

    /// Starts `patchfleet run` with short intervals, so tests see passes quickly.
    pub fn start_controller(&mut self) -> anyhow::Result<()> {
        self.start_controller_with(&[])
    }

    pub fn start_controller_with(&mut self, extra_args: &[&str]) -> anyhow::Result<()> {
        let identity = self.main_identity();
        self.start_replica(&identity, extra_args, &[])
    }

    /// `patchfleet SUBCOMMAND` as the tests run a server of it (the controller, the
    /// dashboard, the enrollment server): nothing of the test's environment but PATH, the
    /// stack's kubeconfig, the simulator's endpoints and base credentials; its output
    /// into `log`.
    pub fn patchfleet_server(
        &self,
        subcommand: &str,
        log: std::fs::File,
    ) -> anyhow::Result<Command> {
        let endpoint = self.sim.endpoint_url();
        let mut command = Command::new(patchfleet_binary()?);
        command
            .arg(subcommand)
            .args(["--ssm-endpoint", &endpoint, "--sts-endpoint", &endpoint])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", &self.plane.kubeconfig)
            .env("AWS_ACCESS_KEY_ID", BASE_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", BASE_SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "info,kube_runtime=warn,aws=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        Ok(command)
    }

    /// Starts one more `patchfleet run` named `identity` (its Lease holder identity and
    /// AssumeRole session name), with extra flags and environment variables.
    pub fn start_replica(
        &self,
        identity: &str,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let log_path = std::env::temp_dir().join(format!(
            "patchfleet-{}-{identity}-{}.log",
            self.test,
            std::process::id()
        ));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .context("opening the controller log")?;
        let http = free_local_address()?;
        let child = self
            .patchfleet_server("run", log)?
            .args(["--cluster-id", &self.cluster_id])
            .args([
                "--resync",
                "3s",
                "--retry",
                "1s",
                "--retry-attention",
                "2s",
                "--rate-limit",
                "100",
                "--run-poll-interval",
                "1s",
                // The compliance pass's reads would change the write path's exact call
                // counts: tests of it turn it on (a flag given twice takes its last value).
                "--compliance-interval",
                "0",
            ])
            .args(LEASE_FLAGS)
            .args(["--identity", identity])
            .args(["--http-address", &http.to_string()])
            .args(extra_args)
            .env(
                "RUST_LOG",
                "info,patchfleet=debug,kube_runtime=warn,aws=warn",
            )
            .envs(extra_env.iter().copied())
            .spawn()
            .context("starting patchfleet run")?;
        self.lock_replicas().push(Replica {
            identity: identity.to_owned(),
            child,
            http,
            log: log_path,
        });
        Ok(())
    }

    /// `patchfleet plan -f path --against SIM` with `args` after, as a reviewer runs it:
    /// the base credentials only, no cluster.
    pub fn plan(&self, path: &Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Command::new(patchfleet_binary()?)
            .arg("plan")
            .arg("-f")
            .arg(path)
            .args(["--against", &self.sim.endpoint_url()])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ACCESS_KEY_ID", BASE_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", BASE_SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .context("running patchfleet plan")
    }

    /// SIGKILL to every controller: no shutdown path runs, as when a node dies.
    pub fn kill_controller(&mut self) -> anyhow::Result<()> {
        let replicas: Vec<String> = self
            .lock_replicas()
            .iter()
            .map(|r| r.identity.clone())
            .collect();
        for identity in replicas {
            self.kill_replica(&identity)?;
        }
        Ok(())
    }

    /// SIGKILL to one replica.
    pub fn kill_replica(&self, identity: &str) -> anyhow::Result<()> {
        let mut replicas = self.lock_replicas();
        if let Some(index) = replicas.iter().position(|r| r.identity == identity) {
            let mut replica = replicas.remove(index);
            replica.child.kill().context("killing the controller")?;
            replica.child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM to one replica (as Kubernetes stops a pod), and its exit status.
    pub fn stop_replica(
        &self,
        identity: &str,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let mut replica = {
            let mut replicas = self.lock_replicas();
            let index = replicas
                .iter()
                .position(|r| r.identity == identity)
                .with_context(|| format!("no replica {identity}"))?;
            replicas.remove(index)
        };
        let status = Command::new("kill")
            .args(["-TERM", &replica.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = replica.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = replica.child.kill();
                bail!("{identity} did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn lock_replicas(&self) -> std::sync::MutexGuard<'_, Vec<Replica>> {
        self.replicas.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails when a controller process has exited: waiting on it would be pointless.
    pub fn check_controller(&self) -> anyhow::Result<()> {
        let mut replicas = self.lock_replicas();
        for replica in replicas.iter_mut() {
            if let Some(status) = replica.child.try_wait()? {
                let log = read_tail(&replica.log);
                bail!(
                    "the controller {} exited ({status})\n--- its log ---\n{log}",
                    replica.identity
                );
            }
        }
        Ok(())
    }

    /// The controllers' logs so far (the last lines of each), for failure messages.
    pub fn controller_log(&self) -> String {
        self.lock_replicas()
            .iter()
            .map(|r| format!("--- {} ---\n{}", r.identity, read_tail(&r.log)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The whole log of one replica.
    pub fn replica_log(&self, identity: &str) -> anyhow::Result<String> {
        let path = self
            .lock_replicas()
            .iter()
            .find(|r| r.identity == identity)
            .map(|r| r.log.clone())
            .with_context(|| format!("no replica {identity}"))?;
        Ok(std::fs::read_to_string(path)?)
    }

    /// GET `path` from a replica's metrics and probe address: (status code, body).
    pub fn http_get(&self, identity: &str, path: &str) -> anyhow::Result<(u16, String)> {
        let address = self
            .lock_replicas()
            .iter()
            .find(|r| r.identity == identity)
            .map(|r| r.http)
            .with_context(|| format!("no replica {identity}"))?;
        http_get(address, path)
    }

    pub fn kubectl<I, S>(&self, args: I) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.plane.kubectl(args)
    }

    pub fn apply(&self, path: &str) -> anyhow::Result<String> {
        let path = crate::repo_root().join(path);
        self.kubectl([
            "apply".as_ref(),
            "--server-side".as_ref(),
            "-f".as_ref(),
            path.as_os_str(),
        ])
    }

    /// `kubectl apply --server-side` of manifests given as text (YAML or JSON); `name`
    /// tells the temporary file apart.
    pub fn apply_text(&self, name: &str, manifests: &str) -> anyhow::Result<String> {
        let file = std::env::temp_dir().join(format!(
            "patchfleet-{}-{name}-{}.yaml",
            self.cluster_id,
            std::process::id()
        ));
        std::fs::write(&file, manifests).context("writing the manifests")?;
        let applied = self.kubectl([
            "apply".as_ref(),
            "--server-side".as_ref(),
            "-f".as_ref(),
            file.as_os_str(),
        ]);
        let _ = std::fs::remove_file(&file);
        applied
    }

    /// Waits until `kubectl wait --for=condition=Ready` succeeds for every resource of the
    /// given kinds, or fails with the controller's log.
    pub fn wait_ready(&self, kinds: &[&str], timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for kind in kinds {
            loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let result = self.kubectl([
                    "wait",
                    "--for=condition=Ready",
                    "--all",
                    "--all-namespaces",
                    &format!("--timeout={}s", remaining.as_secs().max(1)),
                    kind,
                ]);
                self.check_controller()?;
                match result {
                    Ok(_) => break,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(500))
                    }
                    Err(error) => bail!(
                        "{kind} not Ready: {error}\n{}\n--- controller log ---\n{}",
                        self.kubectl(["get", "patchfleet", "-A", "-o", "yaml"])
                            .unwrap_or_default(),
                        self.controller_log()
                    ),
                }
            }
        }
        Ok(())
    }

    /// SSM calls counted by the simulator, optionally only those of one operation.
    pub fn calls(&self, operation_prefix: &str) -> u64 {
        self.sim
            .sim()
            .counters
            .snapshot()
            .iter()
            .filter(|c| c.key.operation.starts_with(operation_prefix))
            .map(|c| c.count)
            .sum()
    }

    /// SSM write calls so far (anything that is not a read).
    pub fn writes(&self) -> u64 {
        self.writes_where(|_, _| true)
    }

    /// SSM write calls so far in one account and region.
    pub fn writes_in(&self, account: &str, region: &str) -> u64 {
        self.writes_where(|a, r| a == account && r == region)
    }

    fn writes_where(&self, scope: impl Fn(&str, &str) -> bool) -> u64 {
        self.sim
            .sim()
            .counters
            .snapshot()
            .iter()
            .filter(|c| scope(&c.key.account, &c.key.region) && !is_read(&c.key.operation))
            .map(|c| c.count)
            .sum()
    }
}

fn read_tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// A loopback address with a port free right now.
pub fn free_local_address() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// A plain HTTP/1.1 GET (the test crate needs no HTTP client for this).
pub fn http_get(address: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no HTTP header in the answer")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no status code in the answer")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// A chunked HTTP/1.1 body, joined.
pub fn dechunk(mut body: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").context("bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16).context("bad chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).context("short chunk")?);
        body = rest.get(size + 2..).context("short chunk")?;
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.kill_controller();
        self.plane.stop();
    }
}

fn is_read(operation: &str) -> bool {
    ["Describe", "Get", "List"]
        .iter()
        .any(|p| operation.starts_with(p))
        || matches!(operation, "AssumeRole" | "GetCallerIdentity")
}

/// Builds the `patchfleet` binary once (it may be stale when only tests were built) and
/// returns its path: the same target directory as the running test.
///
/// `PATCHFLEET_BINARY` names another one instead (a release build, for the dashboard's
/// benchmark by hand).
pub fn patchfleet_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PATCHFLEET_BINARY") {
        return Ok(PathBuf::from(path));
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_binary().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn build_binary() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "patchfleet",
            "--bin",
            "patchfleet",
        ])
        .current_dir(crate::repo_root())
        .status()
        .context("running cargo build -p patchfleet")?;
    if !status.success() {
        bail!("cargo build -p patchfleet failed");
    }
    // target/<profile>/deps/<test binary> -> target/<profile>/patchfleet
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test binary is not in target/<profile>/deps")?;
    let binary = profile_dir.join("patchfleet");
    if !binary.exists() {
        bail!("{} was not built", binary.display());
    }
    Ok(binary)
}

/// An SSM client acting in one account and region the way an operator would: the base
/// credentials, then AssumeRole into the account. For checking what the controller did,
/// and for making changes behind its back.
pub async fn ssm_client(
    stack: &Stack,
    account_id: &str,
    external_id: &str,
    region: &str,
) -> anyhow::Result<aws_sdk_ssm::Client> {
    assume_role_client(&stack.sim.endpoint_url(), account_id, external_id, region).await
}

/// An SSM client in `account_id` through AssumeRole of its `patchfleet` role at `endpoint`.
pub async fn assume_role_client(
    endpoint: &str,
    account_id: &str,
    external_id: &str,
    region: &str,
) -> anyhow::Result<aws_sdk_ssm::Client> {
    use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
    let base = Credentials::new(BASE_ACCESS_KEY, BASE_SECRET_KEY, None, None, "test");
    let sts_config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(base)
        .build();
    let assumed = aws_sdk_sts::Client::from_conf(sts_config)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account_id}:role/patchfleet"))
        .role_session_name("patchfleet-test")
        .external_id(external_id)
        .send()
        .await
        .context("AssumeRole in the simulator")?;
    let credentials = assumed
        .credentials()
        .context("AssumeRole returned no credentials")?;
    let session = Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_owned()),
        None,
        "assumed",
    );
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(session)
        .build();
    Ok(aws_sdk_ssm::Client::from_conf(config))
}
