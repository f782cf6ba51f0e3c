//! The command line of `p2p-chat`: its subcommands, each with its flags in its own folder
//! (`relay/args.rs`, `peer/args.rs`, `bench/args.rs`), parsed once in `main`.

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::bench::BenchArgs;
use crate::health::HealthArgs;
use crate::peer::PeerArgs;
use crate::relay::RelayArgs;

/// A peer-to-peer chat on libp2p: a relay for browsers and peers behind NAT, and a terminal chat.
#[derive(Debug, Parser)]
#[command(name = "p2p-chat", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a relay: circuit relay v2, gossipsub hub for every room, Kademlia DHT server, store of
    /// room history and of direct messages for offline peers.
    Relay(Box<RelayArgs>),
    /// Chat from this terminal.
    Peer(PeerArgs),
    /// Print a new Ed25519 identity key (and its peer id) in the form --key-file reads.
    Genkey,
    /// Measure: start a relay (its own process) and chat peers on loopback, drive a workload,
    /// print a table and a JSON line of results.
    Bench(BenchArgs),
    /// Ask a running relay's /healthz (e.g. as a container's health check): print its answer,
    /// and exit with 0 only when the relay is healthy.
    Health(HealthArgs),
}

/// Address lists a compose file or a systemd unit passes as an empty variable when they are
/// left unset. Set but blank, they mean unset: clap would read one empty address.
pub const BLANK_MEANS_UNSET: [&str; 2] = ["P2P_CHAT_EXTERNAL_ADDR", "P2P_CHAT_PEERS"];

/// Unsets the variables of [`BLANK_MEANS_UNSET`] that are set but blank. Called first thing in
/// `main`, while the process has a single thread.
pub fn unset_blank_settings() {
    for name in BLANK_MEANS_UNSET {
        if std::env::var(name).is_ok_and(|value| value.trim().is_empty()) {
            std::env::remove_var(name);
        }
    }
}

/// Why a duration flag does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// A number without a unit.
    #[error("{0:?} needs a unit: s, m, h or d (e.g. 30d)")]
    NoUnit(String),
    /// No whole number first.
    #[error("{0:?} must start with a whole number (e.g. 30d)")]
    NoNumber(String),
    /// Not one of the units.
    #[error("unknown unit {unit:?} in {text:?}; use s, m, h or d")]
    UnknownUnit {
        /// The unit given.
        unit: String,
        /// The whole text.
        text: String,
    },
    /// More seconds than fit.
    #[error("{0:?} is too long")]
    TooLong(String),
}

/// A duration: a whole number and a unit, `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| DurationError::NoUnit(text.to_owned()))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| DurationError::NoNumber(text.to_owned()))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(DurationError::UnknownUnit {
                unit: other.to_owned(),
                text: text.to_owned(),
            })
        }
    };
    number
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| DurationError::TooLong(text.to_owned()))
}

/// Why a size flag does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// No whole number first.
    #[error("{0:?} must start with a whole number (e.g. 1G, 512M)")]
    NoNumber(String),
    /// Not one of the units.
    #[error(
        "unknown unit {unit:?} in {text:?}; use K, M or G (powers of 1024), or none for bytes"
    )]
    UnknownUnit {
        /// The unit given.
        unit: String,
        /// The whole text.
        text: String,
    },
    /// More bytes than fit.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// A size in bytes: a whole number, then `K`, `M` or `G` (KiB, MiB, GiB; `KiB`, `MiB`, `GiB`
/// are read the same), or nothing for bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| SizeError::NoNumber(text.to_owned()))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        other => {
            return Err(SizeError::UnknownUnit {
                unit: other.to_owned(),
                text: text.to_owned(),
            })
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| SizeError::TooLarge(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_clear_errors() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size(" 512 MiB "), Ok(512 << 20));
        assert_eq!(parse_size("64K"), Ok(65_536));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("G")
            .expect_err("no number")
            .to_string()
            .contains("whole number"));
        assert!(parse_size("3T")
            .expect_err("bad unit")
            .to_string()
            .contains("unknown unit"));
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn retention_durations_parse_with_clear_errors() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 45s "), Ok(Duration::from_secs(45)));
        assert!(parse_duration("30")
            .expect_err("no unit")
            .to_string()
            .contains("needs a unit"));
        assert!(parse_duration("d")
            .expect_err("no number")
            .to_string()
            .contains("whole number"));
        assert!(parse_duration("3w")
            .expect_err("bad unit")
            .to_string()
            .contains("unknown unit"));
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
