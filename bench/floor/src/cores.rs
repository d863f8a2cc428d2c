//! Which CPU a thread runs on: `--receiver-core` lists (`0` or `0,1`) and
//! pinning the calling thread.

use std::io;

/// CPU numbers at or above this do not fit a `cpu_set_t`.
const CPU_MAX_EXCLUSIVE: usize = libc::CPU_SETSIZE as usize;

/// A comma-separated list of CPUs, one or more; thread `i` of a group runs
/// on `cpus[i % len]`, as SO_REUSEPORT shards pinned with `--cores` do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreList(Vec<usize>);

impl CoreList {
    /// Parses `0` or `0,1,3`; refuses empty entries, non-numbers and CPUs
    /// beyond what the kernel's CPU sets hold.
    pub fn parse(s: &str) -> Result<CoreList, String> {
        let want = "a CPU number or a comma-separated list of them (e.g. 0 or 0,1) is needed";
        let cpus = s
            .split(',')
            .map(|c| c.trim().parse::<usize>().map_err(|_| want.to_string()))
            .collect::<Result<Vec<usize>, String>>()?;
        if let Some(cpu) = cpus.iter().find(|c| **c >= CPU_MAX_EXCLUSIVE) {
            return Err(format!("CPU {cpu} is beyond {}", CPU_MAX_EXCLUSIVE - 1));
        }
        Ok(CoreList(cpus))
    }

    /// The CPU of thread `i` of a group.
    pub fn for_thread(&self, i: usize) -> usize {
        self.0[i % self.0.len()]
    }

    pub fn as_slice(&self) -> &[usize] {
        &self.0
    }
}

/// Pins the calling thread to `core`.
pub fn pin(core: usize) -> io::Result<()> {
    if core >= CPU_MAX_EXCLUSIVE {
        return Err(io::Error::other(format!(
            "pin to CPU {core}: beyond {}",
            CPU_MAX_EXCLUSIVE - 1
        )));
    }
    // SAFETY: `set` is a plain bit set initialised by CPU_ZERO before use,
    // and `core` is within it (checked above).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                err.kind(),
                format!("pin to CPU {core}: {err}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cpu_or_a_list_is_taken_and_threads_go_round_it() {
        let one = CoreList::parse("3").expect("one CPU");
        assert_eq!((one.for_thread(0), one.for_thread(1)), (3, 3));
        let two = CoreList::parse("0,1").expect("a list");
        assert_eq!(two.as_slice(), [0, 1]);
        assert_eq!(
            (two.for_thread(0), two.for_thread(1), two.for_thread(2)),
            (0, 1, 0)
        );
    }

    #[test]
    fn a_bad_list_is_refused_with_what_is_needed() {
        for bad in ["", "0,", ",1", "a", "0;1", "-1", "1,x"] {
            let e = CoreList::parse(bad).expect_err(bad);
            assert!(e.contains("comma-separated list"), "{bad}: {e}");
        }
        assert!(CoreList::parse("0,99999")
            .expect_err("too big")
            .contains("beyond"));
    }
}
