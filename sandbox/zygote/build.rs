//! Links the interpreter `PYO3_PYTHON` names on purpose: an rpath to its library directory, so the loader
//! finds that `libpython` first rather than whichever one comes first on its path; and its version,
//! which the zygote compares with the sandbox venv's at start.

fn main() {
    let cfg = pyo3_build_config::get();
    if let Some(lib_dir) = cfg.lib_dir() {
        // DT_RPATH rather than DT_RUNPATH: searched before LD_LIBRARY_PATH, too.
        println!("cargo:rustc-link-arg-bins=-Wl,--disable-new-dtags,-rpath,{lib_dir}");
    }
    println!(
        "cargo:rustc-env=SLUICE_ZYGOTE_PYTHON_VERSION={}.{}",
        cfg.version().major,
        cfg.version().minor
    );
    println!(
        "cargo:rustc-env=SLUICE_ZYGOTE_PYTHON={}",
        cfg.executable().unwrap_or("(unknown)")
    );
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
