//! Sandbox operations: `execute_code` (Python in the caller's workspace, with governed query results
//! placed there as inputs) and `sandbox_status`; the workspace file operations are in [`files`].
//!
//! Every tool needs the `sandbox` scope; the ones that change files need `fs_write` too, and a query
//! input needs `query`, so that the sandbox is never a way around a key's scopes. Code is audited as its
//! SHA-256 and length only.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use sluice_sandbox_protocol::{
    Backend, Bytes, Change, FileKind, Image, ImageCap, ImageLeftOut, ImageMime, ImageNotRendered, InputFile,
    Limit, PathArgs, ProtectionState, Request, Response, RunPython,
};

use crate::auth::Scope;
use crate::pipeline::CallContext;
use crate::sandbox::{OP_TIMEOUT, Sandbox, State, Workspace};
use crate::service::{AuditFacts, CodeDigest, Outcome, Services, ToolError};

mod files;

pub use files::*;

const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Inputs per run: enough for any analysis, few enough that one call cannot queue unbounded queries.
const MAX_INPUTS: usize = 16;

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteCodeArgs {
    /// Python 3 code. It runs in the session's workspace directory (files persist between calls of one MCP
    /// session), without network access, with pandas, numpy, pyarrow, duckdb and matplotlib available when
    /// installed. PNG, JPEG, GIF, WebP and SVG images saved under `outputs/` come back as images with the
    /// result (an SVG as a PNG rendering of it).
    pub code: String,
    /// Wall-clock limit in seconds (default 30; at most the server's maximum, 300 unless configured).
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1))]
    pub timeout: u64,
    /// Files the code reads. Each is either the name of a file already in the workspace, or
    /// `{connection_name, sql, file}`: the gateway runs the query (governed exactly like query_database)
    /// and writes the result to `file` in the workspace before the code runs, as CSV, or as Parquet
    /// when `file` ends in `.parquet`.
    #[serde(default)]
    pub inputs: Vec<Input>,
}

/// A file the code reads.
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum Input {
    /// The workspace path of a file that is already there.
    File(String),
    /// A query result the gateway writes into the workspace.
    Query(QueryInput),
}

// By hand rather than `untagged`, so that a bad input gets a message naming the problem instead of
// "did not match any variant".
impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Input::File(s)),
            v @ serde_json::Value::Object(_) => serde_json::from_value(v)
                .map(Input::Query)
                .map_err(|e| D::Error::custom(format!("input {{connection_name, sql, file}}: {e}"))),
            other => Err(D::Error::custom(format!(
                "each input is a workspace file name (a string) or {{connection_name, sql, file}}, not {other}"
            ))),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryInput {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// One read-only SQL statement in the connection's dialect.
    pub sql: String,
    /// Workspace path for the result: CSV, or Parquet when it ends in `.parquet`.
    pub file: String,
    /// Most rows to write (default: the server's maximum).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub row_limit: Option<u64>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ExecuteCodeOutput {
    /// The process's exit code; absent when a signal ended it.
    pub exit_code: Option<i32>,
    /// The signal that ended the process, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stdout_truncated: bool,
    /// Bytes the code wrote to stdout in total (more than kept when truncated).
    pub stdout_bytes: u64,
    pub stderr: String,
    pub stderr_truncated: bool,
    pub stderr_bytes: u64,
    /// Workspace files the run created or modified.
    pub files: Vec<ProducedFileOut>,
    /// Images the run saved under `outputs/`, returned as image content beside this result.
    pub images: Vec<ImageOut>,
    /// What the result leaves out and how to get it (an image over the size cap, an SVG that could not be
    /// rendered, the text an SVG rendering lacks).
    pub notices: Vec<String>,
    /// The inputs placed in (or found in) the workspace before the run.
    pub inputs: Vec<InputOut>,
    pub duration_ms: f64,
    /// `native` or `gvisor`.
    pub backend: String,
    /// Limits that stopped or cut the run: `timeout`, `cpu`, `memory`, `output`, `file_size`.
    pub limits_hit: Vec<String>,
    /// False when the call had no MCP session: its workspace was removed after the run.
    pub workspace_kept: bool,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ProducedFileOut {
    pub path: String,
    pub size: u64,
    /// `created` or `modified`.
    pub change: String,
}

/// An image returned with a run's result.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ImageOut {
    /// Workspace path, under `outputs/`.
    pub path: String,
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`, from the file's content; `image/png` for an
    /// SVG, which is sent as a PNG rendering of it.
    pub mime_type: String,
    pub bytes: u64,
    /// The file is an SVG and the image is its PNG rendering, `[width, height]` in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rendered_from_svg: Option<[u32; 2]>,
    /// The image itself: sent as MCP image content, not in the structured result.
    #[serde(skip)]
    pub data: Bytes,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct InputOut {
    pub file: String,
    /// `csv`, `parquet`, or `workspace` for a file that was already there.
    pub format: String,
    pub bytes: u64,
    pub connection: Option<String>,
    pub rows: Option<u64>,
    /// True when the query had more rows than its row limit allowed.
    pub truncated: bool,
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Native => "native",
        Backend::Gvisor => "gvisor",
    }
}

fn limit_name(l: Limit) -> &'static str {
    match l {
        Limit::Timeout => "timeout",
        Limit::Cpu => "cpu",
        Limit::Memory => "memory",
        Limit::Output => "output",
        Limit::FileSize => "file_size",
    }
}

/// Human-readable size for notices.
fn size_text(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// Says which image was left out, why, and how to get it: smaller, or read from the workspace.
pub fn image_notice(l: &ImageLeftOut) -> String {
    let why = match l.cap {
        ImageCap::PerImage => format!("it is over the {} limit per image", size_text(l.cap_bytes)),
        ImageCap::PerRun => format!(
            "the run's earlier images used up the {} limit per run",
            size_text(l.cap_bytes)
        ),
    };
    format!(
        "image {} ({}, {}) was not sent: {why}. It is in the workspace: save it smaller (a lower dpi, e.g. \
         savefig(..., dpi=72), or a smaller figsize) or read it with fs_read_file.",
        l.path,
        l.mime.as_str(),
        size_text(l.size)
    )
}

/// The image types that go out as MCP image content: those Claude's API accepts.
const SENDABLE_IMAGES: [ImageMime; 4] = [ImageMime::Png, ImageMime::Jpeg, ImageMime::Gif, ImageMime::Webp];

/// Says which SVG was not sent, why, and how to get the figure anyway.
pub fn not_rendered_notice(n: &ImageNotRendered) -> String {
    format!(
        "image {} (SVG, {}) was not sent: {}. It is in the workspace: save the figure as PNG instead (e.g. \
         savefig('outputs/chart.png')) or read the SVG with fs_read_file.",
        n.path,
        size_text(n.size),
        n.reason
    )
}

/// Says that an SVG's rendering lacks the SVG's text, and how to keep it.
pub fn text_left_out_notice(path: &str) -> String {
    format!(
        "image {path} was rendered without its text: SVG <text> elements need fonts, which the renderer does not \
         load. Keep matplotlib's default svg.fonttype 'path' (text drawn as shapes) or save the figure as PNG."
    )
}

/// The images a run's result sends, and the notices about those it does not send (or sends without
/// their text), in that order: caps, failed renderings, refused types, missing text.
fn images_and_notices(
    images: Vec<Image>,
    left_out: &[ImageLeftOut],
    not_rendered: &[ImageNotRendered],
) -> (Vec<ImageOut>, Vec<String>) {
    // Claude's API refuses any image type but these four, and an image it refuses breaks every later turn
    // of the conversation: whatever a daemon sends (an SVG as is, from a daemon that predates rendering
    // them), nothing else goes out as image content.
    let (images, refused): (Vec<Image>, Vec<Image>) = images
        .into_iter()
        .partition(|i| SENDABLE_IMAGES.contains(&i.mime));
    let notices = left_out
        .iter()
        .map(image_notice)
        .chain(not_rendered.iter().map(not_rendered_notice))
        .chain(refused.iter().map(|i| {
            format!(
                "image {} ({}) was not sent: clients accept only PNG, JPEG, GIF and WebP images. It is in the \
                 workspace: read it with fs_read_file.",
                i.path,
                i.mime.as_str()
            )
        }))
        .chain(
            images
                .iter()
                .filter(|i| i.rendered_from_svg.is_some_and(|r| r.text_left_out))
                .map(|i| text_left_out_notice(&i.path)),
        )
        .collect();
    (images.into_iter().map(image_out).collect(), notices)
}

/// The image as the tool's result describes it (its bytes travel as image content).
fn image_out(i: Image) -> ImageOut {
    ImageOut {
        path: i.path,
        mime_type: i.mime.as_str().to_owned(),
        bytes: i.data.0.len() as u64,
        rendered_from_svg: i.rendered_from_svg.map(|r| [r.width, r.height]),
        data: i.data,
    }
}

fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Other => "other",
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SandboxStatusOutput {
    /// `available`, `unavailable` or `not_configured`.
    pub status: String,
    /// What is running, or why the sandbox is unavailable and what to do.
    pub detail: String,
    pub socket: Option<String>,
    pub backend: Option<String>,
    /// True when the daemon runs without a required protection (started with allow_degraded).
    pub degraded: Option<bool>,
    pub daemon_version: Option<String>,
    pub python: Option<String>,
    pub protections: Vec<ProtectionOut>,
    pub capacity: Option<CapacityOut>,
    /// The largest execute_code timeout, in seconds.
    pub max_timeout_secs: u64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ProtectionOut {
    pub name: String,
    /// `active` or `missing`.
    pub state: String,
    pub required: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CapacityOut {
    pub max_concurrency: u32,
    pub running: u32,
    pub sessions: u32,
    pub max_sessions: u32,
}

pub async fn status(sandbox: &Sandbox) -> SandboxStatusOutput {
    let state = sandbox.state().await;
    let mut out = SandboxStatusOutput {
        status: state.name().to_owned(),
        detail: state.detail(),
        socket: sandbox.socket().map(|p| p.display().to_string()),
        backend: None,
        degraded: None,
        daemon_version: None,
        python: None,
        protections: Vec::new(),
        capacity: None,
        max_timeout_secs: sandbox.max_timeout_secs,
    };
    if let State::Available(s) = state {
        out.backend = Some(backend_name(s.backend).to_owned());
        out.degraded = Some(s.degraded);
        out.daemon_version = Some(s.version);
        out.python = Some(s.python);
        out.protections = s
            .protections
            .into_iter()
            .map(|p| ProtectionOut {
                name: p.name,
                state: match p.state {
                    ProtectionState::Active => "active",
                    ProtectionState::Missing => "missing",
                }
                .to_owned(),
                required: p.required,
                detail: p.detail,
            })
            .collect();
        out.capacity = Some(CapacityOut {
            max_concurrency: s.capacity.max_concurrency,
            running: s.capacity.running,
            sessions: s.capacity.sessions,
            max_sessions: s.capacity.max_sessions,
        });
    }
    out
}

fn require(ctx: &CallContext, scope: Scope, what: &str) -> Result<(), ToolError> {
    if ctx.auth.scopes.contains(scope) {
        return Ok(());
    }
    Err(ToolError::invalid(format!(
        "this API key lacks the '{}' scope needed by {what}; create a key with `sluice key create --scope {}`",
        scope.as_str(),
        scope.as_str()
    )))
}

fn scope_refusal<T>(e: ToolError, mut audit: AuditFacts) -> Outcome<T> {
    audit.rule = Some("missing_scope".to_owned());
    Outcome::fail(e, audit)
}

/// Merges the audit facts of the query inputs into the call's facts: one input's as they are; several
/// as the list of connections and statements.
fn merge_query_facts(audit: &mut AuditFacts, facts: &[AuditFacts]) {
    match facts {
        [] => {}
        [one] => {
            let code = audit.code.take();
            *audit = one.clone();
            audit.code = code;
        }
        many => {
            let names: Vec<&str> = many.iter().filter_map(|f| f.connection.as_deref()).collect();
            audit.connection = Some(names.join(", "));
            let sql: Vec<&str> = many.iter().filter_map(|f| f.sql.as_deref()).collect();
            audit.sql = Some(sql.join(";\n"));
            let first = many[0].dialect;
            audit.dialect = if many.iter().all(|f| f.dialect == first) {
                first
            } else {
                None
            };
            audit.rows = Some(many.iter().filter_map(|f| f.rows).sum());
            audit.rule = many.iter().find_map(|f| f.rule.clone());
        }
    }
}

pub async fn execute_code(
    s: Arc<Services>,
    ctx: CallContext,
    a: ExecuteCodeArgs,
) -> Outcome<ExecuteCodeOutput> {
    let mut audit = AuditFacts {
        code: Some(CodeDigest::of(&a.code)),
        ..Default::default()
    };
    let max = s.sandbox.max_timeout_secs;
    if a.code.trim().is_empty() {
        return Outcome::fail(
            ToolError::invalid("code is empty; pass the Python code to run"),
            audit,
        );
    }
    if a.timeout == 0 || a.timeout > max {
        return Outcome::fail(
            ToolError::invalid(format!(
                "timeout must be between 1 and {max} seconds (got {})",
                a.timeout
            )),
            audit,
        );
    }
    if a.inputs.len() > MAX_INPUTS {
        return Outcome::fail(
            ToolError::invalid(format!(
                "at most {MAX_INPUTS} inputs per run (got {})",
                a.inputs.len()
            )),
            audit,
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for input in &a.inputs {
        let name = match input {
            Input::File(f) => f,
            Input::Query(q) => &q.file,
        };
        if name.trim().is_empty() {
            return Outcome::fail(ToolError::invalid("an input has an empty file name"), audit);
        }
        if !seen.insert(name.clone()) {
            return Outcome::fail(
                ToolError::invalid(format!("input file '{name}' is named twice")),
                audit,
            );
        }
        if matches!(input, Input::Query(q) if q.row_limit == Some(0)) {
            return Outcome::fail(
                ToolError::invalid("an input's row_limit must be at least 1"),
                audit,
            );
        }
    }
    if a.inputs.iter().any(|i| matches!(i, Input::Query(_)))
        && let Err(e) = require(&ctx, Scope::Query, "execute_code inputs that run SQL")
    {
        return scope_refusal(e, audit);
    }

    // The queries run first: a refused or failed one stops the call before any code runs.
    let mut files = Vec::new();
    let mut described = Vec::new();
    let mut facts = Vec::new();
    for input in &a.inputs {
        let Input::Query(q) = input else { continue };
        let limit = q.row_limit.unwrap_or(s.settings.max_rows);
        let outcome = s.query(&ctx.auth, &q.connection_name, &q.sql, limit).await;
        facts.push(outcome.audit);
        let result = match outcome.result {
            Ok(r) => r,
            Err(mut e) => {
                merge_query_facts(&mut audit, &facts);
                e.message = format!("input '{}': {}", q.file, e.message);
                return Outcome::fail(e, audit);
            }
        };
        let columns: Vec<String> = result.columns.iter().map(|c| c.name.clone()).collect();
        let csv = crate::sandbox::csv::encode(&columns, &result.rows);
        let parquet = q.file.to_ascii_lowercase().ends_with(".parquet");
        let content = if parquet {
            match tokio::task::spawn_blocking(move || sluice_connectors::duckdb::csv_to_parquet(&csv)).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(e)) => {
                    merge_query_facts(&mut audit, &facts);
                    return Outcome::fail(ToolError::failed(format!("input '{}': {e}", q.file)), audit);
                }
                Err(e) => {
                    merge_query_facts(&mut audit, &facts);
                    return Outcome::fail(
                        ToolError::failed(format!("input '{}': the Parquet conversion failed: {e}", q.file)),
                        audit,
                    );
                }
            }
        } else {
            csv
        };
        described.push(InputOut {
            file: q.file.clone(),
            format: if parquet { "parquet" } else { "csv" }.to_owned(),
            bytes: content.len() as u64,
            connection: Some(result.connection.clone()),
            rows: Some(result.row_count),
            truncated: result.truncated,
        });
        files.push(InputFile {
            path: q.file.clone(),
            content: content.into(),
        });
    }
    merge_query_facts(&mut audit, &facts);

    let ws = s.sandbox.workspace(&ctx);
    let result = run(&ws, &a, files, described).await;
    ws.finish().await;
    Outcome { result, audit }
}

async fn run(
    ws: &Workspace<'_>,
    a: &ExecuteCodeArgs,
    files: Vec<InputFile>,
    mut described: Vec<InputOut>,
) -> Result<ExecuteCodeOutput, ToolError> {
    // Files named as inputs must already be in the workspace; say which one is missing before running.
    for input in &a.inputs {
        let Input::File(path) = input else { continue };
        let info = ws
            .call(
                |session| {
                    Request::GetFileInfo(PathArgs {
                        session,
                        path: path.clone(),
                    })
                },
                OP_TIMEOUT,
            )
            .await
            .map_err(|mut e| {
                e.message = format!("input '{path}': {}", e.message);
                if ws.ephemeral() {
                    e.message.push_str(
                        " (this call has no MCP session, so its workspace is new and empty; pass the data as a \
                         {connection_name, sql, file} input instead)",
                    );
                }
                e
            })?;
        let Response::GetFileInfo(info) = info else {
            return Err(unexpected("get_file_info"));
        };
        if info.kind != FileKind::File {
            return Err(ToolError::invalid(format!(
                "input '{path}' is a {}, not a file",
                kind_name(info.kind)
            )));
        }
        described.push(InputOut {
            file: path.clone(),
            format: "workspace".to_owned(),
            bytes: info.size,
            connection: None,
            rows: None,
            truncated: false,
        });
    }
    let timeout = Duration::from_secs(a.timeout);
    let call = ws.call(
        |session| {
            Request::RunPython(RunPython {
                session,
                code: a.code.clone(),
                inputs: files.clone(),
                timeout_ms: Some(a.timeout.saturating_mul(1000)),
                memory_mb: None,
            })
        },
        Sandbox::run_deadline(timeout),
    );
    tokio::pin!(call);
    // A call given up mid-run (cancelled, or its client gone) kills the code in the daemon.
    let cancel = ws.cancel_on_drop();
    // A client that asked for progress hears about a long run every second, against its time limit.
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let response = loop {
        tokio::select! {
            response = &mut call => {
                cancel.disarm();
                break response?;
            }
            _ = tick.tick() => {
                let secs = started.elapsed().as_secs();
                crate::progress::report(
                    secs as f64,
                    Some(a.timeout as f64),
                    format!("the code has run for {secs} s of at most {} s", a.timeout),
                );
            }
        }
    };
    let Response::RunPython(r) = response else {
        return Err(unexpected("run_python"));
    };
    let (images, notices) = images_and_notices(r.images, &r.images_left_out, &r.images_not_rendered);
    Ok(ExecuteCodeOutput {
        exit_code: r.exit.code,
        signal: r.exit.signal,
        stdout_truncated: r.stdout.truncated,
        stdout_bytes: r.stdout.total_bytes,
        stdout: r.stdout.text,
        stderr_truncated: r.stderr.truncated,
        stderr_bytes: r.stderr.total_bytes,
        stderr: r.stderr.text,
        files: r
            .files
            .into_iter()
            .map(|f| ProducedFileOut {
                path: f.path,
                size: f.size,
                change: match f.change {
                    Change::Created => "created",
                    Change::Modified => "modified",
                }
                .to_owned(),
            })
            .collect(),
        images,
        notices,
        inputs: described,
        duration_ms: r.duration_ms,
        backend: backend_name(r.backend).to_owned(),
        limits_hit: r
            .limits_hit
            .into_iter()
            .map(|l| limit_name(l).to_owned())
            .collect(),
        workspace_kept: !ws.ephemeral(),
    })
}

fn unexpected(op: &str) -> ToolError {
    ToolError::failed(format!("the sandbox answered {op} with an unexpected response"))
}

/// `sandbox_status`: whether the sandbox is available, its backend, protections and capacity.
pub async fn sandbox_status(s: &Services) -> Outcome<SandboxStatusOutput> {
    Outcome {
        result: Ok(status(&s.sandbox).await),
        audit: AuditFacts::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn image_notices_name_the_file_its_size_the_cap_and_the_way_out() {
        let left = |cap, size, cap_bytes| ImageLeftOut {
            path: "outputs/big.png".into(),
            mime: ImageMime::Png,
            size,
            cap,
            cap_bytes,
        };
        assert_eq!(
            image_notice(&left(ImageCap::PerImage, 3 << 20, 1 << 20)),
            "image outputs/big.png (image/png, 3.0 MiB) was not sent: it is over the 1.0 MiB limit per image. \
             It is in the workspace: save it smaller (a lower dpi, e.g. savefig(..., dpi=72), or a smaller \
             figsize) or read it with fs_read_file."
        );
        assert!(
            image_notice(&left(ImageCap::PerRun, 600 << 10, 4 << 20))
                .contains("(image/png, 600.0 KiB) was not sent: the run's earlier images used up the 4.0 MiB limit per run.")
        );
        let broken = ImageNotRendered {
            path: "outputs/chart.svg".into(),
            size: 2048,
            reason: "the SVG cannot be parsed: unexpected end of stream".into(),
        };
        assert_eq!(
            not_rendered_notice(&broken),
            "image outputs/chart.svg (SVG, 2.0 KiB) was not sent: the SVG cannot be parsed: unexpected end of \
             stream. It is in the workspace: save the figure as PNG instead (e.g. savefig('outputs/chart.png')) or \
             read the SVG with fs_read_file."
        );
        assert!(
            text_left_out_notice("outputs/t.svg")
                .starts_with("image outputs/t.svg was rendered without its text")
        );
    }

    #[test]
    fn only_png_jpeg_gif_and_webp_go_out_as_images() {
        use sluice_sandbox_protocol::SvgRendering;
        let image = |path: &str, mime, rendered_from_svg| Image {
            path: path.into(),
            mime,
            data: Bytes(b"data".to_vec()),
            rendered_from_svg,
        };
        let rendering = |text_left_out| {
            Some(SvgRendering {
                width: 614,
                height: 460,
                text_left_out,
            })
        };
        let (images, notices) = images_and_notices(
            vec![
                image("outputs/a.gif", ImageMime::Gif, None),
                image("outputs/b.svg", ImageMime::Png, rendering(false)),
                image("outputs/c.svg", ImageMime::Svg, None),
                image("outputs/d.svg", ImageMime::Png, rendering(true)),
                image("outputs/e.webp", ImageMime::Webp, None),
            ],
            &[],
            &[],
        );
        let sent: Vec<(&str, &str, Option<[u32; 2]>)> = images
            .iter()
            .map(|i| (i.path.as_str(), i.mime_type.as_str(), i.rendered_from_svg))
            .collect();
        assert_eq!(
            sent,
            vec![
                ("outputs/a.gif", "image/gif", None),
                ("outputs/b.svg", "image/png", Some([614, 460])),
                ("outputs/d.svg", "image/png", Some([614, 460])),
                ("outputs/e.webp", "image/webp", None),
            ]
        );
        assert_eq!(
            notices,
            vec![
                "image outputs/c.svg (image/svg+xml) was not sent: clients accept only PNG, JPEG, GIF and WebP \
                 images. It is in the workspace: read it with fs_read_file."
                    .to_owned(),
                text_left_out_notice("outputs/d.svg"),
            ]
        );
    }

    #[test]
    fn inputs_decode_with_clear_errors() {
        let ok: ExecuteCodeArgs = serde_json::from_value(serde_json::json!({
            "code": "print(1)",
            "inputs": ["a.csv", {"connection_name": "demo", "sql": "select 1", "file": "b.parquet"}]
        }))
        .unwrap();
        assert_eq!(ok.timeout, 30);
        assert!(matches!(&ok.inputs[0], Input::File(f) if f == "a.csv"));
        assert!(matches!(&ok.inputs[1], Input::Query(q) if q.file == "b.parquet" && q.row_limit.is_none()));
        let cases = [
            (
                serde_json::json!({"code": "x", "inputs": [5]}),
                "each input is a workspace file name",
            ),
            (
                serde_json::json!({"code": "x", "inputs": [{"connection_name": "demo", "sql": "select 1"}]}),
                "input {connection_name, sql, file}: missing field `file`",
            ),
            (
                serde_json::json!({"code": "x", "inputs": [{"connection": "demo", "sql": "s", "file": "f"}]}),
                "unknown field `connection`",
            ),
            (
                serde_json::json!({"code": "x", "timout": 3}),
                "unknown field `timout`",
            ),
        ];
        for (value, expected) in cases {
            let err = serde_json::from_value::<ExecuteCodeArgs>(value)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
