//! Waiting for the user to stop a long-running command (Ctrl-C or SIGTERM).

/// Ctrl-C and SIGTERM, caught from the moment this is made: a signal that arrives before [`Stop::wait`] (while
/// the emulator recovers its journals, say) is kept, and `wait` returns at once, instead of the process dying
/// without its flush.
pub struct Stop {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Stop {
    /// Installs the handlers (on a Tokio runtime).
    pub fn install() -> Stop {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Stop { term: signal(SignalKind::terminate()).ok(), int: signal(SignalKind::interrupt()).ok() }
        }
        #[cfg(not(unix))]
        {
            Stop {}
        }
    }

    /// Until Ctrl-C or SIGTERM (at once if one came since [`Stop::install`]).
    pub async fn wait(mut self) {
        #[cfg(unix)]
        {
            match (self.term.as_mut(), self.int.as_mut()) {
                (Some(term), Some(int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => wait_for_signal().await,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Ctrl-C (SIGINT) or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
