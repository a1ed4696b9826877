//! Terminal output. Every line the CLI prints for the user goes through here, so the rest of
//! the code never writes to stdout by accident (clippy's `print_stdout` is denied elsewhere).

#![allow(clippy::print_stdout)]

use std::io::IsTerminal;

/// Prints one line to stdout.
pub fn line(text: impl AsRef<str>) {
    println!("{}", text.as_ref());
}

/// Prints text without a newline and flushes (prompts, streamed answers).
pub fn prompt(text: &str) {
    use std::io::Write;
    print!("{text}");
    let _ = std::io::stdout().flush();
}

/// Prints a value as pretty JSON.
pub fn json<T: serde::Serialize>(value: &T) -> Result<(), serde_json::Error> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// True when stderr is a terminal (progress bars go there).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
pub fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    if !interactive() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// Adapts a progress bar to ingest's progress reporting.
pub struct IngestBar {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl IngestBar {
    pub fn new() -> Self {
        IngestBar { bar: std::sync::Mutex::new(None) }
    }
}

impl Default for IngestBar {
    fn default() -> Self {
        Self::new()
    }
}

impl crate::knowledge::ingest::Progress for IngestBar {
    fn start(&self, total_chunks: usize) {
        if total_chunks > 0 {
            if let Ok(mut b) = self.bar.lock() {
                *b = Some(progress_bar(total_chunks as u64, "embedding"));
            }
        }
    }
    fn advance(&self, chunks: usize) {
        if let Ok(b) = self.bar.lock() {
            if let Some(b) = b.as_ref() {
                b.inc(chunks as u64);
            }
        }
    }
    fn finish(&self) {
        if let Ok(b) = self.bar.lock() {
            if let Some(b) = b.as_ref() {
                b.finish_and_clear();
            }
        }
    }
}
