//! A step's output as build events: stdout and stderr chunks become `log`
//! events of the step, with secrets redacted and UTF-8 kept whole.

use std::sync::{Arc, Mutex};

use super::event::{BuildEvent, Origin};
use super::state::BuildState;
use crate::runtime::{OutputSink, OutputStream};

pub struct StepLog {
    build: Arc<BuildState>,
    plan_id: String,
    /// Bytes of a UTF-8 character split across chunks, per stream.
    partial: Mutex<[Vec<u8>; 2]>,
}

impl StepLog {
    pub fn new(build: Arc<BuildState>, plan_id: &str) -> Arc<StepLog> {
        Arc::new(StepLog { build, plan_id: plan_id.to_string(), partial: Mutex::new([Vec::new(), Vec::new()]) })
    }

    /// A line from atc itself about the step, on its stderr.
    pub fn notice(&self, text: &str) {
        self.emit(OutputStream::Stderr, format!("{text}\n"));
    }

    fn emit(&self, stream: OutputStream, text: String) {
        let source = match stream {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        };
        self.build.events.emit(BuildEvent::Log {
            origin: Origin { id: self.plan_id.clone(), source: Some(source) },
            payload: self.build.redact(&text),
            time: crate::db::now(),
        });
    }
}

impl OutputSink for StepLog {
    fn write(&self, stream: OutputStream, chunk: &[u8]) {
        let index = match stream {
            OutputStream::Stdout => 0,
            OutputStream::Stderr => 1,
        };
        let mut bytes = {
            let mut partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
            let mut bytes = std::mem::take(&mut partial[index]);
            bytes.extend_from_slice(chunk);
            // Hold back an incomplete character at the end for the next chunk.
            let complete = match std::str::from_utf8(&bytes) {
                Ok(_) => bytes.len(),
                Err(err) if err.error_len().is_none() => err.valid_up_to(),
                Err(_) => bytes.len(),
            };
            partial[index] = bytes.split_off(complete);
            bytes
        };
        if bytes.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        bytes.clear();
        self.emit(stream, text);
    }
}
