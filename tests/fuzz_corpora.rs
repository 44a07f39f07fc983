//! Replays the fuzzers' committed inputs: each target's corpus
//! (`fuzz/corpus/TARGET/`) and the inputs that once crashed it
//! (`fuzz/regressions/TARGET/`), through the very function the target calls
//! (`atc::fuzzing`). Every input must return, without a panic, in time.
//! The fuzzing itself is `scripts/fuzz.sh`, outside CI.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use atc::fuzzing::{TARGETS, Target};

/// Far above what any input takes, even in a debug build on a busy
/// machine: what takes longer hangs or blows up.
const TIME_PER_INPUT: Duration = Duration::from_secs(10);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|entry| entry.expect("a readable directory").path()).collect();
    files.sort();
    files
}

/// The names of the entries of `dir` (without `.rs` for target files).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = files(dir)
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    names.sort();
    names
}

/// Runs each input on a thread of its own, watching the clock from here:
/// an input that never returns fails the test instead of hanging it.
fn replay(target: &'static Target, inputs: Vec<PathBuf>) {
    let (done, finished) = mpsc::channel();
    let queue = inputs.clone();
    std::thread::spawn(move || {
        for input in queue {
            let data = std::fs::read(&input).expect("a readable input");
            (target.run)(&data);
            let _ = done.send(());
        }
    });
    for input in inputs {
        match finished.recv_timeout(TIME_PER_INPUT) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => panic!("{} did not return within {TIME_PER_INPUT:?}", input.display()),
            Err(RecvTimeoutError::Disconnected) => panic!("{} panicked (see above)", input.display()),
        }
    }
}

#[test]
fn every_committed_input_returns_in_time() {
    let root = fuzz_dir();
    for target in &TARGETS {
        let corpus = files(&root.join("corpus").join(target.name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{} is empty", target.name);
        replay(target, corpus);
        replay(target, files(&root.join("regressions").join(target.name)));
    }
}

/// Targets, corpora and `atc::fuzzing::TARGETS` name the same set, and each
/// target calls its function, so nothing is fuzzed that is not replayed.
#[test]
fn every_fuzz_target_is_replayed() {
    let root = fuzz_dir();
    let mut expected: Vec<String> = TARGETS.iter().map(|target| target.name.to_string()).collect();
    expected.sort();
    assert_eq!(names(&root.join("fuzz_targets")), expected, "fuzz/fuzz_targets");
    assert_eq!(names(&root.join("corpus")), expected, "fuzz/corpus");
    for regressions in names(&root.join("regressions")) {
        assert!(expected.contains(&regressions), "fuzz/regressions/{regressions} belongs to no target");
    }
    for target in &TARGETS {
        let path = root.join("fuzz_targets").join(format!("{}.rs", target.name));
        let source = std::fs::read_to_string(&path).unwrap();
        let call = format!("atc::fuzzing::{}(data)", target.name);
        assert!(source.contains(&call), "{} does not call {call}", path.display());
    }
}
