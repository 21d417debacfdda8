//! The `info` file inside a lock directory: `KEY: value` lines. The first three keys are
//! those of the bash lock scripts, so their readers keep working; the rest are lockrun's.

use std::io::Read;
use std::time::SystemTime;

/// Readers never take more than this from an `info` file.
pub(crate) const MAX_INFO_BYTES: u64 = 64 * 1024;
/// `COMMAND:` is cut to this many bytes.
const MAX_COMMAND_BYTES: usize = 1024;

/// How a lock's holder proves it is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// The holder keeps an exclusive flock on `info` for as long as it holds the lock.
    Flock,
    /// Only the PID (and its start token) tell: `acquire` locks and foreign bash locks.
    Pid,
}

impl Liveness {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Liveness::Flock => "flock",
            Liveness::Pid => "pid",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Exclusive,
    Shared,
}

impl Mode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Exclusive => "exclusive",
            Mode::Shared => "shared",
        }
    }
}

/// What an `info` file says. Every field is optional when read: foreign writers may
/// leave any of them out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Info {
    pub(crate) pid: Option<u32>,
    pub(crate) acquired: Option<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) tool: Option<String>,
    pub(crate) pid_start: Option<String>,
    pub(crate) uid: Option<u32>,
    pub(crate) mode: Option<Mode>,
    pub(crate) liveness: Option<Liveness>,
    pub(crate) target: Option<String>,
    pub(crate) label: Option<String>,
    pub(crate) command: Option<String>,
    pub(crate) nonce: Option<String>,
    /// The command `with` runs, and its start token: appended once it is started, so a
    /// taker of a dead lock can wait until that command is gone too.
    pub(crate) child: Option<u32>,
    pub(crate) child_start: Option<String>,
    /// The process group of the command's tree (the command leads it: same number as
    /// `CHILD`); a taker of a dead lock ends what still runs of it.
    pub(crate) child_pgid: Option<u32>,
}

impl Info {
    /// Parses `info` text; unknown keys and malformed lines are ignored.
    pub(crate) fn parse(text: &str) -> Info {
        let mut info = Info::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            // Free text (a file name may end in a space) is kept exactly as written
            // after the one space lockrun puts after the colon; numbers, keywords and
            // identifiers are read tolerantly.
            let raw = value.strip_prefix(' ').unwrap_or(value);
            let value = value.trim();
            let text = || Some(unescape(value));
            let exact = || Some(unescape(raw));
            match key.trim() {
                "PID" => info.pid = value.parse().ok(),
                "ACQUIRED" => info.acquired = text(),
                "HOSTNAME" => info.hostname = text(),
                "TOOL" => info.tool = text(),
                "PID_START" => info.pid_start = text(),
                "UID" => info.uid = value.parse().ok(),
                "MODE" => {
                    info.mode = match value {
                        "exclusive" => Some(Mode::Exclusive),
                        "shared" => Some(Mode::Shared),
                        _ => None,
                    }
                }
                "LIVENESS" => {
                    info.liveness = match value {
                        "flock" => Some(Liveness::Flock),
                        "pid" => Some(Liveness::Pid),
                        _ => None,
                    }
                }
                "TARGET" => info.target = exact(),
                "LABEL" => info.label = exact(),
                "COMMAND" => info.command = exact(),
                "NONCE" => info.nonce = text(),
                "CHILD" => info.child = value.parse().ok(),
                "CHILD_START" => info.child_start = text(),
                "CHILD_PGID" => info.child_pgid = value.parse().ok(),
                _ => {}
            }
        }
        info
    }

    /// Reads at most [`MAX_INFO_BYTES`] from `reader` and parses them.
    pub(crate) fn read_from(reader: impl Read) -> std::io::Result<Info> {
        let mut bytes = Vec::new();
        reader.take(MAX_INFO_BYTES).read_to_end(&mut bytes)?;
        Ok(Info::parse(&String::from_utf8_lossy(&bytes)))
    }

    /// The text written to disk: bash-compatible keys first.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                out.push_str(key);
                out.push_str(": ");
                out.push_str(&escape(&v));
                out.push('\n');
            }
        };
        line("PID", self.pid.map(|p| p.to_string()));
        line("ACQUIRED", self.acquired.clone());
        line("HOSTNAME", self.hostname.clone());
        line("TOOL", self.tool.clone());
        line("PID_START", self.pid_start.clone());
        line("UID", self.uid.map(|u| u.to_string()));
        line("MODE", self.mode.map(|m| m.as_str().to_string()));
        line("LIVENESS", self.liveness.map(|l| l.as_str().to_string()));
        line("TARGET", self.target.clone());
        line("LABEL", self.label.clone());
        line("COMMAND", self.command.as_deref().map(cut_command));
        line("NONCE", self.nonce.clone());
        out.push_str(&child_lines(
            self.child,
            self.child_start.as_deref(),
            self.child_pgid,
        ));
        out
    }

    /// Boot id recorded in `PID_START` (`<starttime>@<boot id>`), when there is one.
    pub(crate) fn boot_id(&self) -> Option<&str> {
        self.pid_start.as_deref()?.split_once('@').map(|(_, b)| b)
    }

    /// "mcp-server (PID 12345 on myhost, 'node server.js', held 2.1s)"
    pub(crate) fn describe(&self, held_since: Option<SystemTime>) -> String {
        use crate::quote::quote;
        let who = match (self.pid, self.hostname.as_deref()) {
            (Some(pid), Some(host)) => format!("PID {pid} on {}", quote(host)),
            (Some(pid), None) => format!("PID {pid}"),
            (None, _) => "an unknown process".to_string(),
        };
        let mut facts = Vec::new();
        if let Some(cmd) = &self.command {
            facts.push(format!("'{}'", quote(cmd)));
        }
        if let Some(age) = held_since.and_then(|t| t.elapsed().ok()) {
            facts.push(format!("held {}", crate::lock::format_age(age)));
        }
        match (&self.label, facts.is_empty()) {
            (Some(label), _) => {
                facts.insert(0, who);
                format!("{} ({})", quote(label), facts.join(", "))
            }
            (None, true) => who,
            (None, false) => format!("{who} ({})", facts.join(", ")),
        }
    }
}

/// The `CHILD:`/`CHILD_START:`/`CHILD_PGID:` lines, also appended on their own by a
/// running holder.
pub(crate) fn child_lines(child: Option<u32>, start: Option<&str>, pgid: Option<u32>) -> String {
    let mut out = String::new();
    if let Some(pid) = child {
        out.push_str(&format!("CHILD: {pid}\n"));
        if let Some(start) = start {
            out.push_str(&format!("CHILD_START: {}\n", escape(start)));
        }
        if let Some(pgid) = pgid {
            out.push_str(&format!("CHILD_PGID: {pgid}\n"));
        }
    }
    out
}

/// A command recorded by a holder: `CHILD:` with the `CHILD_START:` and `CHILD_PGID:`
/// that follow it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordedChild {
    pub(crate) pid: u32,
    pub(crate) start: Option<String>,
    pub(crate) pgid: Option<u32>,
}

/// Every command recorded in `text`: those that shared holders recorded in `<hex>.rw`.
pub(crate) fn children(text: &str) -> Vec<RecordedChild> {
    let mut out: Vec<RecordedChild> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        match (key, out.last_mut()) {
            ("CHILD", _) => {
                if let Ok(pid) = value.parse() {
                    out.push(RecordedChild {
                        pid,
                        start: None,
                        pgid: None,
                    });
                }
            }
            ("CHILD_START", Some(last)) if last.start.is_none() => {
                last.start = Some(unescape(value));
            }
            ("CHILD_PGID", Some(last)) if last.pgid.is_none() => {
                last.pgid = value.parse().ok();
            }
            _ => {}
        }
    }
    out
}

fn cut_command(command: &str) -> String {
    if command.len() <= MAX_COMMAND_BYTES {
        return command.to_string();
    }
    let mut end = MAX_COMMAND_BYTES;
    while !command.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &command[..end])
}

/// Values stay on one line: backslash and line breaks are escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// ISO 8601 UTC with seconds, as the bash scripts write `ACQUIRED`.
pub(crate) fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_what_it_writes() {
        let info = Info {
            pid: Some(42),
            acquired: Some("2026-11-22T21:54:59Z".into()),
            hostname: Some("host".into()),
            tool: Some("lockrun 0.1.0".into()),
            pid_start: Some("123@abc".into()),
            uid: Some(1000),
            mode: Some(Mode::Shared),
            liveness: Some(Liveness::Flock),
            target: Some("/tmp/a\nb.json".into()),
            label: Some("mcp: server".into()),
            command: Some("sh -c 'echo \\ hi'".into()),
            nonce: Some("n1".into()),
            child: Some(43),
            child_start: Some("456@abc".into()),
            child_pgid: Some(43),
        };
        assert_eq!(Info::parse(&info.render()), info);
        assert_eq!(info.boot_id(), Some("abc"));
    }

    #[test]
    fn bash_lines_come_first_and_parse() {
        let text = "PID: 12345\nACQUIRED: 2026-11-22T21:54:59Z\nHOSTNAME: myhost\n";
        let info = Info::parse(text);
        assert_eq!(info.pid, Some(12345));
        assert_eq!(info.hostname.as_deref(), Some("myhost"));
        assert_eq!(info.liveness, None);
        let rendered = Info {
            pid: Some(1),
            acquired: Some("x".into()),
            hostname: Some("h".into()),
            ..Info::default()
        }
        .render();
        assert!(rendered.starts_with("PID: 1\nACQUIRED: x\nHOSTNAME: h\n"));
    }

    #[test]
    fn garbage_is_tolerated() {
        let info = Info::parse("\u{0}\u{ff}PID: notanumber\n:::\nMODE: weird\n");
        assert_eq!(info, Info::default());
    }

    #[test]
    fn long_commands_are_cut() {
        let info = Info {
            command: Some("x".repeat(5000)),
            ..Info::default()
        };
        assert!(info.render().len() < 1100);
    }
}
