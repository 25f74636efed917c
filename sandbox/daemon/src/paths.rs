//! Lexical confinement of workspace paths, and the glob matcher of `search_files`.
//!
//! This is the first check; the second is the kernel's: every path is then resolved with `openat2`
//! and `RESOLVE_BENEATH` relative to the workspace directory, which also refuses symlinks that lead out.

/// Why a path was refused before touching the file system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path {0:?} is absolute; workspace paths are relative to the workspace root")]
    Absolute(String),
    #[error("path {0:?} contains \"..\", which could leave the workspace")]
    ParentComponent(String),
    #[error("path contains a NUL byte")]
    Nul,
    #[error("path is longer than {max} bytes")]
    TooLong { max: usize },
}

const MAX_PATH: usize = 4096;

/// Splits a workspace path into its components. `""`, `"."` and `"./"` mean the workspace root (no
/// components); empty and `.` components are dropped.
pub fn components(path: &str) -> Result<Vec<String>, PathError> {
    if path.len() > MAX_PATH {
        return Err(PathError::TooLong { max: MAX_PATH });
    }
    if path.contains('\0') {
        return Err(PathError::Nul);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute(path.to_string()));
    }
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(PathError::ParentComponent(path.to_string())),
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

/// The canonical relative form of components (`"."` for the root).
pub fn join(components: &[String]) -> String {
    if components.is_empty() {
        ".".to_string()
    } else {
        components.join("/")
    }
}

/// Matches a workspace-relative path against a glob. `*` and `?` stay within one component, `**`
/// spans any number of components. A pattern without `/` matches the file name at any depth.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let path_parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if !pattern.contains('/') {
        return path_parts
            .last()
            .is_some_and(|name| component_match(pattern.as_bytes(), name.as_bytes()));
    }
    let pat_parts: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    parts_match(&pat_parts, &path_parts)
}

fn parts_match(pat: &[&str], path: &[&str]) -> bool {
    match pat.first() {
        None => path.is_empty(),
        Some(&"**") => (0..=path.len()).any(|skip| parts_match(&pat[1..], &path[skip..])),
        Some(p) => {
            !path.is_empty()
                && component_match(p.as_bytes(), path[0].as_bytes())
                && parts_match(&pat[1..], &path[1..])
        }
    }
}

fn component_match(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard matching with backtracking to the last `*`: linear in practice, no recursion
    // blow-up on hostile patterns like `*a*a*a*a*b`.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn check(input: &str, expected: Result<Vec<&str>, PathError>) {
        let expected = expected.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
        assert_eq!(components(input), expected, "input {input:?}");
    }

    #[test]
    fn path_confinement() {
        check("", Ok(vec![]));
        check(".", Ok(vec![]));
        check("./", Ok(vec![]));
        check("a/b.csv", Ok(vec!["a", "b.csv"]));
        check("a//./b/", Ok(vec!["a", "b"]));
        check("..", Err(PathError::ParentComponent("..".into())));
        check(
            "a/../../etc/passwd",
            Err(PathError::ParentComponent("a/../../etc/passwd".into())),
        );
        check("a/..", Err(PathError::ParentComponent("a/..".into())));
        check("/etc/shadow", Err(PathError::Absolute("/etc/shadow".into())));
        check("//etc", Err(PathError::Absolute("//etc".into())));
        check("a\0b", Err(PathError::Nul));
        check(&"a/".repeat(3000), Err(PathError::TooLong { max: MAX_PATH }));
        // Names that merely contain dots are fine.
        check("..a/b..", Ok(vec!["..a", "b.."]));
    }

    #[test]
    fn globs() {
        // (pattern, path, matches)
        let cases = [
            ("*.csv", "orders.csv", true),
            ("*.csv", "data/2024/orders.csv", true),
            ("*.csv", "orders.csv.bak", false),
            ("data/*.csv", "data/a.csv", true),
            ("data/*.csv", "data/x/a.csv", false),
            ("data/**/*.csv", "data/a.csv", true),
            ("data/**/*.csv", "data/x/y/a.csv", true),
            ("**/models/*.sql", "dbt/models/a.sql", true),
            ("**", "anything/at/all", true),
            ("m?del.sql", "model.sql", true),
            ("m?del.sql", "mdel.sql", false),
            (
                "*a*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac",
                false,
            ),
            ("", "a", false),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(glob_match(pattern, path), expected, "{pattern} vs {path}");
        }
    }
}
