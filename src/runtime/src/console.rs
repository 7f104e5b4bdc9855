//! `rkt run --interactive`: the terminal of `rkt run` is the one app's terminal. stage0 gives
//! the host's pod unit its terminal as stdin/stdout/stderr, stage1 (seeing a terminal on its
//! stdin) leaves it to systemd-nspawn, which connects the pod's /dev/console to it through a
//! pty, and the app's unit reads and writes /dev/console.

use zbus::zvariant::Value;

/// The pod's console, where an interactive app's unit is attached.
pub const POD_CONSOLE: &str = "/dev/console";

/// Turns an app's unit properties (from [`super::app_unit_properties`]) into those of an app
/// attached to the pod's console: its stdin, stdout and stderr, and its controlling terminal.
pub fn make_interactive_unit(properties: &mut Vec<(&'static str, Value<'static>)>) {
    properties.retain(|(name, _)| {
        !matches!(
            *name,
            "StandardInput" | "StandardOutput" | "StandardError" | "TTYPath"
        )
    });
    properties.extend([
        ("TTYPath", Value::from(POD_CONSOLE)),
        ("StandardInput", Value::from("tty")),
        ("StandardOutput", Value::from("tty")),
        ("StandardError", Value::from("tty")),
        // Like a login: the terminal is reset for the app, and the app's output on it is not
        // cut off by the pod's end before nspawn copied it.
        ("TTYReset", Value::from(true)),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interactive_unit_uses_the_console_alone() {
        let mut props = vec![
            ("StandardOutput", Value::from("journal")),
            ("StandardError", Value::from("journal")),
            ("ExecStart", Value::from("x")),
        ];
        make_interactive_unit(&mut props);
        let get = |name: &str| -> Vec<String> {
            props
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
                .collect()
        };
        assert_eq!(get("StandardOutput"), ["\"tty\""]);
        assert_eq!(get("StandardError"), ["\"tty\""]);
        assert_eq!(get("StandardInput"), ["\"tty\""]);
        assert_eq!(get("TTYPath"), ["\"/dev/console\""]);
        assert_eq!(get("ExecStart").len(), 1);
    }
}
