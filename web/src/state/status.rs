//! The connection state shown in the status bar.

/// Where the page stands with its relay.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Starting up.
    Starting,
    /// No relay address known: the user must paste one.
    NoRelay(String),
    /// Dialling the relay.
    Connecting,
    /// Connected to the relay over a transport.
    Connected {
        transport: &'static str,
        relay: String,
    },
    /// Lost the relay; the core makes this attempt after this long.
    Reconnecting { in_ms: u64, attempt: u32 },
}

impl Status {
    /// One line for the status bar.
    pub fn text(&self) -> String {
        match self {
            Self::Starting => "starting…".into(),
            Self::NoRelay(why) => format!("no relay: {why}"),
            Self::Connecting => "connecting…".into(),
            Self::Connected { transport, relay } => {
                format!("connected via {transport} to relay {relay}")
            }
            Self::Reconnecting { in_ms, attempt } => format!(
                "reconnecting in {} s… (attempt {attempt})",
                in_ms.div_ceil(1000)
            ),
        }
    }

    /// A CSS class / test id for the state.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Starting | Self::Connecting => "connecting",
            Self::NoRelay(_) => "no-relay",
            Self::Connected { .. } => "connected",
            Self::Reconnecting { .. } => "reconnecting",
        }
    }
}
