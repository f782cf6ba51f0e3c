//! The `p2p-chat` binary: parses the command line once and runs the chosen subcommand.

use clap::Parser;
use p2p_chat::{bench, cli, health, identity, peer, relay};
use p2p_chat_shared::native::install_crypto_provider;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    cli::unset_blank_settings();
    install_crypto_provider();
    let args = cli::Cli::parse();
    let default_filter = match args.command {
        // The terminal is the chat: only warnings and errors go to stderr unless RUST_LOG says so.
        cli::Command::Peer(_) | cli::Command::Bench(_) | cli::Command::Health(_) => "warn",
        // Chat peers graft the relay, which takes every peer as an explicit gossipsub peer and
        // so ignores each GRAFT with a warning; a peer too slow for gossipsub's queue is our own
        // warning (`core::gossip`).
        _ => "info,dtls=error,libp2p_kad=error,libp2p_gossipsub::behaviour=error,webrtc_ice=warn,webrtc=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.command {
            cli::Command::Relay(args) => relay::run(*args).await,
            cli::Command::Peer(args) => peer::run(args).await,
            cli::Command::Bench(args) => bench::run(args).await,
            cli::Command::Health(args) => health::run(args).await,
            cli::Command::Genkey => {
                let key = libp2p::identity::Keypair::generate_ed25519();
                print!("{}", identity::key_file_text(&key));
                Ok(())
            }
        }
    });
    // Background tasks (stdin reader, spawned commands) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
