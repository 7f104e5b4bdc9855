//! `rkt run --interactive`: the terminal of `rkt run` is the one app's terminal. stage0 gives
//! the host's pod unit its terminal as stdin/stdout/stderr, stage1 (seeing a terminal on its
//! stdin) leaves it to systemd-nspawn, which connects the pod's /dev/console to it through a
//! pty, and the app's unit reads and writes /dev/console.

/// The pod's console, where an interactive app's unit is attached.
pub const POD_CONSOLE: &str = "/dev/console";
