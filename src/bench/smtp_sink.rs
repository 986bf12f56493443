//! An SMTP server inside the mail benchmark: it listens on a free loopback port, accepts every
//! message, throws it away and counts it, keeping each Message-ID so that a message delivered
//! twice shows. It speaks just enough SMTP for lettre: no TLS, no AUTH, no pipelining.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Longest command or message line taken (RFC 5321 asks for 1,000; lettre stays well below).
const MAX_LINE: u64 = 64 * 1024;
/// Largest message taken; what the EHLO reply announces as SIZE.
const MAX_MESSAGE: usize = 10 * 1024 * 1024;
/// A client silent for this long is dropped, so no session outlives a stalled run for good.
const IDLE: Duration = Duration::from_secs(60);

const EHLO_REPLY: &[u8] =
    b"250-masterclass-bench-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n";

/// The running sink. Dropping it closes the port and ends every session.
pub struct SmtpSink {
    address: SocketAddr,
    tally: Arc<Tally>,
    accept: JoinHandle<()>,
}

/// What the sink has taken so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Messages accepted (250 after DATA), repeats included.
    pub messages: usize,
    /// Different messages: distinct Message-IDs, plus every message without one.
    pub distinct: usize,
    /// Messages whose Message-ID had been seen before.
    pub duplicates: usize,
}

#[derive(Default)]
struct Counts {
    messages: usize,
    without_id: usize,
    ids: HashMap<String, u32>,
}

struct Tally {
    counts: Mutex<Counts>,
    /// The number of different messages, for [`SmtpSink::wait_for`].
    distinct: watch::Sender<usize>,
}

impl Tally {
    fn record(&self, message_id: Option<String>) {
        let distinct = {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            counts.messages += 1;
            match message_id {
                Some(id) => *counts.ids.entry(id).or_default() += 1,
                None => counts.without_id += 1,
            }
            counts.ids.len() + counts.without_id
        };
        self.distinct.send_replace(distinct);
    }

    fn received(&self) -> Received {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let distinct = counts.ids.len() + counts.without_id;
        Received {
            messages: counts.messages,
            distinct,
            duplicates: counts.messages - distinct,
        }
    }
}

impl SmtpSink {
    /// Listens on 127.0.0.1 at a port the system picks.
    pub async fn start() -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let tally = Arc::new(Tally {
            counts: Mutex::new(Counts::default()),
            distinct: watch::Sender::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&tally)));
        Ok(Self {
            address,
            tally,
            accept,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn received(&self) -> Received {
        self.tally.received()
    }

    /// Returns once `n` different messages have arrived (never, if they do not: bound it).
    pub async fn wait_for(&self, n: usize) {
        let mut distinct = self.tally.distinct.subscribe();
        // The sender lives in `self.tally`, so the channel cannot close while we wait.
        let _ = distinct.wait_for(|seen| *seen >= n).await;
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every session.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, tally: Arc<Tally>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let tally = Arc::clone(&tally);
                    sessions.spawn(async move {
                        // A client that hangs up or misbehaves only ends its own session; the
                        // benchmark sees the consequence as a message that never arrives.
                        let _ = session(stream, &tally).await;
                    });
                }
                Err(e) => {
                    // Out of file descriptors, most likely: wait a little instead of spinning.
                    eprintln!("bench: SMTP sink cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// Where a session is in the MAIL, RCPT, DATA sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Envelope {
    Empty,
    From,
    Recipients,
}

async fn session(stream: TcpStream, tally: &Tally) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(b"220 masterclass-bench-sink ESMTP ready\r\n")
        .await?;
    let mut envelope = Envelope::Empty;
    let mut line = Vec::new();
    loop {
        if !read_line(&mut reader, &mut line).await? {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line);
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => {
                envelope = Envelope::Empty;
                EHLO_REPLY
            }
            "HELO" => {
                envelope = Envelope::Empty;
                b"250 masterclass-bench-sink\r\n"
            }
            "MAIL" => {
                envelope = Envelope::From;
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" if envelope == Envelope::Empty => b"503 5.5.1 MAIL first\r\n",
            "RCPT" => {
                envelope = Envelope::Recipients;
                b"250 2.1.5 OK\r\n"
            }
            "DATA" if envelope != Envelope::Recipients => b"503 5.5.1 RCPT first\r\n",
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let message_id = read_message(&mut reader, &mut line).await?;
                tally.record(message_id);
                envelope = Envelope::Empty;
                b"250 2.0.0 OK queued\r\n"
            }
            "RSET" => {
                envelope = Envelope::Empty;
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not recognised\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// Reads one line (with its line ending) into `line`; `false` at the end of the stream.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> io::Result<bool> {
    line.clear();
    let read = tokio::time::timeout(IDLE, reader.take(MAX_LINE).read_until(b'\n', line))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client idle"))??;
    if read > 0 && !line.ends_with(b"\n") && read as u64 >= MAX_LINE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
    }
    Ok(read > 0)
}

/// Reads a message up to the line holding a single dot, keeping only its headers; returns its
/// Message-ID.
async fn read_message<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> io::Result<Option<String>> {
    let mut headers: Vec<String> = Vec::new();
    let mut in_headers = true;
    let mut size = 0;
    loop {
        if !read_line(reader, line).await? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside DATA",
            ));
        }
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text == b"." {
            return Ok(message_id(&headers));
        }
        size += line.len();
        if size > MAX_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message too big",
            ));
        }
        if !in_headers {
            continue;
        }
        // Dot-stuffing: a line the client began with a dot got a second one.
        let text = text.strip_prefix(b".").unwrap_or(text);
        if text.is_empty() {
            in_headers = false;
        } else if text.starts_with(b" ") || text.starts_with(b"\t") {
            // A folded header continues the one before.
            if let Some(last) = headers.last_mut() {
                last.push_str(&String::from_utf8_lossy(text));
            }
        } else {
            headers.push(String::from_utf8_lossy(text).into_owned());
        }
    }
}

fn message_id(headers: &[String]) -> Option<String> {
    headers.iter().find_map(|header| {
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        (name.trim().eq_ignore_ascii_case("message-id") && !value.is_empty())
            .then(|| value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lettre::{Message, SmtpTransport, Transport};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::{message_id, Received, SmtpSink};

    fn message(n: u32) -> Message {
        Message::builder()
            .from("Bookings <bookings@example.org>".parse().expect("from"))
            .to(format!("attendee{n}@example.org").parse().expect("to"))
            .subject("Your booking is confirmed – £145.00")
            .message_id(Some(format!("<job-{n}@example.org>")))
            .body(String::from(
                "Hello,\r\n.a line that starts with a dot\r\nSee you there.\r\n",
            ))
            .expect("message")
    }

    /// Sends `numbers` through one pooled lettre transport, as the mailer does.
    async fn send(sink: &SmtpSink, numbers: Vec<u32>) {
        let port = sink.address().port();
        tokio::task::spawn_blocking(move || {
            let smtp = SmtpTransport::builder_dangerous("127.0.0.1")
                .port(port)
                .build();
            for n in numbers {
                smtp.send(&message(n)).expect("the sink takes the message");
            }
        })
        .await
        .expect("the sending thread ends");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_messages_sent_by_lettre_are_counted_three_times() {
        let sink = SmtpSink::start().await.expect("the sink listens");

        send(&sink, vec![1, 2, 3]).await;

        tokio::time::timeout(Duration::from_secs(5), sink.wait_for(3))
            .await
            .expect("three messages arrive");
        assert_eq!(
            sink.received(),
            Received {
                messages: 3,
                distinct: 3,
                duplicates: 0
            }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_sent_again_with_its_message_id_is_a_duplicate() {
        let sink = SmtpSink::start().await.expect("the sink listens");

        send(&sink, vec![7, 8, 7]).await;

        assert_eq!(
            sink.received(),
            Received {
                messages: 3,
                distinct: 2,
                duplicates: 1
            }
        );
    }

    #[tokio::test]
    async fn an_unknown_command_gets_502_and_the_session_goes_on() {
        let sink = SmtpSink::start().await.expect("the sink listens");
        let stream = tokio::net::TcpStream::connect(sink.address())
            .await
            .expect("connects");
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let greeting = lines.next_line().await.expect("reads");
        assert!(greeting.is_some_and(|l| l.starts_with("220 ")));

        for (command, expected) in [
            ("VRFY someone", "502 "),
            ("RCPT TO:<a@example.org>", "503 "),
            ("NOOP", "250 "),
            ("QUIT", "221 "),
        ] {
            write
                .write_all(format!("{command}\r\n").as_bytes())
                .await
                .expect("writes");
            let reply = lines.next_line().await.expect("reads").unwrap_or_default();
            assert!(reply.starts_with(expected), "{command} got {reply:?}");
        }
    }

    #[test]
    fn the_message_id_is_found_whatever_the_header_case() {
        let headers = vec![
            "From: a@example.org".to_owned(),
            "MESSAGE-ID: <x@example.org>".to_owned(),
        ];
        assert_eq!(message_id(&headers).as_deref(), Some("<x@example.org>"));
        assert_eq!(message_id(&headers[..1]), None);
    }
}
