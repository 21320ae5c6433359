//! Process and machine figures for benchmarks, read from /proc (Linux); `None` elsewhere.

/// Resident set size now, in MiB.
pub fn rss_mb() -> Option<f64> {
    status_kib("VmRSS:").map(|k| k / 1024.0)
}

/// Peak resident set size of this process, in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    status_kib("VmHWM:").map(|k| k / 1024.0)
}

fn status_kib(field: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn ticks_per_second() -> f64 {
    // USER_HZ is 100 on every Linux architecture Quiver runs on.
    100.0
}

/// CPU seconds used by this process (user + system).
pub fn process_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

/// CPU seconds the whole machine spent busy (or stolen by the hypervisor).
pub fn machine_busy_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy =
        v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7).unwrap_or(&0.0);
    Some(busy / ticks_per_second())
}

/// Measures a closure: wall seconds, this process's CPU ÷ wall, and everything else's CPU ÷ wall.
pub struct Measured {
    pub wall_s: f64,
    pub cpu_util: Option<f64>,
    pub other_cpu: Option<f64>,
}

pub fn measure(f: impl FnOnce()) -> Measured {
    let (p0, m0) = (process_cpu_s(), machine_busy_s());
    let t = std::time::Instant::now();
    f();
    let wall_s = t.elapsed().as_secs_f64();
    let (p1, m1) = (process_cpu_s(), machine_busy_s());
    let own = p0.zip(p1).map(|(a, b)| b - a);
    let all = m0.zip(m1).map(|(a, b)| b - a);
    Measured {
        wall_s,
        cpu_util: own.map(|o| o / wall_s),
        other_cpu: own.zip(all).map(|(o, a)| ((a - o) / wall_s).max(0.0)),
    }
}
