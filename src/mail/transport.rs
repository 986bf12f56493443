//! Where messages go: an SMTP server (pooled connections, STARTTLS, implicit TLS or plain for a
//! local relay) or, with no SMTP host configured, `.eml` files in a folder.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{FileTransport, Message, SmtpTransport, Transport as _};
use secrecy::ExposeSecret;

use crate::config::{MailSettings, SmtpTls};

pub enum Transport {
    Smtp(SmtpTransport),
    Files {
        transport: FileTransport,
        folder: PathBuf,
    },
}

/// Why a message was not handed over; `permanent` ones are not retried.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("writing the message file: {0}")]
    File(#[from] lettre::transport::file::Error),
}

impl SendError {
    /// The server refused for good (5xx): trying again will not help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Smtp(e) if e.is_permanent())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("mail.smtp_host {host:?}: {source}")]
    Smtp {
        host: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("mail.outbox_dir {dir:?} cannot be created: {source}")]
    Folder {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

impl Transport {
    pub fn from_settings(settings: &MailSettings, senders: usize) -> Result<Self, TransportError> {
        if settings.smtp_host.trim().is_empty() {
            std::fs::create_dir_all(&settings.outbox_dir).map_err(|source| {
                TransportError::Folder {
                    dir: settings.outbox_dir.clone(),
                    source,
                }
            })?;
            let folder = PathBuf::from(&settings.outbox_dir);
            return Ok(Self::Files {
                transport: FileTransport::new(&folder),
                folder,
            });
        }
        let host = settings.smtp_host.trim();
        let smtp_error = |source| TransportError::Smtp {
            host: host.to_owned(),
            source,
        };
        let mut builder = match settings.smtp_tls {
            SmtpTls::Starttls => SmtpTransport::starttls_relay(host).map_err(smtp_error)?,
            SmtpTls::Tls => SmtpTransport::relay(host).map_err(smtp_error)?,
            SmtpTls::None => SmtpTransport::builder_dangerous(host),
        };
        builder = builder
            .port(settings.smtp_port)
            .timeout(Some(Duration::from_secs(settings.smtp_timeout_seconds)))
            .pool_config(PoolConfig::new().max_size(u32::try_from(senders.max(1)).unwrap_or(4)));
        if !settings.smtp_username.is_empty() {
            let password = settings
                .smtp_password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default();
            builder =
                builder.credentials(Credentials::new(settings.smtp_username.clone(), password));
        }
        Ok(Self::Smtp(builder.build()))
    }

    /// Hands the message over; for files, returns where it was written.
    pub fn send(&self, message: &Message) -> Result<Option<PathBuf>, SendError> {
        match self {
            Self::Smtp(smtp) => {
                smtp.send(message)?;
                Ok(None)
            }
            Self::Files { transport, folder } => {
                let id = transport.send(message)?;
                Ok(Some(folder.join(format!("{id}.eml"))))
            }
        }
    }
}
