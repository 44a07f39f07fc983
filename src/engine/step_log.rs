//! A step's output as build events: stdout and stderr chunks become `log`
//! events of the step, with secrets redacted and UTF-8 kept whole.
//!
//! A process may print a secret in two writes; each chunk alone would not
//! show it whole, so the end of a chunk that could begin a secret is held
//! back until the next chunk (or the end of the output) says how it goes on.
//!
//! Each event carries how far into the process's output it reaches, stored
//! with it (`db::StepRecord::Progress`): a build taken up again reads the
//! output on from there, so no line is shown twice or lost. The offset only
//! moves where nothing is held back, as held text has no exact place in the
//! raw output once redacted.

use std::sync::{Arc, Mutex};

use super::event::{BuildEvent, Origin};
use super::state::BuildState;
use crate::db::StepRecord;
use crate::runtime::{OutputOffset, OutputSink, OutputStream};

pub struct StepLog {
    build: Arc<BuildState>,
    plan_id: String,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    /// What is not written yet, per stream (stdout, stderr).
    held: [Held; 2],
    /// The output offset up to which everything is written as events.
    written: OutputOffset,
}

#[derive(Default)]
struct Held {
    /// Bytes of a UTF-8 character split across chunks.
    partial_char: Vec<u8>,
    /// Text (already redacted) whose end may be the start of a secret.
    text: String,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.partial_char.is_empty() && self.text.is_empty()
    }
}

impl StepLog {
    pub fn new(build: Arc<BuildState>, plan_id: &str) -> Arc<StepLog> {
        Arc::new(StepLog { build, plan_id: plan_id.to_string(), state: Mutex::new(LogState::default()) })
    }

    /// A line from atc itself about the step, on its stderr (not part of
    /// the process's output: no offset moves).
    pub fn notice(&self, text: &str) {
        let ready = self.append(OutputStream::Stderr, format!("{text}\n").as_bytes(), None);
        if let Some((text, _)) = ready {
            self.emit(OutputStream::Stderr, text, None);
        }
    }

    fn emit(&self, stream: OutputStream, text: String, written: Option<OutputOffset>) {
        let source = match stream {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        };
        let event = BuildEvent::Log {
            origin: Origin { id: self.plan_id.clone(), source: Some(source) },
            payload: text,
            time: crate::db::now(),
        };
        let progress = written.map(|offset| StepRecord::Progress {
            plan_id: self.plan_id.clone(),
            stdout: offset.stdout,
            stderr: offset.stderr,
        });
        self.build.events.write(vec![event], progress.into_iter().collect());
    }

    /// Takes a chunk of `stream`; answers the text ready to be written, and
    /// (for process output, `end` given) the offset written up to with it.
    fn append(
        &self,
        stream: OutputStream,
        chunk: &[u8],
        end: Option<OutputOffset>,
    ) -> Option<(String, Option<OutputOffset>)> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let held = &mut state.held[index(stream)];
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
        let caught_up = held.is_empty();
        if let Some(end) = end
            && caught_up
        {
            state.written = match stream {
                OutputStream::Stdout => OutputOffset { stdout: end.stdout, ..state.written },
                OutputStream::Stderr => OutputOffset { stderr: end.stderr, ..state.written },
            };
        }
        let written = end.map(|_| state.written);
        (!text.is_empty()).then_some((text, written))
    }
}

fn index(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Stdout => 0,
        OutputStream::Stderr => 1,
    }
}

impl OutputSink for StepLog {
    fn write(&self, stream: OutputStream, chunk: &[u8], end: OutputOffset) {
        if let Some((text, written)) = self.append(stream, chunk, Some(end)) {
            self.emit(stream, text, written);
        }
    }
}

impl Drop for StepLog {
    /// The step's output has ended (the runtime let go of its sink): what
    /// was held back was not a secret after all.
    fn drop(&mut self) {
        let state = std::mem::take(&mut *self.state.lock().unwrap_or_else(|p| p.into_inner()));
        for (stream, held) in [OutputStream::Stdout, OutputStream::Stderr].into_iter().zip(state.held) {
            let mut text = held.text;
            text.push_str(&String::from_utf8_lossy(&held.partial_char));
            if !text.is_empty() {
                self.emit(stream, self.build.redact(&text), None);
            }
        }
    }
}
