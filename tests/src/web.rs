//! The dashboard's test fixture: `patchfleet dashboard` as a child process against the
//! stack's control plane and simulator, an HTTP/1.1 client that sends headers (raw TCP:
//! the requests are tiny and the test sees every byte), ServiceAccount tokens from the
//! TokenRequest API, and headless Chromium driven over WebDriver (chromedriver from
//! Debian's `chromium-driver`, installed by the test setup).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::stack::{Stack, dechunk, free_local_address};

/// An HTTP answer: status, headers (names lower-cased) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {}", self.body))
    }
}

/// One HTTP/1.1 request; `Connection: close`, so the body ends with the stream.
pub fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<Answer> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no HTTP header in the answer")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .context("no status code in the answer")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// A GET with a bearer token (None: no Authorization header).
pub fn get(address: SocketAddr, path: &str, token: Option<&str>) -> anyhow::Result<Answer> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    request(address, "GET", path, &headers, "")
}

/// A token of a ServiceAccount, from the TokenRequest API (`kubectl create token`).
pub fn service_account_token(stack: &Stack, namespace: &str, name: &str) -> anyhow::Result<String> {
    Ok(stack
        .kubectl(["create", "token", name, "-n", namespace, "--duration", "1h"])?
        .trim()
        .to_owned())
}

/// `patchfleet dashboard`, killed when dropped.
pub struct DashboardProcess {
    child: Child,
    pub address: SocketAddr,
    pub log: PathBuf,
}

impl DashboardProcess {
    /// Starts it with the stack's kubeconfig (the admin's: the dashboard's own RBAC is the
    /// chart test's subject) and the simulator's endpoints, and waits until it is ready.
    pub fn start(stack: &Stack, name: &str, extra_args: &[&str]) -> anyhow::Result<Self> {
        let address = free_local_address()?;
        let log = std::env::temp_dir().join(format!(
            "patchfleet-dashboard-{name}-{}.log",
            std::process::id()
        ));
        let child = stack
            .patchfleet_server(
                "dashboard",
                std::fs::File::create(&log).context("creating the dashboard log")?,
            )?
            .args(["--http-address", &address.to_string()])
            .args(["--rate-limit", "100"])
            .args(extra_args)
            .spawn()
            .context("starting patchfleet dashboard")?;
        let mut process = DashboardProcess {
            child,
            address,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = process.child.try_wait()? {
                bail!("the dashboard exited ({status}):\n{}", process.log_text());
            }
            if get(address, "/readyz", None).is_ok_and(|a| a.status == 200) {
                return Ok(process);
            }
            if Instant::now() > deadline {
                bail!(
                    "the dashboard was not ready in 60 s:\n{}",
                    process.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Resident memory (VmRSS) in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for DashboardProcess {
    /// SIGTERM first, as Kubernetes stops a pod (the dashboard finishes its requests and
    /// exits), then SIGKILL after five seconds.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium under chromedriver; the driver is killed when dropped (the session
/// should be closed first with `client.close()`).
pub struct Browser {
    pub client: fantoccini::Client,
    driver: Child,
    _profile: tempdir::Dir,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Where Debian's packages put them (`chromium`, `chromium-driver`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

impl Browser {
    pub async fn start() -> anyhow::Result<Browser> {
        for path in [CHROMIUM, CHROMEDRIVER] {
            if !std::path::Path::new(path).exists() {
                bail!(
                    "{path} is missing: install Debian's chromium and chromium-driver \
                     (.ci/run does: apt-get install chromium chromium-driver)"
                );
            }
        }
        let port = free_local_address()?.port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let profile = tempdir::Dir(
            std::env::temp_dir().join(format!("patchfleet-chromium-{}-{port}", std::process::id())),
        );
        std::fs::create_dir_all(&profile.0)?;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": CHROMIUM,
                // As the machine's probe starts it: no sandbox as root, and nothing that
                // reaches for Google's servers (the network is closed).
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.0.display()),
                ],
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match fantoccini::ClientBuilder::rustls()
                .context("the WebDriver client's TLS")?
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => bail!("connecting to chromedriver: {error}"),
            }
        };
        Ok(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Saves a screenshot as `NAME.png` in target/dashboard-screenshots (the test's
    /// artefacts), and in docs/dashboard/ when PATCHFLEET_UPDATE_SCREENSHOTS is set.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self
            .client
            .screenshot()
            .await
            .context("taking a screenshot")?;
        let dir = crate::repo_root().join("target/dashboard-screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png)?;
        if std::env::var_os("PATCHFLEET_UPDATE_SCREENSHOTS").is_some() {
            let docs = crate::repo_root().join("docs/dashboard");
            std::fs::create_dir_all(&docs)?;
            std::fs::write(docs.join(format!("{name}.png")), &png)?;
        }
        Ok(path)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
