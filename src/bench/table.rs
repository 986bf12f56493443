//! The report as text: a short table per scenario.

use std::collections::BTreeMap;
use std::fmt;

use super::report::{BenchReport, CpuReport, Latency};

impl BenchReport {
    pub(super) fn tables(&self) -> String {
        let mut text = String::new();
        let cpu = self.machine.cpu_model.as_deref().unwrap_or("unknown CPU");
        let head = format!(
            "{} cores ({cpu}), concurrency {}",
            self.machine.cores, self.concurrency
        );
        if let Some(f) = &self.flash {
            text += &format!(
                "\nflash sale - {}, {head}: {} attempts for {} seats\n",
                self.backend, f.attempts, f.capacity
            );
            text += &row(
                "throughput",
                format!(
                    "{:.1} attempts/s, {:.1} confirmed/s ({:.2} s in all; sold out after {})",
                    f.attempts_per_s,
                    f.confirmed_per_s,
                    f.seconds,
                    ms(f.sold_out_after_ms)
                ),
            );
            text += &row("latency", f.latency_ms.to_string());
            text += &row(
                "answers",
                format!(
                    "{} booked (201), {} session-full (409), {} errors{}",
                    f.confirmed,
                    f.session_full,
                    f.errors,
                    kinds(&f.error_kinds)
                ),
            );
            text += &row(
                "oversell",
                format!(
                    "{} ({} confirmed seats read back for capacity {}; seats_left {})",
                    f.oversell, f.confirmed_read_back, f.capacity, f.seats_left
                ),
            );
            text += &row("CPU/booking", f.cpu.to_string());
            if let Some(per_attempt) = f.cpu.total_ms_per_attempt {
                text += &row(
                    "CPU/attempt",
                    format!(
                        "{per_attempt:.3} ms ({}, refused attempts included)",
                        if self.backend == "postgres" {
                            "service + postgres"
                        } else {
                            "service"
                        }
                    ),
                );
            }
        }
        if let Some(s) = &self.steady {
            text += &format!(
                "\nsteady - {}, {head}: {} bookings over {} sessions\n",
                self.backend, s.bookings, s.sessions
            );
            text += &row(
                "throughput",
                format!(
                    "{:.1} bookings/s ({:.2} s in all)",
                    s.bookings_per_s, s.seconds
                ),
            );
            text += &row("latency", s.latency_ms.to_string());
            text += &row(
                "answers",
                format!(
                    "{} booked (201), {} errors{}; {} seats taken read back",
                    s.confirmed,
                    s.errors,
                    kinds(&s.error_kinds),
                    s.seats_taken_read_back
                ),
            );
            text += &row("CPU/booking", s.cpu.to_string());
        }
        if let Some(p) = &self.pages {
            text += &format!(
                "\nprogramme page - {}, {head}: {} requests, {} sessions on the page\n",
                self.backend, p.requests, p.sessions
            );
            text += &row(
                "throughput",
                format!("{:.1} pages/s ({:.2} s in all)", p.pages_per_s, p.seconds),
            );
            text += &row("latency", p.latency_ms.to_string());
            text += &row(
                "answers",
                format!(
                    "{} served (200), {} errors{}",
                    p.served,
                    p.errors,
                    kinds(&p.error_kinds)
                ),
            );
            text += &row(
                "page weight",
                format!(
                    "{} bytes of HTML, {} bytes of stylesheet and script (cached for a year)",
                    p.page_bytes, p.assets_bytes
                ),
            );
            text += &row(
                "CPU/page",
                match (p.cpu.service_ms_per_booking, p.cpu.postgres_ms_per_booking) {
                    (Some(service), Some(postgres)) => {
                        format!("service {service:.3} ms + postgres {postgres:.3} ms per page")
                    }
                    (Some(service), None) => format!("service {service:.3} ms per page"),
                    _ => "not measured".to_owned(),
                },
            );
        }
        if let Some(error) = &self.error {
            text += &format!("\nincomplete: {error}\n");
        }
        text
    }
}

impl fmt::Display for CpuReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(service) = self.service_ms_per_booking else {
            return write!(
                f,
                "not measured (start the server with --database, or give --server-pid)"
            );
        };
        write!(f, "service {service:.3} ms")?;
        if let Some(postgres) = self.postgres_ms_per_booking {
            write!(f, " + postgres {postgres:.3} ms")?;
        }
        if let Some(total) = self.total_ms_per_booking {
            write!(f, " = {total:.3} ms per confirmed booking")?;
        }
        write!(f, " (over the run: service {}", ms(self.service_ms))?;
        if self.postgres_ms.is_some() {
            write!(f, ", postgres {}", ms(self.postgres_ms))?;
        }
        if self.postgres_backends_ms.is_some() {
            write!(
                f,
                " of which bench backends {}",
                ms(self.postgres_backends_ms)
            )?;
        }
        write!(f, ", bench client {})", ms(self.bench_client_ms))
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {} / p99 {} / max {}",
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"))
}

pub(super) fn row(label: &str, value: String) -> String {
    format!("  {label:<12} {value}\n")
}

fn kinds(kinds: &BTreeMap<String, usize>) -> String {
    if kinds.is_empty() {
        return String::new();
    }
    let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} x {k}")).collect();
    format!(": {}", list.join(", "))
}
