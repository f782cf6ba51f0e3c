//! What a user types into the CLI peer: a line of text (sent to the current room), a `/command`,
//! or in `--json` mode one JSON command per line. Both parse into the same [`Input`]; every
//! mistake becomes one clear message and the peer goes on.

use std::path::PathBuf;

use libp2p::{Multiaddr, PeerId};
use serde::Deserialize;

/// One thing the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Send text to a room (the current one when `None`).
    Say { room: Option<String>, text: String },
    /// Show the commands.
    Help,
    /// Join a room and make it current.
    Join(String),
    /// Leave a room (the current one when `None`).
    Leave(Option<String>),
    /// List our rooms.
    Rooms,
    /// List members of a room (the current one when `None`) and connected peers.
    Peers(Option<String>),
    /// Change nickname.
    Name(String),
    /// Show identity, addresses, NAT status.
    Info,
    /// Direct message.
    Dm { peer: PeerId, text: String },
    /// DHT lookup.
    Find(PeerId),
    /// Round-trip time.
    Ping(PeerId),
    /// Our connection, room and traffic figures.
    Stats,
    /// Dial an address.
    Connect(Multiaddr),
    /// The last N messages of the current room from the local history.
    History(Option<usize>),
    /// Offer a file: in the current room, or to a peer in a DM.
    Share { peer: Option<PeerId>, path: PathBuf },
    /// The files shared, fetched, and seen offered.
    Files,
    /// Fetch a file (by id or a prefix of it) into a directory (the default one when `None`).
    Get { id: String, dir: Option<PathBuf> },
    /// Toggle connection events.
    Verbose,
    /// Say goodbye and exit.
    Quit,
}

/// The `/help` text.
pub const HELP: &str = "\
Type a line to send it to the current room. Commands:
  /join ROOM          join ROOM and make it the current room
  /leave [ROOM]       leave ROOM (default: the current room)
  /rooms              list your rooms
  /peers [ROOM]       members of ROOM (default: current) and connected peers
  /name NICK          change your nickname
  /info               your peer id, addresses and NAT status
  /stats              your connections by transport, rooms and messages sent and received
  /dm PEER TEXT       direct message (direct connection first, relay circuit as fallback)
  /find PEER          look PEER up in the DHT
  /ping PEER          round-trip time to PEER
  /connect MULTIADDR  dial an address
  /history [N]        the last N messages of the current room (default 50), kept across restarts
  /share PATH         offer a file in the current room (/share @PEER PATH: in a DM)
  /files              files you shared, fetched, are fetching, and were offered
  /get ID [DIR]       fetch an offered file (ID: its first 8+ hex digits) into DIR, checked piece by piece
  /verbose            show or hide connection events
  /quit               leave every room and exit (also Ctrl-C)";

/// What was wrong with a line, written for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Not a peer id.
    #[error("{arg:?} is not a peer id ({reason}); peer ids look like 12D3KooW...")]
    NotAPeerId {
        /// What was typed.
        arg: String,
        /// Why it does not parse.
        reason: String,
    },
    /// Not a multiaddr.
    #[error("{arg:?} is not a multiaddr ({reason}); e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...")]
    NotAMultiaddr {
        /// What was typed.
        arg: String,
        /// Why it does not parse.
        reason: String,
    },
    /// Not a positive whole number.
    #[error("{0:?} is not a count; usage: /history [N], e.g. /history 100")]
    NotACount(String),
    /// A command without what it needs.
    #[error("usage: {0}")]
    Usage(&'static str),
    /// No such command.
    #[error("unknown command /{0}; type /help for the list")]
    UnknownCommand(String),
    /// A `--json` line that is not a command.
    #[error("not a JSON command ({0}); e.g. {{\"cmd\":\"send\",\"text\":\"hi\"}}")]
    NotJson(String),
    /// A line over the length limit (skipped without being held in memory).
    #[error("a line of {0} bytes was ignored; the limit is {MAX_LINE_BYTES}")]
    TooLong(usize),
    /// A line that is not UTF-8.
    #[error("line ignored: it is not UTF-8 text")]
    NotUtf8,
}

/// Longest accepted input line, in bytes; longer lines are refused, not cut.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

fn peer(arg: &str) -> Result<PeerId, InputError> {
    arg.parse()
        .map_err(|e: libp2p::identity::ParseError| InputError::NotAPeerId {
            arg: arg.to_owned(),
            reason: e.to_string(),
        })
}

fn multiaddr(arg: &str) -> Result<Multiaddr, InputError> {
    arg.parse()
        .map_err(|e: libp2p::multiaddr::Error| InputError::NotAMultiaddr {
            arg: arg.to_owned(),
            reason: e.to_string(),
        })
}

fn count(arg: Option<&str>) -> Result<Option<usize>, InputError> {
    arg.map(|a| {
        a.parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| InputError::NotACount(a.to_owned()))
    })
    .transpose()
}

fn required<'a>(arg: Option<&'a str>, usage: &'static str) -> Result<&'a str, InputError> {
    arg.filter(|a| !a.is_empty())
        .ok_or(InputError::Usage(usage))
}

/// Parses a typed line. `Ok(None)` for a blank line.
pub fn parse_line(line: &str) -> Result<Option<Input>, InputError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(None);
    }
    let Some(command) = line.strip_prefix('/') else {
        return Ok(Some(Input::Say {
            room: None,
            text: line.to_owned(),
        }));
    };
    let (name, rest) = command
        .split_once(char::is_whitespace)
        .unwrap_or((command, ""));
    let rest = rest.trim();
    let first = rest.split_whitespace().next();
    let input = match name {
        "help" | "h" | "?" => Input::Help,
        "join" | "j" => Input::Join(required(first, "/join ROOM")?.to_owned()),
        "leave" => Input::Leave(first.map(str::to_owned)),
        "rooms" => Input::Rooms,
        "peers" | "who" => Input::Peers(first.map(str::to_owned)),
        "name" | "nick" => Input::Name(required(Some(rest), "/name NICK")?.to_owned()),
        "info" => Input::Info,
        "stats" => Input::Stats,
        "dm" | "msg" => {
            let (target, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let target = required(Some(target), "/dm PEER TEXT")?;
            let text = required(Some(text.trim()), "/dm PEER TEXT")?;
            Input::Dm {
                peer: peer(target)?,
                text: text.to_owned(),
            }
        }
        "find" => Input::Find(peer(required(first, "/find PEER")?)?),
        "ping" => Input::Ping(peer(required(first, "/ping PEER")?)?),
        "connect" => Input::Connect(multiaddr(required(first, "/connect MULTIADDR")?)?),
        "history" => Input::History(count(first)?),
        "share" => {
            const USAGE: &str = "/share PATH or /share @PEER PATH";
            let rest = required(Some(rest), USAGE)?;
            match rest.strip_prefix('@') {
                Some(dm) => {
                    let (target, path) = dm.split_once(char::is_whitespace).unwrap_or((dm, ""));
                    Input::Share {
                        peer: Some(peer(target)?),
                        path: PathBuf::from(required(Some(path.trim()), USAGE)?),
                    }
                }
                None => Input::Share {
                    peer: None,
                    path: PathBuf::from(rest),
                },
            }
        }
        "files" => Input::Files,
        "get" => {
            let (id, dir) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let dir = dir.trim();
            Input::Get {
                id: required(Some(id), "/get ID [DIR]")?.to_owned(),
                dir: (!dir.is_empty()).then(|| PathBuf::from(dir)),
            }
        }
        "verbose" => Input::Verbose,
        "quit" | "exit" | "q" => Input::Quit,
        // "//text" sends "/text" literally.
        _ if command.starts_with('/') => Input::Say {
            room: None,
            text: command.to_owned(),
        },
        other => return Err(InputError::UnknownCommand(other.to_owned())),
    };
    Ok(Some(input))
}

/// A command in `--json` mode: `{"cmd": "...", ...}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
enum JsonCommand {
    Send { text: String, room: Option<String> },
    Join { room: String },
    Leave { room: Option<String> },
    Rooms,
    Peers { room: Option<String> },
    Nick { nick: String },
    Info,
    Stats,
    Dm { peer: String, text: String },
    Find { peer: String },
    Ping { peer: String },
    Connect { addr: String },
    History { count: Option<usize> },
    Share { path: PathBuf, peer: Option<String> },
    Files,
    Get { id: String, dir: Option<PathBuf> },
    Help,
    Quit,
}

/// Parses one `--json` input line.
pub fn parse_json(line: &str) -> Result<Input, InputError> {
    let command: JsonCommand =
        serde_json::from_str(line).map_err(|e| InputError::NotJson(e.to_string()))?;
    Ok(match command {
        JsonCommand::Send { text, room } => Input::Say { room, text },
        JsonCommand::Join { room } => Input::Join(room),
        JsonCommand::Leave { room } => Input::Leave(room),
        JsonCommand::Rooms => Input::Rooms,
        JsonCommand::Peers { room } => Input::Peers(room),
        JsonCommand::Nick { nick } => Input::Name(nick),
        JsonCommand::Info => Input::Info,
        JsonCommand::Stats => Input::Stats,
        JsonCommand::Dm { peer: target, text } => Input::Dm {
            peer: peer(&target)?,
            text,
        },
        JsonCommand::Find { peer: target } => Input::Find(peer(&target)?),
        JsonCommand::Ping { peer: target } => Input::Ping(peer(&target)?),
        JsonCommand::Connect { addr } => Input::Connect(multiaddr(&addr)?),
        JsonCommand::History { count } => Input::History(count),
        JsonCommand::Share { path, peer: target } => Input::Share {
            peer: target.as_deref().map(peer).transpose()?,
            path,
        },
        JsonCommand::Files => Input::Files,
        JsonCommand::Get { id, dir } => Input::Get { id, dir },
        JsonCommand::Help => Input::Help,
        JsonCommand::Quit => Input::Quit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";

    #[test]
    fn a_plain_line_is_a_message() {
        assert_eq!(
            parse_line("hello there\n"),
            Ok(Some(Input::Say {
                room: None,
                text: "hello there".into()
            }))
        );
        assert_eq!(parse_line("   \n"), Ok(None));
        assert_eq!(
            parse_line("//shrug"),
            Ok(Some(Input::Say {
                room: None,
                text: "/shrug".into()
            }))
        );
    }

    #[test]
    fn commands_parse_with_their_arguments() {
        assert_eq!(
            parse_line("/join rust"),
            Ok(Some(Input::Join("rust".into())))
        );
        assert_eq!(parse_line("/leave"), Ok(Some(Input::Leave(None))));
        assert_eq!(parse_line("/stats"), Ok(Some(Input::Stats)));
        assert_eq!(parse_json(r#"{"cmd":"stats"}"#), Ok(Input::Stats));
        assert_eq!(
            parse_line("/name Ada Lovelace"),
            Ok(Some(Input::Name("Ada Lovelace".into())))
        );
        let dm = parse_line(&format!("/dm {PEER} hi  there"))
            .expect("valid")
            .expect("some");
        assert_eq!(
            dm,
            Input::Dm {
                peer: PEER.parse().expect("peer"),
                text: "hi  there".into()
            }
        );
    }

    #[test]
    fn mistakes_get_one_clear_message() {
        let unknown = parse_line("/frobnicate").expect_err("unknown").to_string();
        assert!(unknown.contains("/help"), "{unknown}");
        let bad_peer = parse_line("/dm nobody hello")
            .expect_err("bad peer")
            .to_string();
        assert!(bad_peer.contains("not a peer id"), "{bad_peer}");
        let bad_addr = parse_line("/connect 127.0.0.1:4001")
            .expect_err("bad addr")
            .to_string();
        assert!(bad_addr.contains("not a multiaddr"), "{bad_addr}");
        let usage = parse_line("/dm").expect_err("usage");
        assert_eq!(usage, InputError::Usage("/dm PEER TEXT"));
        assert_eq!(usage.to_string(), "usage: /dm PEER TEXT");
        assert_eq!(parse_line("/history"), Ok(Some(Input::History(None))));
        assert_eq!(parse_line("/history 5"), Ok(Some(Input::History(Some(5)))));
        assert!(parse_line("/history lots")
            .expect_err("bad")
            .to_string()
            .contains("usage"));
        assert_eq!(
            parse_line(&format!("/dm {PEER}")),
            Err(InputError::Usage("/dm PEER TEXT"))
        );
    }

    #[test]
    fn json_commands_parse() {
        assert_eq!(
            parse_json(r#"{"cmd":"send","text":"hi","room":"x"}"#),
            Ok(Input::Say {
                room: Some("x".into()),
                text: "hi".into()
            })
        );
        assert_eq!(parse_json(r#"{"cmd":"rooms"}"#), Ok(Input::Rooms));
        assert!(parse_json(r#"{"cmd":"launch"}"#).is_err());
        assert!(parse_json("not json")
            .expect_err("bad")
            .to_string()
            .contains("not a JSON command"));
        assert!(parse_json(r#"{"cmd":"dm","peer":"x","text":"y"}"#).is_err());
    }
}
