//! `p2p-chat peer`: the terminal chat. Starts a chat peer, reserves a slot on the relay, joins
//! the room, then turns typed lines (or JSON commands) into chat core calls and prints what
//! comes back.
//!
//! - [`args`]: its flags;
//! - [`input`]: what a person (or a script, `--json`) types, parsed;
//! - [`session`]: what each command does;
//! - [`output`]: what is printed, as text or JSON lines;
//! - [`archive`]: every message shown, kept across restarts;
//! - [`files`]: files shared and fetched.

pub mod archive;
pub mod args;
pub mod files;
pub mod input;
pub mod output;
pub mod session;

use anyhow::Context;
use futures::StreamExt;
use p2p_chat_shared::native::{start_peer, PeerSetup};
use p2p_chat_shared::protocol::validate_room;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};
use tokio::sync::mpsc;

pub use args::PeerArgs;

use crate::identity::{claim_data_dir, default_data_dir, load_key, load_or_create_key};
use archive::Archive;
use input::{parse_json, parse_line, Input, InputError, MAX_LINE_BYTES};
use output::{Printer, Reply};
use session::{choose_nick, Session};

/// The archive's file in the data dir.
const ARCHIVE_FILE: &str = "history.redb";
/// Where records of files shared and fetched live, in the data dir.
const FILES_DIR: &str = "files";

/// Runs the CLI peer until `/quit`, end of input, Ctrl-C or SIGTERM.
pub async fn run(args: PeerArgs) -> anyhow::Result<()> {
    let room = validate_room(&args.room).context("--room")?.to_owned();
    let base = args
        .data_dir
        .clone()
        .unwrap_or_else(|| default_data_dir("peer"));
    let data = claim_data_dir(&base, args.data_dir.is_none())?;
    let key = match &args.key_file {
        Some(path) => load_key(path)?,
        None => load_or_create_key(&data.path.join("identity.key"))?,
    };
    let nick = choose_nick(args.nick.as_deref(), &data.path);
    let setup = if args.relay_only {
        PeerSetup {
            relay_only: true,
            ..PeerSetup::behind_relay(nick.as_str())
        }
    } else {
        let mut setup = PeerSetup::new(nick.as_str());
        if !args.listen.is_empty() {
            setup.listen = args.listen.clone();
        }
        setup.mdns = !args.no_mdns;
        setup.upnp = !args.no_upnp;
        setup
    };
    let node = start_peer(key, &setup).await?;
    let client = node.client.clone();
    let mut printer = Printer {
        json: args.json,
        verbose: false,
    };

    for relay in &args.relay {
        client
            .use_relay(vec![relay.clone()])
            .await
            .with_context(|| format!("--relay {relay}"))?;
    }
    for addr in &args.bootstrap {
        client
            .bootstrap(addr.clone())
            .await
            .context("--bootstrap")?;
    }
    let info = client.info().await?;
    printer.reply(&Reply::Ready {
        peer_id: node.peer_id,
        nick: info.nick.clone(),
        data_dir: data.path.display().to_string(),
    });
    let archive_path = data.path.join(ARCHIVE_FILE);
    let (archive, archive_thread) = match Archive::open(&archive_path) {
        Ok((archive, thread)) => (Some(archive), Some(thread)),
        Err(e) => {
            printer.reply(&Reply::Error {
                message: format!(
                    "history is off: cannot open {}: {e}",
                    archive_path.display()
                ),
            });
            (None, None)
        }
    };
    let (background_tx, mut background) = mpsc::channel::<Reply>(64);
    let files = files::Files::start(
        data.path.join(FILES_DIR),
        client.clone(),
        args.max_file_size,
        background_tx.clone(),
    )
    .await;
    let mut session = Session {
        client,
        current: None,
        data_dir: data.path.clone(),
        archive,
        files,
        download_dir: files::default_download_dir(args.download_dir.as_deref()),
    };
    if let Some(reply) = session.execute(Input::Join(room), &background_tx).await {
        printer.reply(&reply);
    }

    let mut lines = spawn_stdin_reader();
    let mut events = node.events;
    let mut terminate = terminate_signal()?;
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break };
                let parsed = match line {
                    Err(message) => Err(message),
                    Ok(line) if args.json && line.trim().is_empty() => Ok(None),
                    Ok(line) if args.json => parse_json(&line).map(Some),
                    Ok(line) => parse_line(&line),
                };
                match parsed {
                    Ok(Some(Input::Quit)) => break,
                    Ok(Some(Input::Verbose)) => {
                        printer.verbose = !printer.verbose;
                        printer.reply(&Reply::Verbose { on: printer.verbose });
                    }
                    Ok(Some(input)) => {
                        if let Some(reply) = session.execute(input, &background_tx).await {
                            printer.reply(&reply);
                        }
                    }
                    Ok(None) => {}
                    Err(error) => printer.reply(&Reply::Error { message: error.to_string() }),
                }
            }
            Some(reply) = background.recv() => printer.reply(&reply),
            event = events.next() => match event {
                Some(event) => {
                    printer.event(&event, session.current.as_deref());
                    session.keep(event).await;
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    // Say goodbye in every room; the core stops after a short grace period.
    let _ = session.client.shutdown().await;
    // The archive's thread writes what is still queued, then ends.
    drop(session);
    if let Some(thread) = archive_thread {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    printer.reply(&Reply::Bye);
    Ok(())
}

/// Reads stdin on its own task, so that the main loop can `select!` on whole lines. Lines that
/// are not UTF-8 or too long arrive as errors.
fn spawn_stdin_reader() -> mpsc::Receiver<Result<String, InputError>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut reader = tokio::io::BufReader::new(tokio::io::stdin());
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let limit = MAX_LINE_BYTES as u64 + 1;
            match (&mut reader).take(limit).read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = if buf.len() > MAX_LINE_BYTES {
                // Skip the rest of the over-long line without holding it in memory.
                let mut skipped = buf.len();
                while !buf.ends_with(b"\n") {
                    buf.clear();
                    match (&mut reader).take(limit).read_until(b'\n', &mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => skipped += n,
                    }
                }
                Err(InputError::TooLong(skipped))
            } else {
                String::from_utf8(buf.clone()).map_err(|_| InputError::NotUtf8)
            };
            if tx.send(line).await.is_err() {
                break;
            }
        }
    });
    rx
}

#[cfg(unix)]
fn terminate_signal() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
}
