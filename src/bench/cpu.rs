//! CPU time of the server, of PostgreSQL and of the bench itself, read from `/proc` (Linux) before
//! and after a scenario.

use std::path::Path;

/// Clock ticks per second in `/proc/<pid>/stat`. This is USER_HZ, which Linux fixes at 100 for
/// user space on every common architecture; reading it with `sysconf(_SC_CLK_TCK)` would need
/// `libc` and `unsafe` for a value that does not change.
const TICKS_PER_SECOND: f64 = 100.0;

/// What to measure.
pub struct Probe {
    server_pid: Option<u32>,
    /// The scratch database, whose backends are also counted on their own.
    database: Option<String>,
    postgres: bool,
}

/// CPU seconds at one instant; `None` where it could not be read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    server: Option<f64>,
    postgres: Option<f64>,
    backends: Option<f64>,
    bench: Option<f64>,
}

/// CPU milliseconds spent between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    pub server_ms: Option<f64>,
    /// Every `postgres` process: backends, WAL writer, checkpointer, and backends that exited.
    pub postgres_ms: Option<f64>,
    /// Only the backends connected to the scratch database.
    pub backends_ms: Option<f64>,
    /// The load generator (this process), which shares the machine with the server.
    pub bench_ms: Option<f64>,
}

impl Probe {
    pub fn new(server_pid: Option<u32>, database: Option<String>, postgres: bool) -> Self {
        Self {
            server_pid,
            database,
            postgres,
        }
    }

    pub fn sample(&self) -> Sample {
        let (postgres, backends) = if self.postgres {
            postgres_seconds(self.database.as_deref())
        } else {
            (None, None)
        };
        Sample {
            server: self
                .server_pid
                .and_then(|pid| process_seconds(&format!("/proc/{pid}/stat")))
                .map(|t| t.own),
            postgres,
            backends,
            bench: process_seconds("/proc/self/stat").map(|t| t.own),
        }
    }
}

impl Sample {
    pub fn until(self, later: Sample) -> Spent {
        let ms = |a: Option<f64>, b: Option<f64>| Some(((b? - a?) * 1000.0).max(0.0));
        Spent {
            server_ms: ms(self.server, later.server),
            postgres_ms: ms(self.postgres, later.postgres),
            backends_ms: ms(self.backends, later.backends),
            bench_ms: ms(self.bench, later.bench),
        }
    }
}

/// Whether any PostgreSQL process can be seen from here.
pub fn postgres_visible() -> bool {
    std::fs::read_dir("/proc").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| comm_is_postgres(&e.path().join("comm")))
    })
}

struct Times {
    /// utime + stime of the process (all its threads).
    own: f64,
    /// cutime + cstime: children it has reaped.
    children: f64,
}

fn process_seconds(stat_path: &str) -> Option<Times> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) .. cstime (17) sit at 11..=14 here.
    let tick = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let own = tick(11)? + tick(12)?;
    let children = tick(13)? + tick(14)?;
    Some(Times {
        own: own as f64 / TICKS_PER_SECOND,
        children: children as f64 / TICKS_PER_SECOND,
    })
}

fn comm_is_postgres(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|comm| comm.trim_end() == "postgres")
}

/// Seconds of every `postgres` process, and of the backends of `database` alone.
///
/// The postmaster's reaped-children time is included, so a backend that exits between two
/// samples still counts. Other databases' work on the same server counts too: compare with the
/// backends-only figure when the machine is shared.
fn postgres_seconds(database: Option<&str>) -> (Option<f64>, Option<f64>) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (None, None);
    };
    let needle = database.map(|name| format!(" {name} "));
    let mut all = 0.0;
    let mut backends = 0.0;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid || !comm_is_postgres(&path.join("comm")) {
            continue;
        }
        // A process that ends while we look is simply skipped (the postmaster has its time).
        let Some(times) = process_seconds(&format!("{}/stat", path.display())) else {
            continue;
        };
        all += times.own + times.children;
        if let Some(needle) = &needle {
            // A backend's title reads "postgres: USER DATABASE HOST(PORT) STATE".
            let title = std::fs::read(path.join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&title).contains(needle.as_str()) {
                backends += times.own;
            }
        }
    }
    (Some(all), needle.map(|_| backends))
}

#[cfg(test)]
mod tests {
    use super::process_seconds;

    #[test]
    fn this_process_has_a_readable_cpu_time() {
        assert!(process_seconds("/proc/self/stat").is_some_and(|t| t.own >= 0.0));
    }
}
