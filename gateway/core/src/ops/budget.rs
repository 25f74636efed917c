//! `check_budget`: the calling key's daily budget (queries, rows, bytes, engine seconds), what is spent
//! and what remains, with one session's share.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::budgets::BudgetStatus;
use crate::pipeline::CallContext;
use crate::service::{AuditFacts, Outcome, Services};

fn default_session() -> String {
    "default".to_owned()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckBudgetArgs {
    /// The MCP session whose share to show; "default" = the calling session. Budgets themselves are per
    /// API key and UTC day.
    #[serde(default = "default_session")]
    pub session_id: String,
}

/// The budget of the calling key, with the share of the named session ("default": the calling one).
pub async fn check_budget(s: &Services, ctx: &CallContext, a: CheckBudgetArgs) -> Outcome<BudgetStatus> {
    let session = if a.session_id == "default" {
        ctx.session_id.clone().unwrap_or_default()
    } else {
        a.session_id
    };
    Outcome {
        result: s.budgets.status(&ctx.auth, &session).await,
        audit: AuditFacts::default(),
    }
}
