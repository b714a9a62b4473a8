//! Reading environment files: strict JSON into [`EnvironmentConfig`], then
//! [`EnvironmentConfig::check`](super::check), with the file and the field in
//! every rejection; and the set of every environment, by name.

use super::{ConfigError, EnvironmentConfig, CONFIG_DIR_VAR, SECTIONS};
use crate::validate::{field_path, one_line, FieldError};
use std::collections::BTreeMap;
use std::path::Path;

impl EnvironmentConfig {
    /// Parses and checks one environment file's contents; `file` is only used in messages.
    pub fn from_json(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let invalid = |field: String, reason: String| ConfigError::Invalid {
            file: file.to_path_buf(),
            field,
            reason,
        };
        // serde also reads a struct from an array, field by field, so a list in
        // the wrong order would load with its values swapped: sections are objects.
        // (Text that is not JSON is left to the typed parse, which says where.)
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            for (field, section) in std::iter::once(("(document)", &value)).chain(
                SECTIONS
                    .iter()
                    .filter_map(|name| Some((*name, value.get(*name)?))),
            ) {
                if section.is_array() {
                    return Err(invalid(
                        field.into(),
                        "is an array; write it as an object with named fields".into(),
                    ));
                }
            }
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = field_path(e.path());
            let inner = e.into_inner();
            // serde reports a missing field at its parent; name it fully.
            let message = inner.to_string();
            // serde quotes unknown keys raw: keep the reason on one line.
            let reason = || one_line(&strip_position(&message), 1000);
            let (field, reason) = match missing_field(&message) {
                Some(name) if path.is_empty() => (name.to_string(), "is missing".to_string()),
                Some(name) => (format!("{path}.{name}"), "is missing".to_string()),
                None if path.is_empty() || path == "?" => ("(document)".to_string(), reason()),
                None => (path, reason()),
            };
            invalid(field, reason)
        })?;
        // Nothing may follow the document.
        de.end().map_err(|e| {
            invalid(
                "(document)".into(),
                one_line(&strip_position(&e.to_string()), 1000),
            )
        })?;
        if let Some(stem) = file.file_stem().and_then(|s| s.to_str()) {
            if stem != config.name.as_str() {
                return Err(invalid(
                    "name".into(),
                    format!(
                        "is {:?} but the file is {stem}.json; they must agree",
                        config.name.as_str()
                    ),
                ));
            }
        }
        config
            .check()
            .map_err(|e: FieldError| invalid(e.field, e.reason))?;
        Ok(config)
    }

    /// Reads one environment file.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Io {
            file: file.to_path_buf(),
            source,
        })?;
        Self::from_json(file, &text)
    }
}

/// `missing field `x`` → `x`.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// Drops serde_json's " at line L column C" so the reason reads as a sentence.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Every environment stepdeploy knows, by name.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentSet {
    environments: BTreeMap<String, EnvironmentConfig>,
}

impl EnvironmentSet {
    /// Loads every `*.json` in `dir` and checks that promotions name known environments.
    pub fn load_dir(dir: &Path) -> Result<Self, ConfigError> {
        let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Io {
            file: dir.to_path_buf(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| ConfigError::Io {
                    file: dir.to_path_buf(),
                    source,
                })?
                .path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
        files.sort();
        let mut set = Self::default();
        for file in &files {
            let config = EnvironmentConfig::load(file)?;
            set.environments.insert(config.name.to_string(), config);
        }
        for (name, config) in &set.environments {
            if let Some(next) = &config.promote_to {
                if !set.environments.contains_key(next.as_str()) {
                    return Err(ConfigError::Invalid {
                        file: dir.join(format!("{name}.json")),
                        field: "promote_to".into(),
                        reason: format!(
                            "names \"{next}\", which has no config file in {}",
                            dir.display()
                        ),
                    });
                }
            }
        }
        Ok(set)
    }

    /// Loads the directory named by [`CONFIG_DIR_VAR`].
    pub fn from_env() -> Result<Self, ConfigError> {
        let dir = std::env::var_os(CONFIG_DIR_VAR).ok_or(ConfigError::NotConfigured)?;
        Self::load_dir(Path::new(&dir))
    }

    /// The config for `name`, or an error listing the known environments.
    pub fn get(&self, name: &str) -> Result<&EnvironmentConfig, ConfigError> {
        self.environments
            .get(name)
            .ok_or_else(|| ConfigError::UnknownEnvironment {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// Known environment names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.environments.keys().cloned().collect()
    }

    /// Builds a set from configs already loaded (tests, the CLI).
    pub fn from_configs(configs: impl IntoIterator<Item = EnvironmentConfig>) -> Self {
        Self {
            environments: configs
                .into_iter()
                .map(|c| (c.name.to_string(), c))
                .collect(),
        }
    }
}
