//! Sandbox tools (`execute_code`, `sandbox_status`, the workspace file tools): descriptions, scopes and
//! rendering; the operations are `sluice_core::ops::sandbox`.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::tools::{Effect, ImageBlock, Meta, NoArgs, Render, ToolSpec, spec};
use sluice_core::auth::Scope;
use sluice_core::ops::sandbox::{
    ChangeOut, ExecuteCodeArgs, ExecuteCodeOutput, FileInfoOut, ListingOut, MoveFileArgs, PathArg, ReadOut,
    SandboxStatusOutput, SearchFilesArgs, SearchOut, TreeNodeOut, TreeOut, WriteFileArgs, create_directory,
    directory_tree, execute_code, get_file_info, list_directory, move_file, read_file, sandbox_status,
    search_files, write_file,
};
use sluice_core::service::Services;

impl Render for ExecuteCodeOutput {
    fn render(&self) -> String {
        let mut text = String::new();
        let status = match (self.exit_code, self.signal) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => "ended".to_owned(),
        };
        let _ = writeln!(text, "{status} · {:.1} ms · {}", self.duration_ms, self.backend);
        if !self.limits_hit.is_empty() {
            let _ = writeln!(text, "limits hit: {}", self.limits_hit.join(", "));
        }
        for i in &self.inputs {
            match (&i.connection, i.rows) {
                (Some(c), Some(rows)) => {
                    let cut = if i.truncated {
                        ", truncated at the row limit"
                    } else {
                        ""
                    };
                    let _ = writeln!(text, "input {} ← {c}: {rows} rows as {}{cut}", i.file, i.format);
                }
                _ => {
                    let _ = writeln!(text, "input {} ({})", i.file, bytes(i.bytes));
                }
            }
        }
        stream(
            &mut text,
            "stdout",
            &self.stdout,
            self.stdout_truncated,
            self.stdout_bytes,
        );
        stream(
            &mut text,
            "stderr",
            &self.stderr,
            self.stderr_truncated,
            self.stderr_bytes,
        );
        if self.stdout.is_empty() && self.stderr.is_empty() {
            let _ = writeln!(text, "(no output)");
        }
        if !self.files.is_empty() {
            let files: Vec<String> = self
                .files
                .iter()
                .map(|f| format!("{} ({}, {})", f.path, bytes(f.size), f.change))
                .collect();
            let _ = writeln!(text, "files: {}", files.join(", "));
        }
        if !self.images.is_empty() {
            let images: Vec<String> = self
                .images
                .iter()
                .map(|i| match i.rendered_from_svg {
                    Some([w, h]) => format!(
                        "{} ({} rendered from the SVG, {w}x{h} px, {})",
                        i.path,
                        i.mime_type,
                        bytes(i.bytes)
                    ),
                    None => format!("{} ({}, {})", i.path, i.mime_type, bytes(i.bytes)),
                })
                .collect();
            let _ = writeln!(text, "images (attached below): {}", images.join(", "));
        }
        for notice in &self.notices {
            let _ = writeln!(text, "note: {notice}");
        }
        if !self.workspace_kept {
            let _ = writeln!(
                text,
                "note: this call had no MCP session, so its workspace was removed after the run"
            );
        }
        text.trim_end().to_owned()
    }

    fn take_images(&mut self) -> Vec<ImageBlock> {
        self.images
            .iter_mut()
            .map(|i| ImageBlock {
                mime_type: i.mime_type.clone(),
                data: std::mem::take(&mut i.data.0),
            })
            .collect()
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// One output stream of a run: its text under a header, and a notice when it was cut.
fn stream(text: &mut String, name: &str, content: &str, truncated: bool, total: u64) {
    if !content.is_empty() {
        let _ = writeln!(text, "--- {name} ---");
        text.push_str(content);
        if !content.ends_with('\n') {
            text.push('\n');
        }
    }
    if truncated {
        let _ = writeln!(
            text,
            "[{name} cut: {} kept of {}]",
            bytes(content.len() as u64),
            bytes(total)
        );
    }
}

impl Render for SandboxStatusOutput {
    fn render(&self) -> String {
        let mut text = format!("Sandbox: {} — {}", self.status, self.detail);
        if !self.protections.is_empty() {
            text.push_str("\nProtections:");
            for p in &self.protections {
                let state = match (p.state.as_str(), p.required) {
                    ("active", _) => "active",
                    (_, true) => "MISSING",
                    _ => "absent",
                };
                let _ = write!(text, "\n  [{state}] {}: {}", p.name, p.detail);
            }
        }
        let _ = write!(
            text,
            "\nexecute_code timeout: at most {} s",
            self.max_timeout_secs
        );
        text
    }
}

impl Render for FileInfoOut {
    fn render(&self) -> String {
        format!(
            "path: {}\ntype: {}\nsize: {}\npermissions: {}\nmodified: {}",
            self.path, self.kind, self.size, self.permissions, self.modified
        )
    }
}

impl Render for ChangeOut {
    fn render(&self) -> String {
        self.message.clone()
    }
}

impl Render for ReadOut {
    fn render(&self) -> String {
        let mut text = self.content.clone();
        if self.encoding == "base64" {
            text = format!("(binary file, {} bytes, base64)\n{text}", self.size);
        }
        if self.truncated {
            let _ = write!(text, "\n[cut: the file has {} bytes]", self.size);
        }
        text
    }
}

impl Render for ListingOut {
    fn render(&self) -> String {
        let mut lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| match e.kind.as_str() {
                "directory" => format!("[DIR] {}", e.name),
                "file" => format!("[FILE] {} ({})", e.name, bytes(e.size)),
                other => format!("[{}] {}", other.to_uppercase(), e.name),
            })
            .collect();
        if lines.is_empty() {
            lines.push(format!("{} is empty", self.path));
        }
        if self.truncated {
            lines.push("[listing cut]".to_owned());
        }
        lines.join("\n")
    }
}

impl Render for TreeOut {
    fn render(&self) -> String {
        fn walk(n: &TreeNodeOut, depth: usize, out: &mut String) {
            let slash = if n.kind == "directory" { "/" } else { "" };
            let _ = writeln!(out, "{}{}{slash}", "  ".repeat(depth), n.name);
            for c in &n.children {
                walk(c, depth + 1, out);
            }
        }
        let mut text = String::new();
        walk(&self.root, 0, &mut text);
        if self.truncated {
            text.push_str("[tree cut at the depth or entry limit]\n");
        }
        text.trim_end().to_owned()
    }
}

impl Render for SearchOut {
    fn render(&self) -> String {
        if self.matches.is_empty() {
            return "No matches found".to_owned();
        }
        let mut text = self.matches.join("\n");
        if self.truncated {
            text.push_str("\n[more matches not shown]");
        }
        text
    }
}

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let mut tools = Vec::new();

    let s = Arc::clone(services);
    tools.push(spec(
        Meta {
            name: "execute_code",
            title: "Run Python in the sandbox",
            description: "Run Python 3 code in an isolated sandbox (no network, no host files, CPU/memory/time \
                limits). The working directory is this MCP session's workspace: files persist between calls of \
                the session and are never visible to other sessions. `inputs` puts files in place first: a \
                workspace file name, or {connection_name, sql, file} to run a governed read-only query and write \
                its result as CSV (or Parquet for a .parquet name) for pandas/duckdb to read. Save plots and \
                pictures under `outputs/` (matplotlib works headless: `plt.savefig('outputs/chart.png')`): PNG, \
                JPEG, GIF and WebP files created or changed there come back as images, an SVG as a PNG rendering \
                of it (SVG text elements are not drawn; matplotlib draws text as paths by default); up to 1 MiB \
                each and 4 MiB per run by default, a larger one is named with how to get it. Returns the exit status, \
                stdout/stderr (capped), files created or changed with sizes, images, duration and limits hit.",
            scope: Some(Scope::Sandbox),
            effect: Effect::Changes,
        },
        move |ctx, a: ExecuteCodeArgs| execute_code(Arc::clone(&s), ctx, a),
    ));

    let s = Arc::clone(services);
    tools.push(spec(
        Meta {
            name: "sandbox_status",
            title: "Sandbox status",
            description: "Report whether the Python sandbox is available and, if not, why and how to start it; \
                its isolation backend (gvisor or native), each protection as active or missing, capacity and \
                the Python version.",
            scope: Some(Scope::Sandbox),
            effect: Effect::ReadOnly,
        },
        move |_ctx, _: NoArgs| {
            let s = Arc::clone(&s);
            async move { sandbox_status(&s).await }
        },
    ));

    let s = Arc::clone(services);
    tools.push(spec(
        Meta {
            name: "fs_read_file",
            title: "Read a workspace file",
            description: "Read a file from this session's sandbox workspace. Text is returned as is, binary \
                content as base64; large files are cut (the result says so).",
            scope: Some(Scope::Sandbox),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: PathArg| read_file(Arc::clone(&s), ctx, a),
    ));

    let s = Arc::clone(services);
    tools.push(spec(
        Meta {
            name: "fs_write_file",
            title: "Write a workspace file",
            description: "Create or replace a file in this session's sandbox workspace with the given text \
                content (parent directories are created). Needs the fs_write scope.",
            scope: Some(Scope::FsWrite),
            effect: Effect::Overwrites,
        },
        move |ctx, a: WriteFileArgs| write_file(Arc::clone(&s), ctx, a),
    ));

    let s = Arc::clone(services);
    tools.push(spec(
        Meta {
            name: "fs_list_directory",
            title: "List a workspace directory",
            description: "List the entries of a directory in this session's sandbox workspace, marked [DIR] or \
                [FILE] with sizes. `.` is the workspace root.",
            scope: Some(Scope::Sandbox),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: PathArg| list_directory(Arc::clone(&s), ctx, a),
    ));

    let s = Arc::clone(services);
    tools.push(spec(
        Meta {
            name: "fs_directory_tree",
            title: "Show a workspace directory tree",
            description: "Show the tree of files and directories below a path in this session's sandbox \
                workspace, as nested {name, type, children}.",
            scope: Some(Scope::Sandbox),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: PathArg| directory_tree(Arc::clone(&s), ctx, a),
    ));

    let s = Arc::clone(services);
    tools.push(spec(
        Meta {
            name: "fs_search_files",
            title: "Find workspace files by name",
            description: "Find files and directories below a path in this session's sandbox workspace whose \
                path matches a glob pattern (`*.csv`, `reports/**/*.parquet`).",
            scope: Some(Scope::Sandbox),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: SearchFilesArgs| search_files(Arc::clone(&s), ctx, a),
    ));

    let s = Arc::clone(services);
    tools.push(spec(
        Meta {
            name: "fs_get_file_info",
            title: "Workspace file details",
            description: "Report a workspace file's or directory's type, size, permissions and modification time.",
            scope: Some(Scope::Sandbox),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: PathArg| get_file_info(Arc::clone(&s), ctx, a),
    ));

    let s = Arc::clone(services);
    tools.push(spec(
        Meta {
            name: "fs_create_directory",
            title: "Create a workspace directory",
            description: "Create a directory (and any missing parents) in this session's sandbox workspace; an \
                existing directory is fine. Needs the fs_write scope.",
            scope: Some(Scope::FsWrite),
            effect: Effect::Adds,
        },
        move |ctx, a: PathArg| create_directory(Arc::clone(&s), ctx, a),
    ));

    let s = Arc::clone(services);
    tools.push(spec(
        Meta {
            name: "fs_move_file",
            title: "Move or rename a workspace file",
            description: "Move or rename a file or directory within this session's sandbox workspace; the \
                destination must not exist. Needs the fs_write scope.",
            scope: Some(Scope::FsWrite),
            effect: Effect::Changes,
        },
        move |ctx, a: MoveFileArgs| move_file(Arc::clone(&s), ctx, a),
    ));

    tools
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use sluice_core::ops::sandbox::{ImageOut, InputOut, ProducedFileOut};

    #[test]
    fn run_output_renders_compactly() {
        let mut out = ExecuteCodeOutput {
            exit_code: Some(1),
            signal: None,
            stdout: "42\n".into(),
            stdout_truncated: false,
            stdout_bytes: 3,
            stderr: "Traceback ...\nValueError: x".into(),
            stderr_truncated: true,
            stderr_bytes: 5000,
            files: vec![
                ProducedFileOut {
                    path: "out.csv".into(),
                    size: 2048,
                    change: "created".into(),
                },
                ProducedFileOut {
                    path: "outputs/plot.png".into(),
                    size: 8,
                    change: "created".into(),
                },
                ProducedFileOut {
                    path: "outputs/plot.svg".into(),
                    size: 900,
                    change: "created".into(),
                },
            ],
            images: vec![
                ImageOut {
                    path: "outputs/plot.png".into(),
                    mime_type: "image/png".into(),
                    bytes: 8,
                    rendered_from_svg: None,
                    data: b"\x89PNG\r\n\x1a\n".to_vec().into(),
                },
                ImageOut {
                    path: "outputs/plot.svg".into(),
                    mime_type: "image/png".into(),
                    bytes: 2048,
                    rendered_from_svg: Some([614, 460]),
                    data: b"\x89PNG\r\n\x1a\n".to_vec().into(),
                },
            ],
            notices: vec!["image outputs/big.png (image/png, 3.0 MiB) was not sent: ...".into()],
            inputs: vec![InputOut {
                file: "orders.csv".into(),
                format: "csv".into(),
                bytes: 100,
                connection: Some("demo".into()),
                rows: Some(10),
                truncated: false,
            }],
            duration_ms: 12.34,
            backend: "native".into(),
            limits_hit: vec!["output".into()],
            workspace_kept: true,
        };
        let images = out.take_images();
        assert_eq!(
            out.render(),
            "exit 1 · 12.3 ms · native\nlimits hit: output\ninput orders.csv ← demo: 10 rows as csv\n\
             --- stdout ---\n42\n--- stderr ---\nTraceback ...\nValueError: x\n[stderr cut: 27 B kept of 4.9 KiB]\n\
             files: out.csv (2.0 KiB, created), outputs/plot.png (8 B, created), outputs/plot.svg (900 B, created)\n\
             images (attached below): outputs/plot.png (image/png, 8 B), outputs/plot.svg (image/png rendered \
             from the SVG, 614x460 px, 2.0 KiB)\n\
             note: image outputs/big.png (image/png, 3.0 MiB) was not sent: ..."
        );
        // The image data leaves the structured result: it travels once, as image content.
        assert_eq!(images.len(), 2);
        assert_eq!(
            (images[0].mime_type.as_str(), images[0].data.as_slice()),
            ("image/png", b"\x89PNG\r\n\x1a\n".as_slice())
        );
        let structured = serde_json::to_value(&out).unwrap();
        assert_eq!(
            structured["images"],
            serde_json::json!([
                {"path": "outputs/plot.png", "mime_type": "image/png", "bytes": 8},
                {"path": "outputs/plot.svg", "mime_type": "image/png", "bytes": 2048, "rendered_from_svg": [614, 460]}
            ])
        );
    }
}
