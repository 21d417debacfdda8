//! An MCP-server-style memory store: each request takes the file's lock for one
//! read-modify-write and lets go before the answer is sent; no lock is ever held across
//! requests. Requests are read from stdin, one per line: `set KEY JSON`, `get KEY`.
//!
//!     printf 'set n 1\nget n\n' | cargo run -q --example mcp_memory -- memory.json
//!
//! A busy file (another session mid-update for over 2 s) fails that one request with
//! lockrun's message naming the holder; the server goes on serving.

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use lockrun::LockOptions;
use lockrun::json::edit::{self, WriteOptions};
use serde_json::{Value, json};

/// Lock options for one request: wait at most 2 s, and say who we are.
fn lock_options() -> LockOptions {
    LockOptions {
        timeout: Some(Duration::from_secs(2)),
        label: Some("mcp-server".into()),
        ..LockOptions::default()
    }
}

/// `set`: an atomic, validated read-modify-write under the exclusive lock.
fn set(file: &Path, key: &str, value: Value) -> Result<(), lockrun::Error> {
    let opts = WriteOptions {
        lock: lock_options(),
        no_lock: false,
        backup: None,
        backup_keep: None,
        schema: None,
        dry_run: false,
        create: Some(json!({})),
    };
    edit::modify(file, &opts, |_origin, doc| {
        let mut doc = doc.clone();
        doc[key] = value;
        Ok(doc)
    })?;
    Ok(())
}

/// `get`: a plain read under the lock (`lockrun::acquire`), released before answering.
fn get(file: &Path, key: &str) -> Result<Value, lockrun::Error> {
    let guard = lockrun::acquire(file, &lock_options())?;
    let text = std::fs::read_to_string(file).map_err(|e| lockrun::Error::io(file, e))?;
    guard.release()?;
    let doc: Value = lockrun::json::parse(&file.display().to_string(), text.as_bytes())?;
    Ok(doc.get(key).cloned().unwrap_or(Value::Null))
}

fn main() {
    let Some(file) = std::env::args_os().nth(1) else {
        eprintln!("usage: mcp_memory FILE < requests");
        std::process::exit(2);
    };
    let file = Path::new(&file);
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.splitn(3, ' ');
        let answer = match (words.next(), words.next(), words.next()) {
            (Some("set"), Some(key), Some(value)) => serde_json::from_str(value)
                .map_err(|e| lockrun::Error::data(format!("bad value: {e}")))
                .and_then(|v| set(file, key, v))
                .map(|()| "ok".to_string()),
            (Some("get"), Some(key), None) => get(file, key).map(|v| v.to_string()),
            _ => Err(lockrun::Error::usage(format!("bad request: {line}"))),
        };
        match answer {
            Ok(text) => println!("{text}"),
            Err(e) => println!("error: {e}"),
        }
    }
}
