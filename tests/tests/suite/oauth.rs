//! OAuth 2.1 against a real OpenID provider on loopback (npm `oidc-provider`, `tests/oidc/provider.mjs`):
//! tokens from the real authorization-code + PKCE flow with a resource indicator (`tests/oidc/client.mjs`,
//! scripted login and consent), the protected resource metadata and challenges, precisely wrong tokens
//! (signed by the provider's own keys, a stranger's or none), 403 `insufficient_scope`, and API keys
//! beside tokens.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, ensure};
use pretty_assertions::assert_eq;
use rmcp::ServiceExt as _;
use rmcp::model::ClientConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use sluice_e2e::{Gateway, Launch, call, text};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// The provider process; it stops when its stdin closes (this struct dropped) or on kill.
struct Provider {
    _child: Child,
    _stdin: ChildStdin,
    issuer: String,
    node: PathBuf,
    scripts: PathBuf,
}

/// Installs (once, cached) and starts the provider.
async fn provider() -> Result<Provider> {
    let install = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc/install.sh");
    let out = Command::new(&install)
        .output()
        .await
        .context("running tests/oidc/install.sh")?;
    ensure!(
        out.status.success(),
        "install.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vars = String::from_utf8(out.stdout)?;
    let var = |name: &str| {
        vars.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("install.sh printed no {name}"))
    };
    let (node, scripts) = (var("SLUICE_NODE")?, var("SLUICE_OIDC")?);
    let mut child = Command::new(&node)
        .arg(scripts.join("provider.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("the provider did not start within 30 s")??
        .ok_or_else(|| anyhow!("the provider exited before it was ready"))?;
    // Keep reading: the provider dies of EPIPE if it writes to a closed stdout.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let ready: Value = serde_json::from_str(&line)?;
    let issuer = ready["issuer"]
        .as_str()
        .ok_or_else(|| anyhow!("no issuer in {line}"))?
        .to_owned();
    Ok(Provider {
        _child: child,
        _stdin: stdin,
        issuer,
        node,
        scripts,
    })
}

impl Provider {
    /// An access token for `resource` through the real authorization-code + PKCE flow, as `user`.
    async fn token(&self, resource: &str, user: &str, scope: &str) -> Result<(String, Value)> {
        let out = Command::new(&self.node)
            .arg(self.scripts.join("client.mjs"))
            .args([&self.issuer, resource, user, scope])
            .output()
            .await?;
        ensure!(
            out.status.success(),
            "client.mjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: Value = serde_json::from_slice(&out.stdout)?;
        let token = answer["access_token"]
            .as_str()
            .ok_or_else(|| anyhow!("no access_token: {answer}"))?;
        Ok((token.to_owned(), answer))
    }

    /// The MCP TypeScript SDK's client, signing in by itself from the gateway's 401 as `user`, then calling
    /// `tool`: the scopes it was granted and the tool's result.
    async fn sdk_call(&self, url: &str, user: &str, tool: &str, arguments: &Value) -> Result<Value> {
        let out = Command::new(&self.node)
            .arg(self.scripts.join("mcp-client.mjs"))
            .args([url, user, tool, &arguments.to_string()])
            .output()
            .await?;
        ensure!(
            out.status.success(),
            "mcp-client.mjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// A token signed by `signer` (`ec`, `rsa`: the provider's keys; `stranger`; `none`; `hs-public`).
    async fn mint(&self, signer: &str, claims: &Value, tamper: Option<Value>) -> Result<String> {
        let body = json!({"signer": signer, "claims": claims, "header": {}, "tamper": tamper});
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/__test/mint", self.issuer))
            .body(body.to_string())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(answer["token"]
            .as_str()
            .ok_or_else(|| anyhow!("no token"))?
            .to_owned())
    }
}

/// `sluice up` with `[oauth]` naming the provider, on a port chosen first so that the resource URL is the
/// one clients use. Returns the gateway and its resource URL. The port is free when chosen, but another
/// process may bind it before the gateway does: then a new port is tried (three times at most).
async fn gateway(provider: &Provider, extra: &str) -> Result<(Gateway, String, tempfile::TempDir)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let resource = format!("http://127.0.0.1:{port}/mcp");
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("sluice.toml");
        std::fs::write(
            &config,
            format!(
                "[rate_limits]\nauth_failures = 0\n\n[oauth]\nissuer = \"{}\"\nresource = \"{resource}\"\n{extra}",
                provider.issuer
            ),
        )?;
        let launched = Gateway::launch(Launch {
            args: vec!["--config".into(), config.display().to_string()],
            env: vec![("SLUICE_LISTEN".into(), format!("127.0.0.1:{port}"))],
            ..Default::default()
        })
        .await;
        match launched {
            Ok(gw) => return Ok((gw, resource, dir)),
            Err(e) if attempt < 3 && format!("{e:#}").contains("Address already in use") => {
                eprintln!("port {port} was taken before the gateway bound it; trying another");
            }
            Err(e) => return Err(e),
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A raw POST to the MCP endpoint with `bearer`: status, `WWW-Authenticate`, body.
async fn post(
    gw: &Gateway,
    bearer: Option<&str>,
    session: Option<&str>,
    body: &Value,
) -> Result<(u16, String, String)> {
    let mut req = reqwest::Client::new()
        .post(&gw.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(bearer) = bearer {
        req = req.header("authorization", format!("Bearer {bearer}"));
    }
    if let Some(session) = session {
        req = req
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((status, challenge, resp.text().await?))
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "oauth-e2e", "version": "1"}}})
}

/// An MCP session opened with `bearer`; its id.
async fn session(gw: &Gateway, bearer: &str) -> Result<String> {
    let resp = reqwest::Client::new()
        .post(&gw.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {bearer}"))
        .body(initialize().to_string())
        .send()
        .await?;
    ensure!(resp.status() == 200, "initialize: {}", resp.status());
    let id = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow!("no session id"))?
        .to_owned();
    resp.text().await?;
    post(
        gw,
        Some(bearer),
        Some(&id),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await?;
    Ok(id)
}

fn tool_call(tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

#[tokio::test]
async fn a_token_from_the_authorization_code_flow_calls_tools_and_the_audit_names_its_subject() -> Result<()>
{
    let provider = provider().await?;
    let (gw, resource, _dir) = gateway(&provider, "").await?;
    let origin = resource.trim_end_matches("/mcp");
    let metadata_url = format!("{origin}/.well-known/oauth-protected-resource/mcp");

    // The metadata, at the path-suffixed location the challenge names and at the root one.
    let expected = json!({
        "resource": resource,
        "authorization_servers": [provider.issuer],
        "scopes_supported": ["sluice:admin", "sluice:fs_write", "sluice:query", "sluice:sandbox", "sluice:schema"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Sluice",
    });
    for url in [
        metadata_url.clone(),
        format!("{origin}/.well-known/oauth-protected-resource"),
    ] {
        let resp = reqwest::get(&url).await?;
        assert_eq!(resp.status(), 200, "{url}");
        assert_eq!(resp.json::<Value>().await?, expected, "{url}");
    }

    // No credentials: 401 naming the metadata and the scopes to ask for.
    let (status, challenge, body) = post(&gw, None, None, &initialize()).await?;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        challenge,
        format!(
            "Bearer resource_metadata=\"{metadata_url}\", scope=\"sluice:query sluice:sandbox sluice:schema\""
        )
    );

    let (token, answer) = provider
        .token(&resource, "ada", "sluice:query sluice:schema")
        .await?;
    assert_eq!(answer["scope"], "sluice:query sluice:schema");
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(gw.url.clone()).auth_header(token.clone()),
    );
    let client = ClientConfig::default().serve(transport).await?;
    let result = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT 41 + 1 AS answer"}),
    )
    .await?;
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert!(text(&result).contains("42"), "{}", text(&result));
    let result = call(&client, "list_database_connections", json!({})).await?;
    assert!(text(&result).contains("demo"), "{}", text(&result));
    client.cancel().await?;

    // API keys keep working beside tokens.
    let keyed = gw.client().await?;
    let result = call(&keyed, "list_database_connections", json!({})).await?;
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    keyed.cancel().await?;

    // The audit log names the token's subject; neither it, the store nor the log holds the token.
    let out = gw.cli(&["audit", "--limit", "10"]).await?;
    let audit = String::from_utf8(out.stdout)?;
    let callers: Vec<String> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["tool"] == "query_database")
        .map(|r| r["key_prefix"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(callers, ["oauth:ada"], "{audit}");
    let signature = token.rsplit('.').next().unwrap_or_default();
    for (what, bytes) in [
        ("audit", audit.into_bytes()),
        ("store", std::fs::read(gw.data_dir.join("sluice.db"))?),
        ("log", gw.log().into_bytes()),
    ] {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(signature), "the token reached the {what}");
    }
    Ok(())
}

#[tokio::test]
async fn the_mcp_sdk_client_signs_in_from_the_401_and_steps_up_on_a_403() -> Result<()> {
    let provider = provider().await?;
    let (gw, _resource, _dir) = gateway(&provider, "").await?;
    let answer = provider
        .sdk_call(
            &gw.url,
            "dee",
            "query_database",
            &json!({"connection_name": "demo", "sql": "SELECT 6 * 7 AS answer"}),
        )
        .await?;
    // The client asked for what the challenge offered, and got it.
    assert_eq!(
        answer["scope"], "sluice:query sluice:sandbox sluice:schema",
        "{answer}"
    );
    assert_ne!(answer["result"]["isError"], true, "{answer}");
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("42"),
        "{answer}"
    );
    let out = gw.cli(&["audit", "--limit", "5"]).await?;
    assert!(String::from_utf8(out.stdout)?.contains("\"key_prefix\":\"oauth:dee\""));

    // A tool outside those scopes: 403 insufficient_scope, the SDK asks the user for more (keeping what
    // it had, since the challenge lists the token's scopes too) and the call goes through. The sandbox is
    // off in this gateway, so the tool's own answer says that, past every scope check.
    let answer = provider
        .sdk_call(&gw.url, "dee", "fs_create_directory", &json!({"path": "out"}))
        .await?;
    assert_eq!(answer["stepUps"], 1, "{answer}");
    assert_eq!(
        answer["scope"], "sluice:query sluice:sandbox sluice:schema sluice:fs_write",
        "{answer}"
    );
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("sandbox"), "{answer}");
    assert!(!text.contains("scope"), "{answer}");
    Ok(())
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401_and_the_reason() -> Result<()> {
    let provider = provider().await?;
    let (gw, resource, _dir) = gateway(&provider, "").await?;
    let claims = |edit: &dyn Fn(&mut Value)| {
        let mut c = json!({"iss": provider.issuer, "aud": resource, "sub": "mallory", "iat": now(),
            "exp": now() + 300, "scope": "sluice:query", "client_id": "mcp-client"});
        edit(&mut c);
        c
    };
    // Control: the provider's own keys, right claims, both key types.
    for signer in ["ec", "rsa"] {
        let token = provider.mint(signer, &claims(&|_| {}), None).await?;
        let (status, _, body) = post(&gw, Some(&token), None, &initialize()).await?;
        assert_eq!(status, 200, "{signer}: {body}");
    }
    let cases: Vec<(&str, String, String)> = vec![
        (
            "expired",
            provider.mint("ec", &claims(&|c| c["exp"] = json!(now() - 600)), None).await?,
            "the access token expired 6".into(),
        ),
        (
            "wrong audience",
            provider.mint("ec", &claims(&|c| c["aud"] = json!("http://127.0.0.1:1/mcp")), None).await?,
            format!(
                "the access token is for audience 'http://127.0.0.1:1/mcp', not for this server ('{resource}'); request it with resource={resource}"
            ),
        ),
        (
            "wrong issuer",
            provider.mint("ec", &claims(&|c| c["iss"] = json!("https://evil.example")), None).await?,
            format!("the access token was issued by 'https://evil.example', not by this server's issuer '{}'", provider.issuer),
        ),
        (
            "unknown kid",
            provider.mint("stranger", &claims(&|_| {}), None).await?,
            "the access token is signed with key 'stranger-1', which is not among the issuer's keys".into(),
        ),
        (
            "alg none",
            provider.mint("none", &claims(&|_| {}), None).await?,
            "the access token is unsigned (alg none); tokens must be signed by the issuer".into(),
        ),
        (
            "HS256 keyed with the public key",
            provider.mint("hs-public", &claims(&|_| {}), None).await?,
            "the access token's algorithm HS256 is not accepted; tokens must be signed with one of the issuer's asymmetric keys (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)".into(),
        ),
        (
            "tampered claims",
            provider.mint("ec", &claims(&|_| {}), Some(json!({"scope": "sluice:admin", "sub": "root"}))).await?,
            "the access token's signature does not verify: it was altered or not signed by the issuer".into(),
        ),
        (
            "not a JWT",
            "opaque-token-value".to_owned(),
            "the access token is not a valid JWT: expected three base64url parts separated by dots".into(),
        ),
    ];
    for (case, token, description) in cases {
        let (status, challenge, body) = post(&gw, Some(&token), None, &initialize()).await?;
        assert_eq!(status, 401, "{case}: {body}");
        let prefix = format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", error=\"invalid_token\", error_description=\"{description}",
            resource.trim_end_matches("/mcp")
        );
        assert!(
            challenge.starts_with(&prefix),
            "{case}:\n{challenge}\nwanted\n{prefix}"
        );
        let body: Value = serde_json::from_str(&body)?;
        assert_eq!(body["error"], "invalid_token", "{case}");
    }
    // A bad API key beside OAuth gets the same kind of challenge.
    let (status, challenge, _) = post(&gw, Some("sluice_not-a-key"), None, &initialize()).await?;
    assert_eq!(status, 401);
    assert!(
        challenge.ends_with("error=\"invalid_token\", error_description=\"invalid API key\""),
        "{challenge}"
    );
    Ok(())
}

/// The org a token names must exist here: an org claim naming none is refused, one naming an org made with
/// `sluice org create` is served in that org.
#[tokio::test]
async fn a_token_for_an_org_the_gateway_does_not_have_is_refused() -> Result<()> {
    let provider = provider().await?;
    let (gw, resource, _dir) = gateway(&provider, "org_claim = \"org\"\n").await?;
    let claims = |org: &str| {
        json!({"iss": provider.issuer, "aud": resource, "sub": "olga", "iat": now(), "exp": now() + 300,
               "scope": "sluice:schema", "client_id": "mcp-client", "org": org})
    };
    let token = provider.mint("ec", &claims("nowhere"), None).await?;
    let (status, challenge, _) = post(&gw, Some(&token), None, &initialize()).await?;
    assert_eq!(status, 401);
    assert!(
        challenge.contains(
            "error_description=\"the token's organization 'nowhere' does not exist on this gateway; an operator creates it with 'sluice org create --name nowhere'\""
        ),
        "{challenge}"
    );
    let out = gw.cli(&["org", "create", "--name", "acme"]).await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = provider.mint("ec", &claims("acme"), None).await?;
    let (status, _, body) = post(&gw, Some(&token), None, &initialize()).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test]
async fn a_token_without_the_query_scope_gets_403_insufficient_scope_and_roles_grant_scopes() -> Result<()> {
    let provider = provider().await?;
    let (gw, resource, _dir) = gateway(&provider, "role_claim = \"sluice_role\"\n").await?;
    let (token, _) = provider.token(&resource, "bo", "sluice:schema").await?;
    let id = session(&gw, &token).await?;
    let (status, challenge, body) = post(
        &gw,
        Some(&token),
        Some(&id),
        &tool_call(
            "query_database",
            json!({"connection_name": "demo", "sql": "SELECT 1"}),
        ),
    )
    .await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        challenge,
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", error=\"insufficient_scope\", scope=\"sluice:schema sluice:query\", error_description=\"the tool query_database needs the Sluice scope 'query' (OAuth scope sluice:query); this token grants: schema\"",
            resource.trim_end_matches("/mcp")
        )
    );
    // A tool within the token's scope runs.
    let (status, _, body) = post(
        &gw,
        Some(&token),
        Some(&id),
        &tool_call("list_tables", json!({"connection_name": "demo"})),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("orders") || body.contains("customers"), "{body}");

    // `cy` has the provider's `sluice_role: analyst` claim: the role grants `query` beyond the token's scope.
    let (token, _) = provider.token(&resource, "cy", "sluice:schema").await?;
    let id = session(&gw, &token).await?;
    let (status, _, body) = post(
        &gw,
        Some(&token),
        Some(&id),
        &tool_call(
            "query_database",
            json!({"connection_name": "demo", "sql": "SELECT 7 AS seven"}),
        ),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("seven") && !body.contains("\"isError\":true"),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn without_oauth_there_is_no_metadata_and_the_key_challenge_is_unchanged() -> Result<()> {
    let gw = Gateway::up().await?;
    let origin = gw.url.trim_end_matches("/mcp");
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        assert_eq!(
            reqwest::get(format!("{origin}{path}")).await?.status(),
            404,
            "{path}"
        );
    }
    let (status, challenge, _) = post(&gw, Some("eyJhbGciOiJub25lIn0.e30."), None, &initialize()).await?;
    assert_eq!(
        (status, challenge.as_str()),
        (
            401,
            "Bearer realm=\"sluice\", error=\"invalid_token\", error_description=\"invalid API key\""
        )
    );
    Ok(())
}
