//! Where the daemon itself runs: on a host kernel, or inside a gVisor container (Docker's `runsc`
//! runtime). Under gVisor every system call of the daemon, its zygote and the code it runs is answered by
//! gVisor's kernel, which is a protection of its own and changes what the backends can do there, so it is
//! detected and reported, never assumed.

use sluice_sandbox_protocol::{Protection, ProtectionState};

/// The kernel release gVisor reports to everything inside it.
pub const GVISOR_RELEASE: &str = "4.4.0";
/// The fixed `/proc/version` build stamp of gVisor's kernel (no real 4.4.0 kernel was built then).
pub const GVISOR_BUILD: &str = "#1 SMP Sun Jan 10 15:06:54 PST 2016";

/// The daemon runs inside gVisor: what gave it away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OuterGvisor {
    pub evidence: String,
}

/// Decides from the kernel's own description whether this process runs under gVisor (pure).
/// `proc_version` is `/proc/version`, `release` is `uname -r`, `kmsg` is the start of the kernel log when
/// it could be read (gVisor's begins with "Starting gVisor...").
pub fn detect(proc_version: &str, release: &str, kmsg: Option<&str>) -> Option<OuterGvisor> {
    if let Some(log) = kmsg
        && log.contains("Starting gVisor")
    {
        return Some(OuterGvisor {
            evidence: "the kernel log starts with \"Starting gVisor...\"".to_string(),
        });
    }
    let release = release.trim();
    if release == GVISOR_RELEASE && proc_version.contains(GVISOR_BUILD) {
        return Some(OuterGvisor {
            evidence: format!("the kernel reports release {release} built \"{GVISOR_BUILD}\" (gVisor's)"),
        });
    }
    None
}

/// Looks at this process's kernel.
pub fn detect_here() -> Option<OuterGvisor> {
    let version = std::fs::read_to_string("/proc/version").unwrap_or_default();
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    detect(&version, &release, None)
}

/// The protection `status` and `doctor` list for it. Optional: its absence is the normal case on a host
/// kernel, and a daemon inside gVisor still needs its own protections to separate sessions.
pub fn protection(outer: Option<&OuterGvisor>) -> Protection {
    match outer {
        Some(g) => Protection {
            name: "gvisor_container".to_string(),
            state: ProtectionState::Active,
            required: false,
            detail: format!(
                "the daemon and every run are inside a gVisor container ({}): gVisor's kernel answers \
                 their system calls, with no network",
                g.evidence
            ),
        },
        None => Protection {
            name: "gvisor_container".to_string(),
            state: ProtectionState::Missing,
            required: false,
            detail: "the daemon runs on the host's kernel (not inside a gVisor container)".to_string(),
        },
    }
}

/// Why a backend that cannot build its sessions fails inside gVisor, for the start-up error.
pub fn unsupported_inside(outer: &OuterGvisor, missing: &str, detail: &str) -> String {
    format!(
        "this daemon runs inside a gVisor container ({}), whose kernel does not give the daemon what its \
         {missing} needs ({detail}): gVisor lets an unprivileged process create a user namespace but not \
         mount in it, and has no pidfd_open, so sessions (a tmpfs workspace per session, a launcher holding \
         a pidfd per run) cannot be built that way. Start the daemon as root of the container (`user: \"0\"`, \
         with CAP_SYS_ADMIN among its capabilities) so that it uses its in-gVisor mode (`--backend \
         gvisor-container`, docker-compose.yml), or run the sandbox service with runc and the native backend \
         (docker-compose.native.yml)",
        outer.evidence
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn check(proc_version: &str, release: &str, kmsg: Option<&str>, expected: Option<&str>) {
        let got = detect(proc_version, release, kmsg).map(|g| g.evidence);
        assert_eq!(got.as_deref(), expected, "{proc_version:?} {release:?} {kmsg:?}");
    }

    #[test]
    fn detects_gvisor_from_the_kernel_description() {
        let gvisor = "Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016";
        let by_version =
            Some("the kernel reports release 4.4.0 built \"#1 SMP Sun Jan 10 15:06:54 PST 2016\" (gVisor's)");
        let by_log = Some("the kernel log starts with \"Starting gVisor...\"");
        // What `runsc` (Debian's 2022 build) shows inside a container.
        check(gvisor, "4.4.0", None, by_version);
        check(&format!("{gvisor}\n"), "4.4.0\n", None, by_version);
        check(
            gvisor,
            "4.4.0",
            Some("[    0.000000] Starting gVisor...\n[    0.1] Granting licence to kill(2)..."),
            by_log,
        );
        // The log alone is enough (a gVisor build that reports another release).
        check(
            "Linux version 6.0.0",
            "6.0.0",
            Some("[ 0.0] Starting gVisor..."),
            by_log,
        );
        // Real kernels, including a real 4.4.0 built at another time.
        check(
            "Linux version 6.18.44-fc-v1272 (root@build) (gcc 12.2.0) #1 SMP PREEMPT_DYNAMIC",
            "6.18.44-fc-v1272",
            None,
            None,
        );
        check(
            "Linux version 4.4.0-210-generic (buildd@lgw01) #242-Ubuntu SMP Fri Apr 16 09:57:56 UTC 2021",
            "4.4.0-210-generic",
            None,
            None,
        );
        check(
            "Linux version 4.4.0 #1 SMP Mon Feb 1 00:00:00 UTC 2016",
            "4.4.0",
            None,
            None,
        );
        check("Linux version 6.1.0", "6.1.0", Some("[ 0.0] Booting Linux"), None);
        check("", "", None, None);
    }

    #[test]
    fn the_protection_says_where_the_daemon_runs() {
        let inside = protection(Some(&OuterGvisor { evidence: "x".into() }));
        assert_eq!(
            (inside.name.as_str(), inside.state, inside.required),
            ("gvisor_container", ProtectionState::Active, false)
        );
        assert!(inside.detail.contains("inside a gVisor container (x)"));
        let outside = protection(None);
        assert_eq!(
            (outside.state, outside.required),
            (ProtectionState::Missing, false)
        );
    }
}
