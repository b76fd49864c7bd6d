//! Where the e-mail tests' messages go: the service delivers over real SMTP (lettre, TCP) and
//! the test reads what arrived.
//!
//! - With `TEST_SMTP_SERVER` (`host:port`) and `TEST_SMTP_SPOOL` (a directory) set — `.ci/run`
//!   starts aiosmtpd, a separate SMTP server process, and sets them — messages go there and are
//!   read back from the JSON files it spools. Each sink has its own sender address, so tests
//!   running at once on one server read only their own mail.
//! - Otherwise (`cargo test` on a bare machine) a small server in the test binary: enough of
//!   RFC 5321 for a client — greeting, EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET,
//!   NOOP, QUIT.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One delivered message.
#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent (quoted-printable or base64 bodies are left as they are).
    pub data: String,
}

#[derive(Clone)]
pub struct SmtpSink {
    /// `host:port` of the SMTP server.
    server: String,
    /// The sender address of the service using this sink.
    pub from: String,
    /// The external server's spool directory, if one is used.
    spool: Option<PathBuf>,
    messages: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<Notify>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        // Letters only: tests look for codes as runs of digits in the whole message.
        let tag: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .map(|c| c.to_digit(10).map_or(c, |d| char::from(b'g' + d as u8)))
            .collect();
        let from = format!("no-reply+{tag}@passerelle.localhost");
        if let (Ok(server), Ok(spool)) = (std::env::var("TEST_SMTP_SERVER"), std::env::var("TEST_SMTP_SPOOL")) {
            let (messages, arrived) = (Arc::default(), Arc::default());
            return SmtpSink { server, from, spool: Some(spool.into()), messages, arrived };
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
        let port = listener.local_addr().expect("addr").port();
        let server = format!("127.0.0.1:{port}");
        let sink = SmtpSink { server, from, spool: None, messages: Arc::default(), arrived: Arc::default() };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.session(stream).await;
                });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.server)
    }

    /// The settings of a service delivering its mail here.
    pub fn settings(&self) -> Vec<(String, String)> {
        vec![
            ("PASSERELLE_SMTP_URL".into(), self.url()),
            ("PASSERELLE_MAIL_FROM".into(), format!("Passerelle <{}>", self.from)),
        ]
    }

    async fn session(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        w.write_all(b"220 sink ESMTP\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        while let Some(line) = lines.next_line().await? {
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                w.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?;
            } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
                w.write_all(b"250 ok\r\n").await?;
            } else if upper.starts_with("MAIL FROM:") {
                from = line[10..].trim().trim_matches(['<', '>']).to_owned();
                w.write_all(b"250 ok\r\n").await?;
            } else if upper.starts_with("RCPT TO:") {
                to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                w.write_all(b"250 ok\r\n").await?;
            } else if upper == "DATA" {
                w.write_all(b"354 go on\r\n").await?;
                let mut data = String::new();
                while let Some(l) = lines.next_line().await? {
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').filter(|_| l.starts_with("..")).unwrap_or(&l));
                    data.push('\n');
                }
                if let Ok(mut m) = self.messages.lock() {
                    m.push(Received { from: std::mem::take(&mut from), to: std::mem::take(&mut to), data });
                }
                self.arrived.notify_waiters();
                w.write_all(b"250 queued\r\n").await?;
            } else if upper == "RSET" {
                (from, to) = (String::new(), Vec::new());
                w.write_all(b"250 ok\r\n").await?;
            } else if upper == "QUIT" {
                w.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                w.write_all(b"502 not implemented\r\n").await?;
            }
        }
        Ok(())
    }

    /// Everything this sink's service delivered to `to` so far, oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<Received> {
        // A shared server holds every test's mail: keep this sink's service's own.
        let all = match &self.spool {
            Some(dir) => spooled(dir).into_iter().filter(|r| r.from == self.from).collect(),
            None => self.messages.lock().map(|m| m.clone()).unwrap_or_default(),
        };
        all.into_iter().filter(|r| r.to.iter().any(|t| t == to)).collect()
    }

    /// The last message to `to` so far. The service sends mail *after* answering (the answer
    /// must not depend on whether a message goes out), so right after a request use
    /// [`SmtpSink::wait_for`] instead.
    pub fn last_to(&self, to: &str) -> Option<Received> {
        self.messages_to(to).pop()
    }

    /// The service's SMTP mailer, pointed at this sink: what a test hands the dispatcher.
    pub fn mailer(&self) -> std::sync::Arc<dyn passerelle_domain::mail::Mailer> {
        let settings = passerelle_api::Settings::from_vars(&self.settings()).expect("settings");
        passerelle_api::mailer::mailer(&settings).expect("mailer")
    }

    /// Waits until `n` messages to `to` arrived (at most 10 s, then panics); returns them all.
    pub async fn wait_for(&self, to: &str, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let arrived = self.arrived.notified();
            let messages = self.messages_to(to);
            if messages.len() >= n {
                return messages;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} of {n} e-mails to {to} arrived", messages.len());
            // An external server's spool is polled; the local server wakes us up.
            let poll = std::time::Duration::from_millis(if self.spool.is_some() { 50 } else { 500 });
            let _ = tokio::time::timeout(poll, arrived).await;
        }
    }

    /// The last message to `to`, waiting for it if none arrived yet.
    pub async fn next_to(&self, to: &str) -> Received {
        self.wait_for(to, 1).await.pop().expect("one message")
    }
}

/// The messages an external server spooled (one JSON file each), in the order they arrived.
fn spooled(dir: &Path) -> Vec<Received> {
    // The server numbers its files in arrival order.
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the SMTP spool")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a spooled message");
            let v: serde_json::Value = serde_json::from_str(&text).expect("spooled message is JSON");
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            Received {
                from: field("from"),
                to: v["to"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_owned)).collect(),
                data: field("data").replace("\r\n", "\n"),
            }
        })
        .collect()
}

/// The first run of `n` digits in `text` (codes in mail bodies).
pub fn digits(text: &str, n: usize) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(n).find(|w| w.iter().all(char::is_ascii_digit)).map(|w| w.iter().collect())
}

/// The parts of a multipart/alternative message as sent: `(content type, body)` each, in
/// order (the service sends 8-bit parts: the bodies read as written).
pub fn parts(data: &str) -> Vec<(String, String)> {
    let Some(boundary) = data.split("boundary=\"").nth(1).and_then(|b| b.split('"').next()) else {
        return Vec::new();
    };
    let delimiter = format!("--{boundary}");
    data.split(&delimiter)
        .skip(1)
        .filter(|p| !p.starts_with("--"))
        .filter_map(|p| p.trim_start_matches('\n').split_once("\n\n"))
        .map(|(headers, body)| {
            let kind = headers
                .lines()
                .find_map(|h| h.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_owned()))
                .unwrap_or_default();
            (kind, body.trim_end().to_owned())
        })
        .collect()
}

/// The payloads of the queued account mails (`mail` outbox rows) to `to`, once all of them were
/// dispatched (polled, at most 10 s): what a test reads to check that no secret stayed behind.
pub async fn dispatched_mail_rows(db: &sea_orm::DatabaseConnection, to: &str) -> Vec<serde_json::Value> {
    use sea_orm::ConnectionTrait as _;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let sql = "SELECT payload, dispatched_at_us FROM outbox WHERE topic = 'mail' ORDER BY created_at_us";
        let rows = db.query_all_raw(passerelle_domain::db::stmt(db.get_database_backend(), sql, [])).await;
        let mut mine = Vec::new();
        let mut all_sent = true;
        for row in rows.expect("read the outbox") {
            // Test code reading two plain columns: no derive needed.
            let payload: String = row.try_get("", "payload").expect("payload");
            let sent: Option<i64> = row.try_get("", "dispatched_at_us").expect("dispatched_at_us");
            let payload: serde_json::Value = serde_json::from_str(&payload).expect("a JSON payload");
            if payload["to"] == to {
                all_sent &= sent.is_some();
                mine.push(payload);
            }
        }
        if all_sent {
            return mine;
        }
        assert!(tokio::time::Instant::now() < deadline, "the mail rows to {to} were not all dispatched");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
