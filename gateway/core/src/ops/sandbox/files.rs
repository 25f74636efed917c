//! The workspace file operations (`fs_*`), named and parameterised like the MCP reference filesystem
//! server: each one is a request to the sandbox daemon in the caller's workspace, scopes checked first.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_sandbox_protocol::{
    FileInfo, MoveFile, PathArgs, ReadFile, Request, Response, SearchFiles, TreeArgs, TreeNode, WriteFile,
};

use super::{kind_name, require, scope_refusal, unexpected};
use crate::auth::Scope;
use crate::pipeline::CallContext;
use crate::sandbox::OP_TIMEOUT;
use crate::service::{AuditFacts, Outcome, Services};

// ---- file tools ----

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathArg {
    /// Path relative to the workspace root (`.` is the root); absolute paths and `..` are refused.
    pub path: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileArgs {
    /// Path relative to the workspace root; missing parent directories are created.
    pub path: String,
    /// The file's new content (UTF-8 text); an existing file is replaced.
    pub content: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveFileArgs {
    /// The file or directory to move, relative to the workspace root.
    pub source: String,
    /// Its new path; it must not exist yet.
    pub destination: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchFilesArgs {
    /// Directory to search below, relative to the workspace root (`.` is the root).
    pub path: String,
    /// Glob: `*` and `?` within a name, `**` across directories; without `/` it matches file names at any
    /// depth (`*.csv`).
    pub pattern: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FileInfoOut {
    pub path: String,
    /// `file`, `directory`, `symlink` or `other`.
    #[serde(rename = "type")]
    pub kind: String,
    pub size: u64,
    /// Permission bits in octal, e.g. `644`.
    pub permissions: String,
    /// Last modification, RFC 3339.
    pub modified: String,
}

impl From<FileInfo> for FileInfoOut {
    fn from(i: FileInfo) -> Self {
        FileInfoOut {
            path: i.path,
            kind: kind_name(i.kind).to_owned(),
            size: i.size,
            permissions: format!("{:o}", i.mode & 0o7777),
            modified: chrono::DateTime::from_timestamp_millis(i.modified_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
        }
    }
}

/// The result of a tool that changed the workspace.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ChangeOut {
    pub message: String,
    pub file: FileInfoOut,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ReadOut {
    pub path: String,
    /// The content: text when it is UTF-8, else base64.
    pub content: String,
    /// `utf-8` or `base64`.
    pub encoding: String,
    pub size: u64,
    /// True when the file is larger than what was read.
    pub truncated: bool,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct EntryOut {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ListingOut {
    pub path: String,
    pub entries: Vec<EntryOut>,
    pub truncated: bool,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TreeNodeOut {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<TreeNodeOut>,
}

impl From<TreeNode> for TreeNodeOut {
    fn from(n: TreeNode) -> Self {
        TreeNodeOut {
            name: n.name,
            kind: kind_name(n.kind).to_owned(),
            children: n.children.into_iter().map(TreeNodeOut::from).collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TreeOut {
    pub root: TreeNodeOut,
    pub truncated: bool,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SearchOut {
    pub pattern: String,
    pub matches: Vec<String>,
    pub truncated: bool,
}

/// Runs one file operation in the caller's workspace, checking the scopes first.
async fn file_op<T, F, G>(
    s: Arc<Services>,
    ctx: CallContext,
    tool: &'static str,
    write: bool,
    make: F,
    convert: G,
) -> Outcome<T>
where
    F: Fn(sluice_sandbox_protocol::SessionKey) -> Request,
    G: FnOnce(Response) -> Option<T>,
{
    // The pipeline checked the tool's own scope (fs_write for writers); writers need sandbox as well.
    if write && let Err(e) = require(&ctx, Scope::Sandbox, tool) {
        return scope_refusal(e, AuditFacts::default());
    }
    let result = s
        .sandbox
        .call(&ctx, make, OP_TIMEOUT)
        .await
        .and_then(|r| convert(r).ok_or_else(|| unexpected(tool)));
    Outcome {
        result,
        audit: AuditFacts::default(),
    }
}

fn text_or_base64(content: Vec<u8>) -> (String, String) {
    match String::from_utf8(content) {
        Ok(text) => (text, "utf-8".to_owned()),
        Err(e) => {
            use base64::Engine as _;
            (
                base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                "base64".to_owned(),
            )
        }
    }
}

/// `fs_read_file`.
pub async fn read_file(s: Arc<Services>, ctx: CallContext, a: PathArg) -> Outcome<ReadOut> {
    file_op(
        s,
        ctx,
        "fs_read_file",
        false,
        move |session| {
            Request::ReadFile(ReadFile {
                session,
                path: a.path.clone(),
                max_bytes: None,
            })
        },
        |r| match r {
            Response::ReadFile(f) => {
                let (content, encoding) = text_or_base64(f.content.0);
                Some(ReadOut {
                    path: f.path,
                    content,
                    encoding,
                    size: f.size,
                    truncated: f.truncated,
                })
            }
            _ => None,
        },
    )
    .await
}

/// `fs_write_file`.
pub async fn write_file(s: Arc<Services>, ctx: CallContext, a: WriteFileArgs) -> Outcome<ChangeOut> {
    let len = a.content.len();
    file_op(
        s,
        ctx,
        "fs_write_file",
        true,
        move |session| {
            Request::WriteFile(WriteFile {
                session,
                path: a.path.clone(),
                content: a.content.as_str().into(),
                create_parents: true,
            })
        },
        move |r| match r {
            Response::WriteFile(f) => Some(ChangeOut {
                message: format!("Wrote {len} bytes to {}", f.path),
                file: f.into(),
            }),
            _ => None,
        },
    )
    .await
}

/// `fs_list_directory`.
pub async fn list_directory(s: Arc<Services>, ctx: CallContext, a: PathArg) -> Outcome<ListingOut> {
    file_op(
        s,
        ctx,
        "fs_list_directory",
        false,
        move |session| {
            Request::ListDirectory(PathArgs {
                session,
                path: a.path.clone(),
            })
        },
        |r| match r {
            Response::ListDirectory(l) => Some(ListingOut {
                path: l.path,
                entries: l
                    .entries
                    .into_iter()
                    .map(|e| EntryOut {
                        name: e.name,
                        kind: kind_name(e.kind).to_owned(),
                        size: e.size,
                    })
                    .collect(),
                truncated: l.truncated,
            }),
            _ => None,
        },
    )
    .await
}

/// `fs_directory_tree`.
pub async fn directory_tree(s: Arc<Services>, ctx: CallContext, a: PathArg) -> Outcome<TreeOut> {
    file_op(
        s,
        ctx,
        "fs_directory_tree",
        false,
        move |session| {
            Request::DirectoryTree(TreeArgs {
                session,
                path: a.path.clone(),
                max_depth: None,
            })
        },
        |r| match r {
            Response::DirectoryTree(t) => Some(TreeOut {
                root: t.root.into(),
                truncated: t.truncated,
            }),
            _ => None,
        },
    )
    .await
}

/// `fs_search_files`.
pub async fn search_files(s: Arc<Services>, ctx: CallContext, a: SearchFilesArgs) -> Outcome<SearchOut> {
    let pattern = a.pattern.clone();
    file_op(
        s,
        ctx,
        "fs_search_files",
        false,
        move |session| {
            Request::SearchFiles(SearchFiles {
                session,
                path: a.path.clone(),
                pattern: a.pattern.clone(),
                max_results: None,
            })
        },
        move |r| match r {
            Response::SearchFiles(m) => Some(SearchOut {
                pattern,
                matches: m.matches,
                truncated: m.truncated,
            }),
            _ => None,
        },
    )
    .await
}

/// `fs_get_file_info`.
pub async fn get_file_info(s: Arc<Services>, ctx: CallContext, a: PathArg) -> Outcome<FileInfoOut> {
    file_op(
        s,
        ctx,
        "fs_get_file_info",
        false,
        move |session| {
            Request::GetFileInfo(PathArgs {
                session,
                path: a.path.clone(),
            })
        },
        |r| match r {
            Response::GetFileInfo(f) => Some(FileInfoOut::from(f)),
            _ => None,
        },
    )
    .await
}

/// `fs_create_directory`.
pub async fn create_directory(s: Arc<Services>, ctx: CallContext, a: PathArg) -> Outcome<ChangeOut> {
    file_op(
        s,
        ctx,
        "fs_create_directory",
        true,
        move |session| {
            Request::CreateDirectory(PathArgs {
                session,
                path: a.path.clone(),
            })
        },
        |r| match r {
            Response::CreateDirectory(f) => Some(ChangeOut {
                message: format!("Created directory {}", f.path),
                file: f.into(),
            }),
            _ => None,
        },
    )
    .await
}

/// `fs_move_file`.
pub async fn move_file(s: Arc<Services>, ctx: CallContext, a: MoveFileArgs) -> Outcome<ChangeOut> {
    let source = a.source.clone();
    file_op(
        s,
        ctx,
        "fs_move_file",
        true,
        move |session| {
            Request::MoveFile(MoveFile {
                session,
                source: a.source.clone(),
                destination: a.destination.clone(),
            })
        },
        move |r| match r {
            Response::MoveFile(f) => Some(ChangeOut {
                message: format!("Moved {source} to {}", f.path),
                file: f.into(),
            }),
            _ => None,
        },
    )
    .await
}
