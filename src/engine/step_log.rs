//! A step's output as build events: stdout and stderr chunks become `log`
//! events of the step, with secrets redacted and UTF-8 kept whole.
//!
//! A process may print a secret in two writes; each chunk alone would not
//! show it whole, so the end of a chunk that could begin a secret is held
//! back until the next chunk (or the end of the output) says how it goes on.

use std::sync::{Arc, Mutex};

use super::event::{BuildEvent, Origin};
use super::state::BuildState;
use crate::runtime::{OutputOffset, OutputSink, OutputStream};

pub struct StepLog {
    build: Arc<BuildState>,
    plan_id: String,
    /// What is not written yet, per stream (stdout, stderr).
    held: Mutex<[Held; 2]>,
}

#[derive(Default)]
struct Held {
    /// Bytes of a UTF-8 character split across chunks.
    partial_char: Vec<u8>,
    /// Text (already redacted) whose end may be the start of a secret.
    text: String,
}

impl StepLog {
    pub fn new(build: Arc<BuildState>, plan_id: &str) -> Arc<StepLog> {
        Arc::new(StepLog { build, plan_id: plan_id.to_string(), held: Mutex::new(Default::default()) })
    }

    /// A line from atc itself about the step, on its stderr.
    pub fn notice(&self, text: &str) {
        self.append(OutputStream::Stderr, format!("{text}\n").as_bytes());
    }

    fn emit(&self, stream: OutputStream, text: String) {
        let source = match stream {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        };
        self.build.events.emit(BuildEvent::Log {
            origin: Origin { id: self.plan_id.clone(), source: Some(source) },
            payload: text,
            time: crate::db::now(),
        });
    }
}

fn index(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Stdout => 0,
        OutputStream::Stderr => 1,
    }
}

impl OutputSink for StepLog {
    fn write(&self, stream: OutputStream, chunk: &[u8], _end: OutputOffset) {
        self.append(stream, chunk);
    }
}

impl StepLog {
    fn append(&self, stream: OutputStream, chunk: &[u8]) {
        let ready = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            let held = &mut held[index(stream)];
            let mut bytes = std::mem::take(&mut held.partial_char);
            bytes.extend_from_slice(chunk);
            // Hold back an incomplete character at the end for the next chunk.
            let complete = match std::str::from_utf8(&bytes) {
                Ok(_) => bytes.len(),
                Err(err) if err.error_len().is_none() => err.valid_up_to(),
                Err(_) => bytes.len(),
            };
            held.partial_char = bytes.split_off(complete);
            let mut text = std::mem::take(&mut held.text);
            text.push_str(&String::from_utf8_lossy(&bytes));
            // Redacted before cutting, so a whole secret is never split.
            let mut text = self.build.redact(&text);
            held.text = text.split_off(self.build.redactor().unfinished_secret_at(&text));
            text
        };
        if !ready.is_empty() {
            self.emit(stream, ready);
        }
    }
}

impl Drop for StepLog {
    /// The step's output has ended (the runtime let go of its sink): what
    /// was held back was not a secret after all.
    fn drop(&mut self) {
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner()));
        for (stream, held) in [OutputStream::Stdout, OutputStream::Stderr].into_iter().zip(held) {
            let mut text = held.text;
            text.push_str(&String::from_utf8_lossy(&held.partial_char));
            if !text.is_empty() {
                self.emit(stream, self.build.redact(&text));
            }
        }
    }
}
