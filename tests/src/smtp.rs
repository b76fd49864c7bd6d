//! A small SMTP server for tests: the service delivers over real SMTP (lettre, TCP) and the
//! test reads what arrived. It speaks enough of RFC 5321 for a client: greeting, EHLO/HELO,
//! MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT.

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
    pub port: u16,
    messages: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<Notify>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
        let port = listener.local_addr().expect("addr").port();
        let sink = SmtpSink { port, messages: Arc::default(), arrived: Arc::default() };
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
        format!("smtp://127.0.0.1:{}", self.port)
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

    /// Everything delivered to `to` so far.
    pub fn messages_to(&self, to: &str) -> Vec<Received> {
        self.messages
            .lock()
            .map(|m| m.iter().filter(|r| r.to.iter().any(|t| t == to)).cloned().collect())
            .unwrap_or_default()
    }

    /// The last message to `to`. Delivery is finished before the GraphQL answer is sent, so a
    /// test can read it right after the request; no waiting is involved.
    pub fn last_to(&self, to: &str) -> Option<Received> {
        self.messages_to(to).pop()
    }
}

/// The first run of `n` digits in `text` (codes in mail bodies).
pub fn digits(text: &str, n: usize) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(n).find(|w| w.iter().all(char::is_ascii_digit)).map(|w| w.iter().collect())
}
