//! Known vocabularies (job families, skills) from `data/taxonomy/<name>.txt`, one value a line,
//! `#` comments. Values outside them are reported, not refused: a new job family is news for
//! the data team, not a reason to lose a row.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Taxonomy {
    lists: BTreeMap<String, HashSet<String>>,
    dir: Option<PathBuf>,
}

impl Taxonomy {
    /// Load every `*.txt` in `dir`. A missing directory gives an empty taxonomy.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut lists = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(Self { lists, dir: Some(dir.to_path_buf()) });
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "txt") {
                continue;
            }
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::Taxonomy { path: path.clone(), reason: e.to_string() })?;
            let values = text
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(normalise)
                .collect();
            lists.insert(name, values);
        }
        Ok(Self { lists, dir: Some(dir.to_path_buf()) })
    }

    pub fn has_list(&self, name: &str) -> bool {
        self.lists.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.lists.keys().map(String::as_str)
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Whether `value` is in list `name` (case and white space insensitive).
    pub fn contains(&self, name: &str, value: &str) -> bool {
        self.lists.get(name).is_some_and(|l| l.contains(&normalise(value)))
    }
}

fn normalise(v: &str) -> String {
    v.trim().to_lowercase()
}
