//! Tests that cannot run here say so where the run's summary shows it.
//!
//! A test that needs something outside the process (the Python peers, the local mail stack, a
//! Meilisearch server) returns early when it is missing. Printing that on stderr alone hides it:
//! cargo reports such a test as passed. [`skipped`] also appends a line to the file named by
//! `SKIPPED_TESTS_LOG`; `deploy/test.sh` sets it, prints the count and names after the run,
//! and in CI fails the run when a peer the project's scripts start was missing.

use std::io::Write;

/// What a skipped test was missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// A peer `deploy/peers/setup.sh` installs and starts (Python clients, Postfix, Dovecot).
    /// It is never missing in CI: a skip of this kind there fails the run.
    Peer,
    /// A service this machine cannot provide and a developer may point the tests at (a
    /// Meilisearch server, a hosted model). Skipping it is allowed, and still reported.
    Service,
}

impl Missing {
    fn label(self) -> &'static str {
        match self {
            Missing::Peer => "peer",
            Missing::Service => "service",
        }
    }
}

/// The environment variable naming the file skips are appended to.
pub const LOG_VAR: &str = "SKIPPED_TESTS_LOG";

/// Records that `test` did not run (or ran only in part) because `missing` was absent, and why.
pub fn skipped(test: &str, missing: Missing, why: &str) {
    let why = why.replace(['\n', '\t'], " ");
    eprintln!("SKIPPED {test} ({} missing): {why}", missing.label());
    let Some(path) = std::env::var_os(LOG_VAR) else { return };
    // One short write per line with O_APPEND: lines from parallel tests do not interleave.
    let line = format!("{}\t{test}\t{why}\n", missing.label());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        // A skip that cannot be recorded must not pass unnoticed either.
        panic!("{test}: skipped, and the skip could not be recorded in {}: {e}", path.to_string_lossy());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_appended_as_one_tab_separated_line() {
        let dir = std::env::temp_dir().join(format!("frontdesk-skip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("skipped.tsv");
        let _ = std::fs::remove_file(&log);
        // Only this test sets the variable in this binary.
        std::env::set_var(LOG_VAR, &log);
        skipped("first_test", Missing::Peer, "PEER_PYTHON is not set\n(run setup)");
        skipped("second_test", Missing::Service, "set MEILI_URL");
        std::env::remove_var(LOG_VAR);
        let text = std::fs::read_to_string(&log).expect("log written");
        assert_eq!(text, "peer\tfirst_test\tPEER_PYTHON is not set (run setup)\nservice\tsecond_test\tset MEILI_URL\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
