//! Where messages go: an SMTP server (pooled connections, STARTTLS, implicit TLS or plain for a
//! local relay) or, with no SMTP host configured, `.eml` files in a folder.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
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
    /// The server refused this message for good (5xx): trying again will not help. A refused
    /// login (530, 534, 535, 538) is not counted: it is a setting to fix, after which every
    /// waiting email should still go out.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Smtp(e) => {
                let code = e.status().map(u16::from);
                e.is_permanent() && !matches!(code, Some(530 | 534 | 535 | 538))
            }
            Self::File(_) => false,
        }
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
    #[error("mail.smtp_ca_file {file:?}: {source}")]
    CaFile {
        file: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("mail.outbox_dir {dir:?} cannot be created: {source}")]
    Folder {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// Certificate checks for `host`, trusting the public roots and the CA in `ca_file`, if any.
fn tls_parameters(host: &str, ca_file: &str) -> Result<TlsParameters, TransportError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if !ca_file.trim().is_empty() {
        let pem = std::fs::read(ca_file.trim()).map_err(|source| TransportError::CaFile {
            file: ca_file.to_owned(),
            source: Box::new(source),
        })?;
        let certificate = Certificate::from_pem(&pem).map_err(|source| TransportError::CaFile {
            file: ca_file.to_owned(),
            source: Box::new(source),
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|source| TransportError::Smtp {
            host: host.to_owned(),
            source,
        })
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
        let tls = match settings.smtp_tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters(host, &settings.smtp_ca_file)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(host, &settings.smtp_ca_file)?),
        };
        let mut builder = SmtpTransport::builder_dangerous(host).tls(tls);
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
