//! Just enough of the NATS client protocol for [`crate::FleetNatsScore`]'s
//! smoke test, over a connection the cluster opens (a port-forward): read
//! the server's `INFO`, log in with credentials (the server's challenge
//! signed with their key), and do a KV round trip (put a key into the
//! bucket `fleet-smoke`, read it back) as the agents and the operator do.
//! The CLI links this crate, so it speaks the protocol itself rather than
//! link a NATS client.

use std::time::Duration;

use base64::Engine;
use fleet_model::identity::Credentials;
use harmony::Tunnel;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The bucket the smoke test writes: one key per run, each kept a minute.
pub const SMOKE_BUCKET: &str = "fleet-smoke";

/// Why the round trip failed: the step, what the server said, what to do.
#[derive(Debug)]
pub struct Failed {
    pub step: &'static str,
    pub why: String,
    pub help: &'static str,
}

fn failed(step: &'static str, why: impl Into<String>, help: &'static str) -> Failed {
    Failed {
        step,
        why: why.into(),
        help,
    }
}

/// How long a JetStream that does not answer yet (a cluster still choosing its leader) is waited for.
const JETSTREAM_READY: Duration = Duration::from_secs(60);
/// How long one question waits before it is asked again, while JetStream is not ready.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(5);

const READ_SERVER_LOG: &str = "read the server's log (`kubectl logs statefulset/fleet-nats`)";

/// A logged-in connection.
struct Session {
    io: BufReader<Box<dyn Tunnel>>,
    inbox: String,
    next: u32,
}

/// Logs in with `credentials` and does a KV round trip; each answer must come within `patience`.
pub async fn round_trip(conn: Box<dyn Tunnel>, credentials: &Credentials, patience: Duration) -> Result<(), Failed> {
    let mut io = BufReader::new(conn);
    let info = within(patience, "the server's greeting", read_line(&mut io, "the server's greeting")).await?;
    let info: Value = info
        .strip_prefix("INFO ")
        .and_then(|j| serde_json::from_str(j).ok())
        .ok_or_else(|| {
            failed(
                "the server's greeting",
                format!("not a NATS server: it said {info:?}"),
                "check that the Service's `client` port leads to NATS",
            )
        })?;
    if info["auth_required"] != json!(true) {
        return Err(failed(
            "the server's greeting",
            "the server lets clients in without credentials",
            "the configuration lost the fleet's authority (`operator`, `resolver`): redeploy FleetNatsScore",
        ));
    }
    let Some(challenge) = info["nonce"].as_str() else {
        return Err(failed(
            "the server's greeting",
            "the server asks for a password, not for credentials: it does not trust the fleet's authority",
            "the configuration lost the fleet's authority (`operator`, `resolver`): redeploy FleetNatsScore",
        ));
    };
    if info["jetstream"] != json!(true) {
        return Err(failed(
            "the server's greeting",
            "JetStream is not up: the fleet's KV buckets cannot exist",
            "the configuration lost its `jetstream` block, or its store is not writable: redeploy FleetNatsScore and read the server's log",
        ));
    }
    let signature = credentials.sign_nonce(challenge).map_err(|e| {
        failed(
            "login",
            e.to_string(),
            "make the fleet's authority again (`fleet-operator nats-authority`)",
        )
    })?;
    let connect = json!({
        "verbose": false, "pedantic": false, "jwt": credentials.jwt, "sig": signature,
        "name": "harmony smoke test", "lang": "rust", "version": env!("CARGO_PKG_VERSION"),
        "protocol": 1, "headers": true, "no_responders": true,
    });
    let nonce = nonce();
    let inbox = format!("_INBOX.harmony-smoke-{nonce}");
    let hello = format!("CONNECT {connect}\r\nPING\r\nSUB {inbox}.* 1\r\n");
    write(&mut io, hello.as_bytes(), "login").await?;
    loop {
        let line = within(patience, "login", read_line(&mut io, "login")).await?;
        match line.as_str() {
            "PONG" => break,
            "+OK" => {}
            l if l.starts_with("INFO ") => {}
            l if l.starts_with("-ERR") => {
                return Err(failed(
                    "login",
                    format!("NATS refused the operator's credentials: {}", l.trim_start_matches("-ERR").trim()),
                    "the server trusts another authority than the Score's (`FLEET_NATS_AUTHORITY`): redeploy FleetNatsScore with the one the fleet uses",
                ));
            }
            other => return Err(failed("login", format!("unexpected answer {other:?}"), READ_SERVER_LOG)),
        }
    }
    let mut session = Session { io, inbox, next: 0 };
    // A clustered JetStream answers once its servers have chosen a leader, which may take a
    // while after they start: ask until it answers, as the operator would.
    let ready_by = tokio::time::Instant::now() + JETSTREAM_READY;
    loop {
        match session
            .ask("$JS.API.INFO", "", patience.min(ASK_AGAIN_AFTER), "waiting for JetStream")
            .await
        {
            Ok(_) => break,
            Err(_) if tokio::time::Instant::now() < ready_by => tokio::time::sleep(Duration::from_secs(1)).await,
            Err(f) => {
                return Err(failed(
                    f.step,
                    format!("{} (still after {} s)", f.why, JETSTREAM_READY.as_secs()),
                    "a clustered NATS needs a majority of its servers up and routed to each other: read the servers' logs",
                ));
            }
        }
    }
    let stream = format!("KV_{SMOKE_BUCKET}");
    let config = json!({
        "name": stream, "subjects": [format!("$KV.{SMOKE_BUCKET}.>")],
        "retention": "limits", "storage": "memory", "num_replicas": 1, "discard": "new",
        "max_msgs_per_subject": 1, "max_age": 60_000_000_000u64, "duplicate_window": 60_000_000_000u64,
        "max_consumers": -1, "max_msgs": -1, "max_bytes": -1, "max_msg_size": -1,
        "allow_rollup_hdrs": true, "deny_delete": true, "allow_direct": true,
    });
    session
        .ask(
            &format!("$JS.API.STREAM.CREATE.{stream}"),
            &config.to_string(),
            patience,
            "creating the smoke bucket",
        )
        .await?;
    let key = format!("probe-{nonce}");
    let value = format!("harmony smoke test {nonce}");
    session
        .ask(&format!("$KV.{SMOKE_BUCKET}.{key}"), &value, patience, "putting a key")
        .await?;
    let get = json!({ "last_by_subj": format!("$KV.{SMOKE_BUCKET}.{key}") });
    let got = session
        .ask(
            &format!("$JS.API.STREAM.MSG.GET.{stream}"),
            &get.to_string(),
            patience,
            "reading the key back",
        )
        .await?;
    let data = got
        .pointer("/message/data")
        .and_then(Value::as_str)
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .unwrap_or_default();
    if data != value.as_bytes() {
        return Err(failed(
            "reading the key back",
            format!("bucket `{SMOKE_BUCKET}` gave back {:?} for `{key}`", String::from_utf8_lossy(&data)),
            READ_SERVER_LOG,
        ));
    }
    let _ = session.io.get_mut().shutdown().await;
    Ok(())
}

impl Session {
    /// A JetStream request: its answer as JSON, or the `error` it holds.
    async fn ask(&mut self, subject: &str, payload: &str, patience: Duration, step: &'static str) -> Result<Value, Failed> {
        let answer = self.request(subject, payload.as_bytes(), patience, step).await?;
        api_answer(&answer, step)
    }

    /// Publishes with a reply subject and returns the one answer (payload).
    async fn request(&mut self, subject: &str, payload: &[u8], patience: Duration, step: &'static str) -> Result<Vec<u8>, Failed> {
        self.next += 1;
        let reply = format!("{}.{}", self.inbox, self.next);
        let mut out = format!("PUB {subject} {reply} {}\r\n", payload.len()).into_bytes();
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
        write(&mut self.io, &out, step).await?;
        within(patience, step, async {
            loop {
                let line = read_line(&mut self.io, step).await?;
                let words: Vec<&str> = line.split(' ').collect();
                match words.as_slice() {
                    ["PING"] => write(&mut self.io, b"PONG\r\n", step).await?,
                    ["MSG", to, _sid, size] | ["MSG", to, _sid, _, size] => {
                        let body = read_exact(&mut self.io, size, step).await?;
                        if *to == reply {
                            return Ok(body);
                        }
                    }
                    ["HMSG", to, _sid, headers, size] | ["HMSG", to, _sid, _, headers, size] => {
                        let body = read_exact(&mut self.io, size, step).await?;
                        let headers: usize = headers.parse().unwrap_or(0).min(body.len());
                        let status = String::from_utf8_lossy(&body[..headers]).lines().next().unwrap_or_default().to_string();
                        if *to != reply {
                            continue;
                        }
                        if status.starts_with("NATS/1.0 503") {
                            return Err(failed(
                                step,
                                format!("no responders for `{subject}`: JetStream does not answer"),
                                "the configuration lost its `jetstream` block, or its store is not writable: redeploy FleetNatsScore and read the server's log",
                            ));
                        }
                        return Ok(body[headers..].to_vec());
                    }
                    [err, ..] if err.starts_with("-ERR") => {
                        return Err(failed(step, format!("NATS said {}", line.trim_start_matches("-ERR").trim()), READ_SERVER_LOG));
                    }
                    _ => {}
                }
            }
        })
        .await
    }
}

/// A JetStream API answer as JSON, or its `error`.
fn api_answer(body: &[u8], step: &'static str) -> Result<Value, Failed> {
    let answer: Value = serde_json::from_slice(body).map_err(|_| {
        failed(
            step,
            format!("not a JetStream answer: {:?}", String::from_utf8_lossy(body)),
            READ_SERVER_LOG,
        )
    })?;
    if let Some(error) = answer.get("error") {
        let description = error["description"].as_str().unwrap_or("no description");
        return Err(failed(
            step,
            format!("JetStream refused: {description} (code {})", error["code"]),
            READ_SERVER_LOG,
        ));
    }
    Ok(answer)
}

async fn within<T>(patience: Duration, step: &'static str, work: impl Future<Output = Result<T, Failed>>) -> Result<T, Failed> {
    tokio::time::timeout(patience, work)
        .await
        .unwrap_or_else(|_| Err(failed(step, format!("no answer within {} s", patience.as_secs()), READ_SERVER_LOG)))
}

async fn read_line(io: &mut BufReader<Box<dyn Tunnel>>, step: &'static str) -> Result<String, Failed> {
    let mut line = String::new();
    match io.read_line(&mut line).await {
        Ok(0) => Err(failed(step, "the server closed the connection", READ_SERVER_LOG)),
        Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_string()),
        Err(e) => Err(failed(step, format!("the connection broke: {e}"), READ_SERVER_LOG)),
    }
}

/// A message's payload of `size` bytes and its closing CRLF.
async fn read_exact(io: &mut BufReader<Box<dyn Tunnel>>, size: &str, step: &'static str) -> Result<Vec<u8>, Failed> {
    let size: usize = size
        .parse()
        .map_err(|_| failed(step, format!("a malformed message size {size:?}"), READ_SERVER_LOG))?;
    let mut body = vec![0; size + 2];
    io.read_exact(&mut body)
        .await
        .map_err(|e| failed(step, format!("the connection broke: {e}"), READ_SERVER_LOG))?;
    body.truncate(size);
    Ok(body)
}

async fn write(io: &mut BufReader<Box<dyn Tunnel>>, bytes: &[u8], step: &'static str) -> Result<(), Failed> {
    let conn = io.get_mut();
    let sent = async {
        conn.write_all(bytes).await?;
        conn.flush().await
    };
    sent.await
        .map_err(|e| failed(step, format!("the connection broke: {e}"), READ_SERVER_LOG))
}

/// Distinct per run, so two smoke tests never read each other's key.
fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}{:x}", nanos, std::process::id())
}
