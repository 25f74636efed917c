//! The `[sandbox]` section: how `sluice up` starts the sandbox daemon and what `sluice serve` connects to,
//! resolved with its defaults and checked (backend names, timeouts, the sandbox uid, image caps).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::GatewayError;

/// The sandbox daemon: `sluice up` starts it beside the gateway, `sluice serve` connects to `socket`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSection {
    /// Offer the sandbox at all (default true); false makes every sandbox tool say it is not configured.
    pub enabled: Option<bool>,
    /// The daemon's Unix socket. `up`: where the daemon binds it (default `<data_dir>/sandbox.sock`);
    /// `serve`: the running daemon to connect to (no default: without it the sandbox is not configured).
    pub socket: Option<PathBuf>,
    /// `up`: the `sluice-sandbox` binary (default: the one next to the running `sluice`).
    pub daemon: Option<PathBuf>,
    /// `up`: the daemon's state directory (default `<data_dir>/sandbox`; a fresh directory under the
    /// system temp dir when the gateway runs as root, because the daemon's unprivileged uid cannot
    /// traverse the private data directory).
    pub root: Option<PathBuf>,
    /// `up`: `auto` (gVisor when it works, else native), `gvisor` or `native`.
    pub backend: Option<String>,
    /// `up`: start even when a required protection is missing (every status then says so).
    pub allow_degraded: Option<bool>,
    /// `up`: the sandbox's Python (default: the venv `sandbox/daemon/scripts/setup-python.sh` builds).
    pub python: Option<PathBuf>,
    /// `up`: modules the daemon's zygote imports before forking (default: numpy, pandas, pyarrow when
    /// the interpreter is the setup script's venv).
    pub preload: Option<Vec<String>>,
    /// `up` as root: the unprivileged uid sandboxed code runs as (default 65534, `nobody`).
    pub uid: Option<u32>,
    /// `up`: project directories mounted at `/projects/NAME`, as `NAME=PATH[:ro|rw]`.
    pub projects: Option<Vec<String>>,
    /// `up`: runs executing at once.
    pub max_concurrency: Option<u32>,
    /// `up`: open session workspaces at most.
    pub max_sessions: Option<u32>,
    /// `up`: idle session workspaces are removed after this many seconds.
    pub session_ttl_secs: Option<u64>,
    /// `up`, gVisor backend: a session's container (started by its first run, reused by the later ones)
    /// stops after this many seconds without a run (the daemon's default: 300).
    pub gvisor_idle_secs: Option<u64>,
    /// The largest `timeout` execute_code accepts, in seconds (default 300).
    pub max_timeout_secs: Option<u64>,
    /// `up`: address-space limit of each sandboxed process, in MiB.
    pub memory_mb: Option<u64>,
    /// `up`: size of each session's workspace, in MiB.
    pub workspace_mb: Option<u64>,
    /// `up`: bytes of stdout and of stderr kept per run.
    pub output_bytes: Option<u64>,
    /// `up`: the largest image under a workspace's `outputs/` a run's result carries, in bytes (default
    /// 1 MiB, at most 16 MiB); a larger one stays in the workspace and the result names it.
    pub image_bytes: Option<u64>,
    /// `up`: the most image bytes one run's result carries in all (default 4 MiB or `image_bytes` if
    /// larger, at most 16 MiB, at least `image_bytes`).
    pub images_total_bytes: Option<u64>,
    /// `up`: how long to wait for the daemon to answer `status` after starting it.
    pub start_timeout_ms: Option<u64>,
}

/// The sandbox settings after defaults; paths that depend on the host are settled when the daemon starts.
#[derive(Clone, Debug)]
pub struct SandboxSettings {
    pub enabled: bool,
    pub socket: Option<PathBuf>,
    pub daemon: Option<PathBuf>,
    pub root: Option<PathBuf>,
    pub backend: String,
    pub allow_degraded: bool,
    pub python: Option<PathBuf>,
    pub preload: Option<Vec<String>>,
    pub uid: Option<u32>,
    pub projects: Vec<String>,
    pub max_concurrency: Option<u32>,
    pub max_sessions: Option<u32>,
    pub session_ttl_secs: Option<u64>,
    pub gvisor_idle_secs: Option<u64>,
    pub max_timeout_secs: u64,
    pub memory_mb: Option<u64>,
    pub workspace_mb: Option<u64>,
    pub output_bytes: u64,
    pub image_bytes: u64,
    pub images_total_bytes: u64,
    pub start_timeout: Duration,
}

pub const DEFAULT_SANDBOX_MAX_TIMEOUT_SECS: u64 = 300;
/// Output kept per stream: enough for an agent to read, small enough for its context.
pub const DEFAULT_SANDBOX_OUTPUT_BYTES: u64 = 100_000;
/// The daemon's own image caps, per image and per run.
pub const DEFAULT_SANDBOX_IMAGE_BYTES: u64 = 1 << 20;
pub const DEFAULT_SANDBOX_IMAGES_TOTAL_BYTES: u64 = 4 << 20;

impl SandboxSection {
    pub(super) fn resolve(self) -> Result<SandboxSettings, GatewayError> {
        let backend = self.backend.unwrap_or_else(|| "auto".to_owned());
        if !["auto", "gvisor", "native"].contains(&backend.as_str()) {
            return Err(GatewayError::Config(format!(
                "[sandbox] backend '{backend}' is not one of auto, gvisor, native"
            )));
        }
        let max_timeout_secs = self.max_timeout_secs.unwrap_or(DEFAULT_SANDBOX_MAX_TIMEOUT_SECS);
        if max_timeout_secs == 0 {
            return Err(GatewayError::Config(
                "[sandbox] max_timeout_secs must be at least 1".to_owned(),
            ));
        }
        if self.gvisor_idle_secs == Some(0) {
            return Err(GatewayError::Config(
                "[sandbox] gvisor_idle_secs must be at least 1".to_owned(),
            ));
        }
        if self.uid == Some(0) {
            return Err(GatewayError::Config(
                "[sandbox] uid 0 is root; sandboxed code must run as an unprivileged uid".to_owned(),
            ));
        }
        let (image_bytes, images_total_bytes) = image_caps(self.image_bytes, self.images_total_bytes)?;
        Ok(SandboxSettings {
            enabled: self.enabled.unwrap_or(true),
            socket: self.socket,
            daemon: self.daemon,
            root: self.root,
            backend,
            allow_degraded: self.allow_degraded.unwrap_or(false),
            python: self.python,
            preload: self.preload,
            uid: self.uid,
            projects: self.projects.unwrap_or_default(),
            max_concurrency: self.max_concurrency,
            max_sessions: self.max_sessions,
            session_ttl_secs: self.session_ttl_secs,
            gvisor_idle_secs: self.gvisor_idle_secs,
            max_timeout_secs,
            memory_mb: self.memory_mb,
            workspace_mb: self.workspace_mb,
            output_bytes: self.output_bytes.unwrap_or(DEFAULT_SANDBOX_OUTPUT_BYTES),
            image_bytes,
            images_total_bytes,
            start_timeout: Duration::from_millis(self.start_timeout_ms.unwrap_or(60_000)),
        })
    }
}

/// `[sandbox] image_bytes` and `images_total_bytes` with their defaults, checked: each more than 0 and at
/// most the protocol's 16 MiB (a run's images must fit a frame), and the total at least the per-image cap.
/// Only `image_bytes` set above 4 MiB raises the total's default with it.
fn image_caps(image: Option<u64>, total: Option<u64>) -> Result<(u64, u64), GatewayError> {
    let max = sluice_sandbox_protocol::MAX_IMAGES_BYTES;
    let image = image.unwrap_or(DEFAULT_SANDBOX_IMAGE_BYTES);
    let total = total.unwrap_or(DEFAULT_SANDBOX_IMAGES_TOTAL_BYTES.max(image));
    for (name, value) in [("image_bytes", image), ("images_total_bytes", total)] {
        if value == 0 || value > max {
            return Err(GatewayError::Config(format!(
                "[sandbox] {name} must be between 1 and {max} (16 MiB), not {value}"
            )));
        }
    }
    if total < image {
        return Err(GatewayError::Config(format!(
            "[sandbox] images_total_bytes ({total}) must be at least image_bytes ({image}): an image within the \
             per-image cap could otherwise never be sent"
        )));
    }
    Ok((image, total))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use pretty_assertions::assert_eq;

    use super::super::tests::{refusal, write};
    use super::super::{Overrides, Settings};

    #[test]
    fn sandbox_section_is_read_and_checked() {
        let s = Settings::resolve(Overrides::default()).unwrap();
        assert!(s.sandbox.enabled && s.sandbox.socket.is_none());
        assert_eq!(s.sandbox_socket(), PathBuf::from(".sluice/sandbox.sock"));
        let (_dir, path) = write(
            "[sandbox]\nsocket = '/run/sb.sock'\nbackend = 'native'\npreload = ['pandas']\nmax_timeout_secs = 60\n",
        );
        let s = Settings::resolve(Overrides {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.sandbox_socket(), PathBuf::from("/run/sb.sock"));
        assert_eq!(
            (s.sandbox.backend.as_str(), s.sandbox.max_timeout_secs),
            ("native", 60)
        );
        for (text, expected) in [
            (
                "[sandbox]\nbackend = 'docker'\n",
                "backend 'docker' is not one of auto, gvisor, native",
            ),
            ("[sandbox]\nuid = 0\n", "uid 0 is root"),
            (
                "[sandbox]\ngvisor_idle_secs = 0\n",
                "gvisor_idle_secs must be at least 1",
            ),
            ("[sandbox]\npyhton = 'x'\n", "unknown field `pyhton`"),
        ] {
            let err = refusal(text);
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn sandbox_image_caps_are_read_and_checked() {
        type Caps = Result<(u64, u64), &'static str>;
        let check = |text: &str, expected: Caps| {
            let (_dir, path) = write(&format!("[sandbox]\n{text}"));
            let got = Settings::resolve(Overrides {
                config: Some(path),
                ..Default::default()
            })
            .map(|s| (s.sandbox.image_bytes, s.sandbox.images_total_bytes))
            .map_err(|e| e.to_string());
            match (got, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{text}"),
                (Err(err), Err(expected)) => assert!(err.contains(expected), "{text}: {err}"),
                (got, expected) => panic!("{text}: got {got:?}, expected {expected:?}"),
            }
        };
        let cases: Vec<(&str, Caps)> = vec![
            ("", Ok((1 << 20, 4 << 20))),
            ("image_bytes = 2000000\n", Ok((2_000_000, 4 << 20))),
            ("image_bytes = 8388608\n", Ok((8 << 20, 8 << 20))),
            ("images_total_bytes = 1048576\n", Ok((1 << 20, 1 << 20))),
            (
                "image_bytes = 1000\nimages_total_bytes = 16777216\n",
                Ok((1000, 16 << 20)),
            ),
            (
                "image_bytes = 0\n",
                Err("[sandbox] image_bytes must be between 1 and 16777216 (16 MiB), not 0"),
            ),
            (
                "image_bytes = 16777217\n",
                Err("[sandbox] image_bytes must be between 1 and 16777216 (16 MiB), not 16777217"),
            ),
            (
                "images_total_bytes = 0\n",
                Err("[sandbox] images_total_bytes must be between 1 and 16777216"),
            ),
            (
                "images_total_bytes = 33554432\n",
                Err("[sandbox] images_total_bytes must be between 1 and 16777216"),
            ),
            (
                "image_bytes = 2000000\nimages_total_bytes = 1000000\n",
                Err("[sandbox] images_total_bytes (1000000) must be at least image_bytes (2000000)"),
            ),
            (
                "images_total_bytes = 1000\n",
                Err("must be at least image_bytes (1048576)"),
            ),
            ("image_bytes = -1\n", Err("invalid value")),
        ];
        for (text, expected) in cases {
            check(text, expected);
        }
    }
}
