//! Which lock a Windows path names.
//!
//! Windows users write one file many ways: `C:\a\b.json`, `c:/a/b.json`, `b.json` from
//! `C:\a`, `\\?\C:\a\b.json`, `C:\A\B.JSON`, and a share as `\\server\share\x` or
//! `\\?\UNC\server\share\x`. All of them must name one lock. The key is built as:
//! 1. made absolute by the system (`GetFullPathNameW`: `/` becomes `\`, `.` and `..` go);
//! 2. the longest existing ancestor resolved by the file system (links and junctions
//!    followed, short 8.3 names expanded), the missing rest appended;
//! 3. written in the plain form (`C:\...`, `\\server\share\...`), drive letter upper case;
//! 4. for the hash only, case-folded: NTFS and FAT compare names without case, so
//!    `B.json` and `b.json` are one file, before it exists as after. A directory made
//!    case-sensitive (WSL's per-directory flag) then shares one lock between two names:
//!    one lock too many, never one too few.

use std::io;
use std::path::{Path, PathBuf};

/// The plain spelling of a path `canonicalize` returned: `\\?\C:\x` becomes `C:\x`,
/// `\\?\UNC\srv\share\x` becomes `\\srv\share\x`, and the drive letter is upper case.
pub fn plain_form(path: &str) -> String {
    let plain = if let Some(rest) = path.strip_prefix(r"\\?\UNC\") {
        format!(r"\\{rest}")
    } else if let Some(rest) = path.strip_prefix(r"\\?\") {
        rest.to_string()
    } else if let Some(rest) = path.strip_prefix(r"\\.\UNC\") {
        format!(r"\\{rest}")
    } else {
        path.to_string()
    };
    let mut chars: Vec<char> = plain.chars().collect();
    if chars.len() >= 2 && chars[1] == ':' && chars[0].is_ascii_alphabetic() {
        chars[0] = chars[0].to_ascii_uppercase();
    }
    chars.into_iter().collect()
}

/// The text that is hashed into the lock's name: the plain form, case-folded.
pub fn key_text(plain: &str) -> String {
    plain.to_lowercase()
}

/// The canonical form of `path` (see the module comment), which need not exist.
pub fn canonical_target(path: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut existing = absolute.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    let resolved = loop {
        match std::fs::canonicalize(existing) {
            Ok(p) => break p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(e);
                };
                rest.push(name);
                existing = parent;
            }
            Err(e) => return Err(e),
        }
    };
    let mut full = PathBuf::from(plain_form(&resolved.to_string_lossy()));
    for name in rest.iter().rev() {
        full.push(name);
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbatim_and_unc_forms_become_plain() {
        assert_eq!(plain_form(r"\\?\C:\a\b.json"), r"C:\a\b.json");
        assert_eq!(plain_form(r"\\?\c:\a\b.json"), r"C:\a\b.json");
        assert_eq!(
            plain_form(r"\\?\UNC\srv\share\b.json"),
            r"\\srv\share\b.json"
        );
        assert_eq!(plain_form(r"\\srv\share\b.json"), r"\\srv\share\b.json");
        assert_eq!(plain_form(r"d:\x"), r"D:\x");
    }

    #[test]
    fn case_spellings_share_a_key() {
        assert_eq!(
            key_text(&plain_form(r"\\?\c:\Data\B.JSON")),
            key_text(&plain_form(r"C:\data\b.json"))
        );
    }

    #[test]
    fn slashes_dots_and_relative_forms_share_a_canonical_path() {
        let dir = std::env::temp_dir().join(format!("lockrun-key-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let base = canonical_target(&dir.join("sub").join("b.json")).unwrap();
        let slashed = dir.to_string_lossy().replace('\\', "/") + "/sub/../sub/b.json";
        assert_eq!(canonical_target(Path::new(&slashed)).unwrap(), base);
        let upper = PathBuf::from(dir.to_string_lossy().to_uppercase())
            .join("SUB")
            .join("B.JSON");
        assert_eq!(
            key_text(&canonical_target(&upper).unwrap().to_string_lossy()),
            key_text(&base.to_string_lossy())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
