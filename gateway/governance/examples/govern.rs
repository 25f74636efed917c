//! Prints the verdict and the redaction for SQL given on the command line: `govern <dialect> <sql>…`.

use sluice_governance::{Dialect, Policy, govern, redact};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dialect) = args
        .next()
        .and_then(|k| Dialect::from_kind(&k).or((k == "generic").then_some(Dialect::Unknown)))
    else {
        eprintln!("usage: govern <dialect> <sql>…");
        std::process::exit(2);
    };
    let policy = Policy {
        denied_tables: vec!["secrets".into(), "hr.salaries".into()],
        denied_schemas: vec!["vault".into()],
        denied_columns: vec!["users.ssn".into(), "users.password_hash".into()],
        ..Policy::default()
    };
    for sql in args {
        let verdict = govern(&sql, dialect, &policy, 1000);
        println!("{sql}\n  => {:?}", verdict.decision);
        for f in &verdict.findings {
            println!("     {} {:?} {:?}: {}", f.rule, f.severity, f.span, f.message);
        }
        println!("  redacted: {:?}", redact(&sql, dialect).text);
    }
}
