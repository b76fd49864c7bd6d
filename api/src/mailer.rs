//! E-mail delivery: SMTP through lettre when `PASSERELLE_SMTP_URL` is set, the log otherwise
//! (development only; production refuses to start without SMTP). Each message goes out as
//! multipart/alternative: the text part first, then the HTML part (clients show the last one
//! they can).

use std::sync::Arc;

use anyhow::Context as _;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use passerelle_domain::Error;
use passerelle_domain::mail::{LogMailer, Mail, MailFuture, Mailer};
use secrecy::ExposeSecret;

use crate::config::Settings;

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer for SmtpMailer {
    fn send(&self, mail: Mail) -> MailFuture<'_> {
        Box::pin(async move {
            let to: Mailbox = mail.to.parse().map_err(|_| Error::bad_input("email", "not a deliverable address"))?;
            let message = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(mail.subject)
                .multipart(
                    MultiPart::alternative()
                        .boundary(boundary())
                        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(body(&mail.text)))
                        .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(body(&mail.html))),
                )
                .map_err(Error::internal)?;
            self.transport.send(message).await.map_err(Error::internal)?;
            Ok(())
        })
    }
}

/// 8bit with CRLF line ends keeps codes and tokens on their own lines, readable as written;
/// should the text not qualify (very long lines), lettre picks an encoding itself.
fn body(text: &str) -> Body {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    Body::new_with_encoding(crlf, ContentTransferEncoding::EightBit).unwrap_or_else(Body::new)
}

/// Letters only, and an `=` (which base64 and quoted-printable bodies never contain on a line
/// start): lettre's default boundary is 40 random letters *and digits*, which a reader looking
/// for a 6-digit code or a token line could mistake for one.
fn boundary() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let letters: String = random.chars().map(|c| c.to_digit(16).map_or('z', |d| char::from(b'a' + d as u8))).collect();
    format!("=_passerelle_{letters}")
}

/// The mailer for these settings.
pub fn mailer(settings: &Settings) -> anyhow::Result<Arc<dyn Mailer>> {
    let Some(url) = &settings.smtp_url else {
        return Ok(Arc::new(LogMailer));
    };
    let transport =
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret()).context("PASSERELLE_SMTP_URL")?.build();
    let from = settings.mail_from.parse().context("PASSERELLE_MAIL_FROM is not a mailbox")?;
    Ok(Arc::new(SmtpMailer { transport, from }))
}
