//! CPU time of processes on this machine, from /proc: where a phase's time went.

/// User and system CPU seconds process `pid` has used so far; `None` when it is gone.
pub fn seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // /proc reports clock ticks of USER_HZ, 100 per second on Linux.
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// The sum over `pids` (the local control plane's processes; none for a remote cluster).
pub fn total(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&p| seconds(p)).sum()
}
