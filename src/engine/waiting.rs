//! Steps that are preparing and not yet running (inputs, images, the
//! runtime taking them), counted by type for `concourse_steps_waiting`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::metric::StepsWaiting;

static WAITING: Mutex<BTreeMap<&'static str, i64>> = Mutex::new(BTreeMap::new());

fn change(step_type: &'static str, by: i64) {
    let mut waiting = WAITING.lock().unwrap_or_else(|p| p.into_inner());
    let count = waiting.entry(step_type).or_default();
    *count += by;
    StepsWaiting { step_type, count: *count }.emit();
}

/// One waiting step; counted until dropped.
pub struct Waiting(&'static str);

impl Waiting {
    pub fn begin(step_type: &'static str) -> Waiting {
        change(step_type, 1);
        Waiting(step_type)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        change(self.0, -1);
    }
}
