//! What an entry of a lock directory is, by its name alone.

use std::ffi::OsStr;

/// What an entry of a lock directory is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// `<hex>.lock`
    Lock { hex: String },
    /// `<hex>.rw`
    Gate { hex: String },
    /// `.tmp-<hex>-*`, `.stale-<hex>-*`, `.released-<hex>-*`
    Garbage { kind: GarbageKind, hex: String },
    /// Anything else: not lockrun's, never touched.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GarbageKind {
    Tmp,
    Stale,
    Released,
}

impl GarbageKind {
    /// Why such an entry is left over.
    pub(crate) fn origin(self) -> &'static str {
        match self {
            GarbageKind::Tmp => "unfinished lock creation",
            GarbageKind::Stale => "half-removed dead lock",
            GarbageKind::Released => "half-removed released lock",
        }
    }
}

pub(crate) fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Classifies a lock directory entry by name.
pub(crate) fn classify(name: &OsStr) -> Entry {
    let Some(name) = name.to_str() else {
        return Entry::Other;
    };
    if let Some(hex) = name.strip_suffix(".lock")
        && is_hex64(hex)
    {
        return Entry::Lock { hex: hex.into() };
    }
    if let Some(hex) = name.strip_suffix(".rw")
        && is_hex64(hex)
    {
        return Entry::Gate { hex: hex.into() };
    }
    for (prefix, kind) in [
        (".tmp-", GarbageKind::Tmp),
        (".stale-", GarbageKind::Stale),
        (".released-", GarbageKind::Released),
    ] {
        // Byte 64 is checked first: only when it is the ASCII '-' is it a character
        // boundary that the name may be cut at (a crafted name may put any character
        // there).
        if let Some(rest) = name.strip_prefix(prefix)
            && rest.len() > 65
            && rest.as_bytes()[64] == b'-'
            && is_hex64(&rest[..64])
        {
            return Entry::Garbage {
                kind,
                hex: rest[..64].into(),
            };
        }
    }
    Entry::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_entries() {
        let hex = "a".repeat(64);
        assert_eq!(
            classify(OsStr::new(&format!("{hex}.lock"))),
            Entry::Lock { hex: hex.clone() }
        );
        assert_eq!(
            classify(OsStr::new(&format!("{hex}.rw"))),
            Entry::Gate { hex: hex.clone() }
        );
        assert_eq!(
            classify(OsStr::new(&format!(".stale-{hex}-1f"))),
            Entry::Garbage {
                kind: GarbageKind::Stale,
                hex: hex.clone()
            }
        );
        assert_eq!(
            classify(OsStr::new(&format!("{}.lock", "A".repeat(64)))),
            Entry::Other
        );
        assert_eq!(classify(OsStr::new(".tmp-abc-1")), Entry::Other);
        assert_eq!(classify(OsStr::new("notes.txt")), Entry::Other);
    }
}
