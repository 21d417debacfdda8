//! `--schema SCHEMA.json`: a result that violates the JSON Schema is refused, with every
//! violation and its pointer on the one error line.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// A loaded schema.
#[derive(Debug)]
pub struct Schema {
    validator: jsonschema::Validator,
    shown: String,
}

impl Schema {
    /// Loads the schema at `path` for checking `origin` (named in errors).
    pub(crate) fn load(origin: &str, path: &Path) -> Result<Schema> {
        let shown = path.display().to_string();
        let bytes =
            std::fs::read(path).map_err(|e| Error::io(format!("{origin}: schema {shown}"), e))?;
        let value = super::parse(&format!("{origin}: schema {shown}"), &bytes)?;
        let validator = jsonschema::validator_for(&value)
            .map_err(|e| Error::data(format!("{origin}: schema {shown} is not usable: {e}")))?;
        Ok(Schema { validator, shown })
    }

    /// Checks `doc`, the would-be new content of `origin`.
    pub(crate) fn check(&self, origin: &str, doc: &Value) -> Result<()> {
        let violations: Vec<String> = self
            .validator
            .iter_errors(doc)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("at '{}': {e}", if at.is_empty() { "" } else { &at })
            })
            .collect();
        if violations.is_empty() {
            return Ok(());
        }
        Err(Error::data(format!(
            "{origin}: result violates schema {} ({} violation{}): {} (nothing written)",
            self.shown,
            violations.len(),
            if violations.len() == 1 { "" } else { "s" },
            violations.join("; ")
        )))
    }
}
