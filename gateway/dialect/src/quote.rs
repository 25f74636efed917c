//! Identifier quoting: the quote character a dialect uses, doubled inside the name.

/// How generated SQL quotes identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quoting {
    /// `"name"`: the SQL standard; DuckDB, PostgreSQL, SQLite, Snowflake, SQL Server, Redshift.
    Double,
    /// `` `name` ``: MySQL and MariaDB, BigQuery, Databricks.
    Backtick,
}

impl Quoting {
    fn char(self) -> char {
        match self {
            Quoting::Double => '"',
            Quoting::Backtick => '`',
        }
    }

    /// Quotes one identifier, doubling the quote character inside it. Every name is quoted, whatever it
    /// holds, so a name can never end the quoted part early or be read as a keyword.
    pub fn ident(self, name: &str) -> String {
        let q = self.char();
        let mut out = String::with_capacity(name.len() + 2);
        out.push(q);
        for c in name.chars() {
            if c == q {
                out.push(q);
            }
            out.push(c);
        }
        out.push(q);
        out
    }

    /// A dotted name (`schema.table`, `db.schema.table`), each part quoted.
    pub fn path<S: AsRef<str>>(self, parts: &[S]) -> String {
        parts
            .iter()
            .map(|p| self.ident(p.as_ref()))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Several identifiers, comma-separated.
    pub fn list<S: AsRef<str>>(self, names: &[S]) -> String {
        names
            .iter()
            .map(|n| self.ident(n.as_ref()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
