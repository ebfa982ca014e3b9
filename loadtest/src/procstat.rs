//! CPU time and resident memory of a process, from `/proc/<pid>/stat` and `/proc/<pid>/status`.

use std::time::{Duration, Instant};

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), 100 if it cannot be read.
pub fn clock_ticks() -> u64 {
    use nix::unistd::{SysconfVar, sysconf};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

/// User + system CPU time of `pid` (all its threads); `None` if the process is gone.
/// `pid = None` reads `/proc/self`.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces: fields are counted after its ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks();
    Some(Duration::from_micros((utime + stime) * 1_000_000 / ticks))
}

/// Resident set size of `pid` in bytes (`VmRSS`).
pub fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// [`rss_bytes`] of another process.
pub fn rss_of(pid: u32) -> Option<u64> {
    rss_bytes(Some(pid))
}

/// Busy and total jiffies of the whole machine (first line of `/proc/stat`).
pub fn machine_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = text
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    Some((total - idle, total))
}

/// CPUs of the machine (the `cpuN` lines of `/proc/stat`; not this thread's affinity).
pub fn cpus() -> usize {
    std::fs::read_to_string("/proc/stat")
        .map(|t| {
            t.lines()
                .filter(|l| {
                    l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
                })
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

/// A CPU-time reading at an instant, to take deltas of.
#[derive(Clone, Copy, Debug)]
pub struct CpuSample {
    pub at: Instant,
    pub cpu: Option<Duration>,
    /// Machine-wide busy and total jiffies at the same moment.
    pub machine: Option<(u64, u64)>,
}

impl CpuSample {
    pub fn take(pid: Option<u32>) -> Self {
        CpuSample {
            at: Instant::now(),
            cpu: cpu_time(pid),
            machine: machine_jiffies(),
        }
    }

    /// CPU time used between `earlier` and `self`.
    pub fn cpu_since(&self, earlier: &CpuSample) -> Option<Duration> {
        Some(self.cpu?.saturating_sub(earlier.cpu?))
    }

    /// Whole-machine CPU use between `earlier` and `self`, in percent of one core
    /// (200% = both cores of a 2-core machine busy).
    pub fn machine_percent_since(&self, earlier: &CpuSample) -> Option<f64> {
        let (b1, t1) = self.machine?;
        let (b0, t0) = earlier.machine?;
        let dt = t1.checked_sub(t0).filter(|d| *d > 0)?;
        Some(b1.saturating_sub(b0) as f64 / dt as f64 * cpus() as f64 * 100.0)
    }

    /// CPU use between `earlier` and `self` in percent of one core.
    pub fn percent_since(&self, earlier: &CpuSample) -> Option<f64> {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 {
            return None;
        }
        Some(self.cpu_since(earlier)?.as_secs_f64() / wall * 100.0)
    }
}

/// Pins the calling thread (and the threads it spawns later) to one CPU.
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    use nix::sched::{CpuSet, sched_setaffinity};
    use nix::unistd::Pid;
    let mut set = CpuSet::new();
    set.set(cpu).map_err(|e| format!("cpu {cpu}: {e}"))?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|e| format!("sched_setaffinity({cpu}): {e}"))
}

/// Nanoseconds of CPU time the calling thread has used.
pub fn thread_cpu_ns() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_self() {
        assert!(cpu_time(None).is_some());
        assert!(rss_bytes(None).unwrap() > 0);
        assert!(clock_ticks() > 0);
    }
}
