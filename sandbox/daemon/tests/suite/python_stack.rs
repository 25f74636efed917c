//! The sandbox's data stack (`scripts/setup-python.sh`): pandas, pyarrow, duckdb and numpy work in a
//! run, and a zygote that preloads them stays single-threaded.

use pretty_assertions::assert_eq;
use sluice_sandbox_protocol::*;

use super::harness::*;

#[test]
fn pandas_aggregation_runs_in_the_sandbox() {
    let Some(python) = sandbox_venv_python() else {
        return;
    };
    for kind in backends() {
        eprintln!("backend: {kind:?}");
        let d = Daemon::start_backend(kind, &["--python", &python, "--preload", "numpy,pandas,pyarrow"]);
        if kind == Kind::Native {
            // The zygote (the daemon's one direct python child) preloaded numpy, pandas and pyarrow and
            // must still have a single thread, or forking it would be unsafe.
            let zygote = d
                .sandbox_processes()
                .into_iter()
                .find(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/stat"))
                        .ok()
                        .and_then(|s| {
                            s.rsplit_once(") ")
                                .map(|(_, r)| r.split(' ').nth(1).map(str::to_string))
                        })
                        .flatten()
                        == Some(d.pid().to_string())
                })
                .expect("zygote");
            let status = std::fs::read_to_string(format!("/proc/{zygote}/status")).unwrap();
            assert!(status.contains("Threads:\t1\n"), "{status}");
        }
        let mut c = d.client();
        let s = session("pandas");
        open(&mut c, &s);
        let req = RunPython {
            session: s.clone(),
            code: "import duckdb, numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq\n\
                   df = pd.read_csv('orders.csv')\n\
                   print(df.groupby('region')['total'].sum().sort_index().to_dict())\n\
                   pq.write_table(pa.Table.from_pandas(df), 'orders.parquet')\n\
                   print(duckdb.sql(\"select region, sum(total) from 'orders.parquet' group by 1 order by 1\").fetchall())\n\
                   print(float(np.mean(df['total'])))"
                .into(),
            inputs: vec![InputFile {
                path: "orders.csv".into(),
                content: "region,total\neu,10.5\nus,4\neu,1.5\nus,2\n".into(),
            }],
            timeout_ms: Some(120_000),
            // The harness's maximum; the stack's imports fit in it.
            memory_mb: Some(1024),
        };
        let Response::RunPython(r) = c.call(Request::RunPython(req)).unwrap() else {
            panic!()
        };
        assert_eq!(
            r.stdout.text, "{'eu': 12.0, 'us': 6.0}\n[('eu', 12.0), ('us', 6.0)]\n4.5\n",
            "{kind:?}: {r:?}"
        );
        assert_eq!(r.exit.code, Some(0));
        assert!(
            r.files.iter().any(|f| f.path == "orders.parquet"),
            "{:?}",
            r.files
        );
        d.assert_serving();
    }
}

/// DuckDB starts a thread per core on its first query; with glibc's default of a 64 MiB malloc arena
/// reservation per thread, that alone took a run with the stack preloaded to about 1 GB of address space,
/// over a 640 MiB limit (and, now and then, over the 1 GiB default). Runs allow two arenas: the same
/// query fits with room to spare, on both backends.
#[test]
fn duckdb_threads_fit_within_a_runs_memory_limit() {
    let Some(python) = sandbox_venv_python() else {
        return;
    };
    for kind in backends() {
        let d = Daemon::start_backend(kind, &["--python", &python, "--preload", "numpy,pandas,pyarrow"]);
        let mut c = d.client();
        let s = session("duckdb-threads");
        open(&mut c, &s);
        let r = run_with(
            &mut c,
            &s,
            "import duckdb\nprint(duckdb.sql('select count(*) from range(1000000)').fetchall())",
            Some(120_000),
            Some(640),
        );
        assert_eq!(r.stdout.text, "[(1000000,)]\n", "{kind:?}: {r:?}");
        assert_eq!(r.exit.code, Some(0), "{kind:?}: {r:?}");
    }
}
