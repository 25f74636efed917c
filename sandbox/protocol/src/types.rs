//! Request and response types of protocol version 1.

use serde::{Deserialize, Serialize};

use crate::{Bytes, ErrorKind};

/// Identifies a session and so its workspace: one per org + API key + MCP session id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionKey {
    pub org: String,
    pub key: String,
    pub session: String,
}

/// A request as sent on the wire: `{"v":1,"id":7,"op":"run_python","args":{...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestFrame {
    pub v: u32,
    pub id: u64,
    #[serde(flatten)]
    pub request: Request,
}

/// The operations. Paths are relative to the session's workspace root and use `/` separators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "args", rename_all = "snake_case")]
pub enum Request {
    /// Backend, protections, capacity and version.
    Status,
    /// Creates the session's workspace (idempotent: an open session is kept as it is).
    OpenSession(OpenSession),
    /// Kills the session's processes and removes its workspace.
    CloseSession(SessionArgs),
    /// Kills the session's running code (its caller gave the run up); the workspace stays.
    CancelRuns(SessionArgs),
    /// Runs Python code in the session's workspace.
    RunPython(RunPython),
    ListDirectory(PathArgs),
    DirectoryTree(TreeArgs),
    ReadFile(ReadFile),
    WriteFile(WriteFile),
    /// Finds paths under `path` whose workspace-relative path matches a glob (`*`, `?`, `**`).
    SearchFiles(SearchFiles),
    GetFileInfo(PathArgs),
    /// Creates a directory and any missing parents.
    CreateDirectory(PathArgs),
    MoveFile(MoveFile),
}

impl Request {
    /// The operation's wire name, for logs.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::OpenSession(_) => "open_session",
            Request::CloseSession(_) => "close_session",
            Request::CancelRuns(_) => "cancel_runs",
            Request::RunPython(_) => "run_python",
            Request::ListDirectory(_) => "list_directory",
            Request::DirectoryTree(_) => "directory_tree",
            Request::ReadFile(_) => "read_file",
            Request::WriteFile(_) => "write_file",
            Request::SearchFiles(_) => "search_files",
            Request::GetFileInfo(_) => "get_file_info",
            Request::CreateDirectory(_) => "create_directory",
            Request::MoveFile(_) => "move_file",
        }
    }

    /// The session the request acts on, if any.
    pub fn session(&self) -> Option<&SessionKey> {
        match self {
            Request::Status => None,
            Request::OpenSession(a) => Some(&a.session),
            Request::CloseSession(a) | Request::CancelRuns(a) => Some(&a.session),
            Request::RunPython(a) => Some(&a.session),
            Request::ListDirectory(a) | Request::GetFileInfo(a) | Request::CreateDirectory(a) => {
                Some(&a.session)
            }
            Request::DirectoryTree(a) => Some(&a.session),
            Request::ReadFile(a) => Some(&a.session),
            Request::WriteFile(a) => Some(&a.session),
            Request::SearchFiles(a) => Some(&a.session),
            Request::MoveFile(a) => Some(&a.session),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSession {
    pub session: SessionKey,
    /// Workspace size in bytes; the daemon's default (and maximum) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionArgs {
    pub session: SessionKey,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathArgs {
    pub session: SessionKey,
    pub path: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeArgs {
    pub session: SessionKey,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadFile {
    pub session: SessionKey,
    pub path: String,
    /// Read at most this many bytes (the daemon's limit when absent); `truncated` says if there was more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteFile {
    pub session: SessionKey,
    pub path: String,
    pub content: Bytes,
    /// Create missing parent directories.
    #[serde(default)]
    pub create_parents: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchFiles {
    pub session: SessionKey,
    pub path: String,
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveFile {
    pub session: SessionKey,
    pub source: String,
    pub destination: String,
}

/// A file placed in the workspace before the code runs (e.g. a query result as CSV or Parquet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: String,
    pub content: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPython {
    pub session: SessionKey,
    pub code: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputFile>,
    /// Wall-clock limit; the daemon's default when absent, capped at its maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Address-space limit of each process; the daemon's default when absent, capped at its maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
}

/// A response as sent on the wire: `{"v":1,"id":7,"ok":{"op":...,"result":...}}` or
/// `{"v":1,"id":7,"error":{"kind":"busy","message":"..."}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseFrame {
    pub v: u32,
    /// The id of the request answered; 0 when the request was unreadable.
    pub id: u64,
    #[serde(flatten)]
    pub body: ResponseBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseBody {
    Ok(Response),
    Error(ErrorInfo),
}

/// A typed error with a message meant for a human (or an agent) to read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "result", rename_all = "snake_case")]
pub enum Response {
    Status(StatusInfo),
    OpenSession(SessionInfo),
    CloseSession(SessionClosed),
    CancelRuns(RunsCancelled),
    RunPython(RunResult),
    ListDirectory(Listing),
    DirectoryTree(Tree),
    ReadFile(FileContent),
    WriteFile(FileInfo),
    SearchFiles(SearchResult),
    GetFileInfo(FileInfo),
    CreateDirectory(FileInfo),
    MoveFile(FileInfo),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Native,
    Gvisor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtectionState {
    Active,
    Missing,
}

/// One isolation mechanism and whether it is in force on this host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protection {
    pub name: String,
    pub state: ProtectionState,
    /// Whether the daemon refuses to start without it (unless `--allow-degraded`).
    pub required: bool,
    /// What is in force, or why it is missing.
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub max_concurrency: u32,
    pub running: u32,
    pub sessions: u32,
    pub max_sessions: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// The daemon's version.
    pub version: String,
    pub protocol: u32,
    pub backend: Backend,
    /// True when a required protection is missing and the daemon was started with `--allow-degraded`.
    pub degraded: bool,
    pub protections: Vec<Protection>,
    pub capacity: Capacity,
    /// The sandbox interpreter's version, e.g. `3.11.2`.
    pub python: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// False when the session was already open.
    pub created: bool,
    pub workspace_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClosed {
    /// False when no such session was open.
    pub existed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunsCancelled {
    /// False when no such session was open (then nothing ran).
    pub existed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The wall-clock timeout killed the run.
    Timeout,
    /// The CPU-time limit killed the run.
    Cpu,
    /// An allocation failed at the memory limit.
    Memory,
    /// stdout or stderr was longer than the cap.
    Output,
    /// A write hit the file-size limit or the workspace/`/tmp` size.
    FileSize,
}

/// How the run ended: `code` for a normal exit, `signal` when a signal killed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

/// Captured output, cut at the daemon's cap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// The kept bytes, decoded as UTF-8 with invalid sequences replaced.
    pub text: String,
    pub truncated: bool,
    /// How many bytes the program wrote in total.
    pub total_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Created,
    Modified,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducedFile {
    pub path: String,
    pub size: u64,
    pub change: Change,
}

/// The kinds of image a run's output folder may hold, told apart by content (magic bytes, or an `<svg`
/// root element), never by the file's name. On the wire: the MIME type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageMime {
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/gif")]
    Gif,
    #[serde(rename = "image/webp")]
    Webp,
    /// Found in the output folder, but never sent as is: the daemon sends a PNG rendering of it
    /// ([`Image::rendered_from_svg`]), because clients such as Claude accept no SVG image content.
    #[serde(rename = "image/svg+xml")]
    Svg,
}

impl ImageMime {
    /// The MIME type, e.g. `image/png`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageMime::Png => "image/png",
            ImageMime::Jpeg => "image/jpeg",
            ImageMime::Gif => "image/gif",
            ImageMime::Webp => "image/webp",
            ImageMime::Svg => "image/svg+xml",
        }
    }
}

/// An image the run created or modified in the workspace's output folder, with its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Workspace-relative path, e.g. `outputs/plot.png` (or `outputs/plot.svg` for a rendered SVG).
    pub path: String,
    /// The MIME type of `data`: PNG for a rendered SVG.
    pub mime: ImageMime,
    pub data: Bytes,
    /// Set when the file is an SVG and `data` is the daemon's PNG rendering of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered_from_svg: Option<SvgRendering>,
}

/// How an SVG of the output folder was rendered to the PNG sent in its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SvgRendering {
    /// The PNG's size in pixels (the SVG's own size, scaled down to the daemon's pixel caps).
    pub width: u32,
    pub height: u32,
    /// The SVG has `<text>` elements, which the rendering leaves out: it loads no fonts. (matplotlib
    /// writes text as paths unless `svg.fonttype` is `none`.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub text_left_out: bool,
}

/// An SVG of the output folder whose PNG rendering the result does not carry (it could not be parsed
/// or rendered, or the rendering is over a cap); the file is still in the workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageNotRendered {
    pub path: String,
    /// The SVG's size in bytes.
    pub size: u64,
    /// Why, readable by an agent: e.g. `the SVG cannot be parsed: ...`.
    pub reason: String,
}

/// Which cap kept an image out of the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageCap {
    /// The image alone is larger than the cap for one image.
    PerImage,
    /// The images before it (in path order) left too little of the cap for one run's images.
    PerRun,
}

/// An image the run produced that the result does not carry; it is still in the workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLeftOut {
    pub path: String,
    pub mime: ImageMime,
    pub size: u64,
    pub cap: ImageCap,
    /// The cap's size in bytes.
    pub cap_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub exit: ExitStatus,
    pub stdout: Output,
    pub stderr: Output,
    /// Workspace files created or modified by the run.
    pub files: Vec<ProducedFile>,
    pub duration_ms: f64,
    pub backend: Backend,
    pub limits_hit: Vec<Limit>,
    /// Images created or modified under the workspace's output folder, within the daemon's caps. Absent
    /// from (and ignored by) peers that predate it, so gateway and daemon can be upgraded one at a time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    /// Images of the output folder left out of `images` by a cap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images_left_out: Vec<ImageLeftOut>,
    /// SVGs of the output folder whose PNG rendering is not in `images`, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images_not_rendered: Vec<ImageNotRendered>,
}

/// The folder of the session's workspace whose new or changed images come back with a run's result.
pub const OUTPUT_DIR: &str = "outputs";

/// The largest image caps (per image and per run) a daemon accepts: a run's images, base64-encoded, plus
/// its output must fit in a protocol frame ([`crate::DEFAULT_MAX_FRAME`], 32 MiB).
pub const MAX_IMAGES_BYTES: u64 = 16 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: String,
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
    /// Last modification, milliseconds since the Unix epoch.
    pub modified_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub path: String,
    /// Sorted by name.
    pub entries: Vec<DirEntry>,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeNode {
    pub name: String,
    pub kind: FileKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<TreeNode>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub root: TreeNode,
    /// True when the depth or entry limit cut the tree.
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileContent {
    pub path: String,
    pub content: Bytes,
    pub size: u64,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    pub matches: Vec<String>,
    pub truncated: bool,
}
