//! Outgoing e-mail (verification and password-reset links).
//!
//! The default [`OutboxMailer`] writes each message as a file in
//! `<data-dir>/outbox/` and logs it, so a single-node install needs no mail
//! server. [`SmtpMailer`] sends through an SMTP relay when configured.

use std::path::PathBuf;

use async_trait::async_trait;

/// One message.
#[derive(Clone, Debug)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: Mail) -> anyhow::Result<()>;
}

/// Writes messages to files.
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    /// Mails go to `dir`; an existing one is made private at once (mails
    /// hold live sign-in links), whatever an older version left behind.
    pub fn new(dir: PathBuf) -> Self {
        #[cfg(unix)]
        if dir.is_dir() {
            use std::os::unix::fs::PermissionsExt;
            if let Err(e) = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot make the outbox private");
            }
        }
        OutboxMailer { dir }
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        // Mails hold live sign-in links: readable by the server's user only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700)).await?;
        }
        let name = format!(
            "{}-{}.eml",
            crate::auth::now_ms(),
            crate::auth::secret::new_id()
        );
        let text = format!(
            "To: {}\nSubject: {}\n\n{}\n",
            mail.to, mail.subject, mail.body
        );
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(self.dir.join(&name)).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, text.as_bytes()).await?;
        file.sync_all().await?;
        tracing::info!(to = %mail.to, subject = %mail.subject, file = %name, "mail written to outbox");
        Ok(())
    }
}

/// Sends through SMTP (`smtp://` or `smtps://user:pass@host:port`).
pub struct SmtpMailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl SmtpMailer {
    pub fn new(url: &str, from: &str) -> anyhow::Result<Self> {
        let transport =
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)?.build();
        Ok(SmtpMailer {
            transport,
            from: from.parse()?,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        use lettre::AsyncTransport;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(mail.to.parse()?)
            .subject(mail.subject)
            .body(mail.body)?;
        self.transport.send(message).await?;
        Ok(())
    }
}
