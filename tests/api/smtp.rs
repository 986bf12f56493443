//! A real SMTP server for the delivery tests: aiosmtpd (Debian `python3-aiosmtpd`) on a free
//! loopback port, storing what it receives in a maildir the tests read back.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python that has aiosmtpd: `MASTERCLASS_TEST_SMTPD_PYTHON`, else Debian's.
fn python() -> String {
    std::env::var("MASTERCLASS_TEST_SMTPD_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".to_owned())
}

/// Whether SMTP tests can run; says so loudly when they cannot, and fails under CI.
pub fn available() -> bool {
    let found = Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!(
                "CI is set but aiosmtpd is not importable by {} (install python3-aiosmtpd)",
                python()
            );
        }
        eprintln!(
            "WARNING: aiosmtpd not found for {}; SMTP delivery tests are SKIPPED",
            python()
        );
    }
    found
}

/// A free loopback port, for a server started right after.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts aiosmtpd on `port` and waits until it accepts connections.
    pub fn start_on(port: u16) -> SmtpServer {
        Self::start_with(port, &[])
    }

    /// Like [`SmtpServer::start_on`], with more aiosmtpd options (`--tlscert`, `--smtpscert`, …).
    pub fn start_with(port: u16, options: &[&std::ffi::OsStr]) -> SmtpServer {
        let dir = tempfile::tempdir().expect("temporary folder");
        let maildir = dir.path().join("maildir");
        let mut command = Command::new(python());
        command
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(options)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir);
        Self::launch(command, port, maildir, dir)
    }

    /// Starts an aiosmtpd that requires `AUTH` with `user` and `password` (over plain SMTP, so
    /// the test needs no certificate), on `port`.
    pub fn start_with_login(port: u16, user: &str, password: &str) -> SmtpServer {
        let dir = tempfile::tempdir().expect("temporary folder");
        let maildir = dir.path().join("maildir");
        let script = format!(
            r#"
import signal, sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult
def check(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == {user:?}.encode() and auth_data.password == {password:?}.encode()
    return AuthResult(success=ok)
controller = Controller(Mailbox(sys.argv[1]), hostname="127.0.0.1", port={port},
                        authenticator=check, auth_required=True, auth_require_tls=False)
controller.start()
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
threading.Event().wait()
"#
        );
        let mut command = Command::new(python());
        command.args(["-c", &script]).arg(&maildir);
        Self::launch(command, port, maildir, dir)
    }

    /// Starts the server and waits until it accepts connections.
    fn launch(
        mut command: Command,
        port: u16,
        maildir: PathBuf,
        dir: tempfile::TempDir,
    ) -> SmtpServer {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer {
            child,
            port,
            maildir,
            _dir: dir,
        }
    }

    /// The raw messages received so far.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        read_maildir(&self.maildir)
    }

    /// Waits until at least `n` messages have arrived (or the time is up); returns them.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + within;
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() > deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_maildir(maildir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(maildir.join(sub)).ok())
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
}

/// A private certificate authority and a certificate it signed for `localhost`, made with the
/// openssl command: (folder, CA file, certificate file, key file).
pub fn localhost_certificate() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = |name: &str| dir.path().join(name);
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=masterclass test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        path("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("extensions file");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    let (ca, cert, key) = (path("ca.pem"), path("server.pem"), path("server.key"));
    (dir, ca, cert, key)
}
