//! What the CLI writes: files (or stdout) and progress on stderr while a long step runs.

use std::{path::Path, time::Duration};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use proofmill_prover::Stage;

/// Writes `text` and a newline to `out`, or prints it when there is no file.
pub fn write_output(out: Option<&Path>, text: &str) -> Result<()> {
    match out {
        Some(path) => std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display())),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

/// Progress on stderr while a long step runs.
pub struct Spinner {
    bar: ProgressBar,
    name: String,
}

impl Spinner {
    pub fn new(name: &str) -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            bar,
            name: name.to_owned(),
        }
    }

    pub fn stage(&self, stage: Stage) {
        self.bar.set_message(format!("{}: {stage}", self.name));
        if self.bar.is_hidden() {
            eprintln!("{}: {stage}", self.name);
        }
    }

    pub fn finish(&self, message: &str) {
        self.bar.finish_and_clear();
        eprintln!("{message}");
    }

    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}
