//! A progress line on stderr: redrawn in place on a terminal, a line every few seconds
//! otherwise (so that logs of long imports stay readable).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    label: String,
    total: Option<u64>,
    start: Instant,
    last: Instant,
    tty: bool,
    unit: &'static str,
}

fn human(n: u64, unit: &str) -> String {
    if unit == "B" {
        let mib = n as f64 / (1u64 << 20) as f64;
        format!("{mib:.1} MiB")
    } else {
        format!("{n} {unit}")
    }
}

impl Progress {
    pub fn new(label: &str, total: Option<u64>, unit: &'static str) -> Progress {
        let now = Instant::now();
        Progress {
            label: label.to_string(),
            total,
            start: now,
            last: now - Duration::from_secs(60),
            tty: std::io::stderr().is_terminal(),
            unit,
        }
    }

    pub fn update(&mut self, done: u64, extra: &str) {
        let every = if self.tty {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(5)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        self.draw(done, extra, false);
    }

    fn draw(&self, done: u64, extra: &str, end: bool) {
        let secs = self.start.elapsed().as_secs_f64();
        let mut line = format!("{}: {}", self.label, human(done, self.unit));
        if let Some(total) = self.total.filter(|&t| t > 0) {
            let frac = done as f64 / total as f64;
            line += &format!(" / {} ({:.0}%)", human(total, self.unit), 100.0 * frac);
            if !end && frac > 0.0 {
                line += &format!(", ETA {:.0}s", secs * (1.0 - frac) / frac);
            }
        }
        line += &format!(", {secs:.1}s");
        if !extra.is_empty() {
            line += ", ";
            line += extra;
        }
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            if end {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
    }

    pub fn finish(&self, done: u64, extra: &str) {
        self.draw(done, extra, true);
    }
}
