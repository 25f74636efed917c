//! The settings a command runs with: defaults, the config file, SLUICE_* variables and flags, with the
//! master keys read from the environment or the files it names.

use std::path::PathBuf;

use anyhow::Result;
use sluice_connectors::Dsn;
use sluice_core::config::{Overrides, Settings};
use sluice_core::secrets::Secret;

use super::{Common, ServeArgs};

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `SLUICE_MASTER_KEY`, or the contents of the file `SLUICE_MASTER_KEY_FILE` names (a compose secret);
/// both at once is refused rather than one silently winning.
fn master_key_from_env() -> Result<Option<Secret<String>>> {
    key_from_env("SLUICE_MASTER_KEY", "the master key")
}

/// `SLUICE_MASTER_KEY_PREVIOUS` or `SLUICE_MASTER_KEY_PREVIOUS_FILE`: the key being rotated away from.
fn previous_master_key_from_env() -> Result<Option<Secret<String>>> {
    key_from_env("SLUICE_MASTER_KEY_PREVIOUS", "the previous master key")
}

/// `$VAR` inline or `$VAR_FILE` naming a file, not both.
fn key_from_env(var: &str, what: &str) -> Result<Option<Secret<String>>> {
    let file_var = format!("{var}_FILE");
    let inline = env_nonempty(var);
    let file = env_nonempty(&file_var);
    match (inline, file) {
        (Some(_), Some(_)) => {
            anyhow::bail!("set {var} or {file_var}, not both")
        }
        (Some(key), None) => Ok(Some(Secret::new(key))),
        (None, Some(path)) => Ok(Some(sluice_core::config::read_secret_file(
            std::path::Path::new(&path),
            &format!("{what} ({file_var})"),
        )?)),
        (None, None) => Ok(None),
    }
}

pub(super) fn settings(common: &Common, serve: Option<&ServeArgs>) -> Result<Settings> {
    let mut overrides = Overrides {
        config: common.config.clone(),
        data_dir: common.data_dir.clone(),
        master_key: master_key_from_env()?,
        master_key_previous: previous_master_key_from_env()?,
        store_url: env_nonempty("SLUICE_STORE_URL").map(Dsn::new),
        store_password_file: env_nonempty("SLUICE_STORE_PASSWORD_FILE").map(PathBuf::from),
        first_key_file: env_nonempty("SLUICE_FIRST_KEY_FILE").map(PathBuf::from),
        ..Overrides::default()
    };
    if let Some(s) = serve {
        overrides.listen = s.listen.clone();
        overrides.max_rows = s.max_rows;
        overrides.query_timeout_ms = s.query_timeout_ms;
        overrides.stateless = s.stateless;
        overrides.allowed_hosts = s.allowed_hosts.clone();
        overrides.sandbox = s.sandbox;
    }
    Ok(Settings::resolve(overrides)?)
}
