//! The browser tools: where Chromium, chromedriver and axe-core are, whether they are there, and
//! chromedriver processes of the tests' own.
//!
//! Chromium and chromedriver are Debian's (`chromium`, `chromium-driver`), at
//! `MASTERCLASS_TEST_CHROMIUM` and `MASTERCLASS_TEST_CHROMEDRIVER` when set; axe-core's
//! `axe.min.js` comes from npm (see [`crate::axe`]). Without any of them the browser tests are
//! skipped with a warning, unless `CI` is set: then they fail.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::harness::WAIT;

/// Where the browser tools are.
pub struct Tools {
    pub chromedriver: PathBuf,
    pub chromium: PathBuf,
    /// axe-core's `axe.min.js`.
    pub axe: PathBuf,
}

impl Tools {
    fn from_env() -> Tools {
        let path = |var: &str, default: PathBuf| {
            std::env::var_os(var).map(PathBuf::from).unwrap_or(default)
        };
        Tools {
            chromedriver: path(
                "MASTERCLASS_TEST_CHROMEDRIVER",
                "/usr/bin/chromedriver".into(),
            ),
            chromium: path("MASTERCLASS_TEST_CHROMIUM", "/usr/bin/chromium".into()),
            axe: path(
                "MASTERCLASS_TEST_AXE_JS",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/axe-core/axe.min.js"),
            ),
        }
    }

    /// What is not there, with where it was looked for and how to get it.
    fn missing(&self) -> Vec<String> {
        [
            (
                &self.chromedriver,
                "MASTERCLASS_TEST_CHROMEDRIVER",
                "apt-get install chromium-driver",
            ),
            (
                &self.chromium,
                "MASTERCLASS_TEST_CHROMIUM",
                "apt-get install chromium",
            ),
            (
                &self.axe,
                "MASTERCLASS_TEST_AXE_JS",
                "npm install --no-save axe-core@4",
            ),
        ]
        .into_iter()
        .filter(|(path, ..)| !path.is_file())
        .map(|(path, var, fix)| format!("{} (set {var}, or {fix})", path.display()))
        .collect()
    }
}

/// The browser tools when they are all there; says so loudly when they are not, and fails under
/// CI.
pub fn tools() -> Option<&'static Tools> {
    static TOOLS: OnceLock<Option<Tools>> = OnceLock::new();
    TOOLS
        .get_or_init(|| {
            let tools = Tools::from_env();
            let missing = tools.missing();
            if missing.is_empty() {
                return Some(tools);
            }
            let missing = missing.join("; ");
            if std::env::var_os("CI").is_some() {
                panic!("CI is set but browser tests cannot run, missing: {missing}");
            }
            // Straight to stderr: the test harness keeps `eprintln!` of passing tests to itself.
            let _ = writeln!(
                std::io::stderr(),
                "WARNING: browser tests are SKIPPED, missing: {missing}. \
                 Set CI=1 to make them mandatory."
            );
            None
        })
        .as_ref()
}

/// Chromium is heavy: more browsers than cores only make each slower, so there is one per core
/// (at most four) unless `MASTERCLASS_TEST_BROWSERS` says otherwise.
pub(crate) fn browser_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let slots = std::env::var("MASTERCLASS_TEST_BROWSERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
            .max(1);
        Semaphore::new(slots)
    })
}

/// A chromedriver of one browser's own, in a process group of its own that the Chromium it
/// starts joins; dropping it ends the group.
pub(crate) struct Driver {
    child: Child,
    pub(crate) url: String,
}

impl Driver {
    /// Starts chromedriver on a port it picks and waits until it answers `/status`. A
    /// chromedriver that exits before naming its port (it happens, rarely, on a loaded
    /// machine) is started again, up to three times.
    pub(crate) async fn start(path: &Path) -> Driver {
        for _ in 0..2 {
            if let Some(driver) = Self::try_start(path).await {
                return driver;
            }
        }
        match Self::try_start(path).await {
            Some(driver) => driver,
            None => panic!("{} did not say which port it listens on", path.display()),
        }
    }

    async fn try_start(path: &Path) -> Option<Driver> {
        let mut child = Command::new(path)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", path.display()));
        let stdout = child.stdout.take().expect("chromedriver's stdout");
        let port = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let port = lines.by_ref().map_while(Result::ok).find_map(|line| {
                line.strip_prefix("ChromeDriver was started successfully on port ")
                    .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok())
            });
            // Keep draining stdout so chromedriver never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            port
        })
        .await
        .expect("chromedriver's output read");
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        };
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        driver.wait_until_ready().await;
        Some(driver)
    }

    async fn wait_until_ready(&self) {
        // Never through a proxy: the driver is on this machine.
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client");
        let deadline = Instant::now() + WAIT;
        loop {
            let status = client
                .get(format!("{}/status", self.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(response) = status {
                if let Ok(body) = response.json::<Value>().await {
                    if body["value"]["ready"] == true {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver at {} did not answer /status within {WAIT:?}",
                self.url
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and whatever Chromium processes are still there.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
