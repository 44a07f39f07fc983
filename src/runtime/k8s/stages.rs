//! Where a pod's time went, from what Kubernetes recorded: scheduling
//! (creation to the PodScheduled condition), image pulls (Pulling and
//! Pulled Events), init containers, sidecars' starts and the main
//! container (their statuses), recorded as children of the pod's span.

use std::time::SystemTime;

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use k8s_openapi::jiff::Timestamp;

use super::pod::MAIN;
use crate::telemetry::spans::{PodInterval, PodSpan, PodStage};

fn time(timestamp: &Timestamp) -> SystemTime {
    SystemTime::from(*timestamp)
}

/// Records scheduling, image pulls and init containers once the pod runs
/// or failed to.
pub fn record_startup(span: &PodSpan, pod: &Pod, events: &[Event]) {
    let Some(created) = pod.metadata.creation_timestamp.as_ref().map(|t| time(&t.0)) else { return };
    let status = pod.status.as_ref();
    let scheduled = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "PodScheduled" && c.status == "True"))
        .and_then(|condition| condition.last_transition_time.as_ref());
    if let Some(scheduled) = scheduled {
        span.record(PodInterval { stage: PodStage::Schedule, start: created, end: time(&scheduled.0), failure: None });
    }
    let image_of = |name: &str| {
        let spec = pod.spec.as_ref();
        let containers = spec.map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()));
        containers.and_then(|mut all| all.find(|c| c.name == name)).and_then(|c| c.image.clone()).unwrap_or_default()
    };
    for (container, start, end, failure) in pulls(events) {
        let image = image_of(&container);
        let stage = PodStage::ImagePull { container: &container, image: &image };
        span.record(PodInterval { stage, start, end, failure: failure.as_deref() });
    }
    // Containers start once the last init container ended (or once scheduled).
    let mut containers_from = scheduled.map(|t| time(&t.0));
    for init in status.and_then(|s| s.init_container_statuses.as_ref()).into_iter().flatten() {
        let Some(ended) = init.state.as_ref().and_then(|state| state.terminated.as_ref()) else { continue };
        let (Some(start), Some(end)) = (&ended.started_at, &ended.finished_at) else { continue };
        let failure = (ended.exit_code != 0).then(|| ended.reason.clone().unwrap_or_else(|| "Error".into()));
        let image = image_of(&init.name);
        let stage = PodStage::InitContainer { name: &init.name, image: &image };
        span.record(PodInterval { stage, start: time(&start.0), end: time(&end.0), failure: failure.as_deref() });
        containers_from = containers_from.max(Some(time(&end.0)));
    }
    if let Some(from) = containers_from {
        record_sidecars(span, pod, from);
    }
}

/// Each sidecar's start: from when the pod's containers could start until
/// its container started (or, when it never did, why not).
fn record_sidecars(span: &PodSpan, pod: &Pod, from: SystemTime) {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    for sidecar in statuses.into_iter().flatten().filter(|c| c.name != MAIN) {
        let Some(state) = sidecar.state.as_ref() else { continue };
        let started = state.running.as_ref().and_then(|r| r.started_at.as_ref());
        let started = started.or_else(|| state.terminated.as_ref().and_then(|t| t.started_at.as_ref()));
        let (end, failure) = match (started, &state.waiting) {
            (Some(started), _) => (time(&started.0), None),
            (None, Some(waiting)) => (SystemTime::now(), waiting.reason.clone()),
            (None, None) => continue,
        };
        let stage = PodStage::SidecarStart { name: &sidecar.name, image: &sidecar.image };
        span.record(PodInterval { stage, start: from, end, failure: failure.as_deref() });
    }
}

/// Records the main container's run, from its start until `end` (or until
/// it ended, and why, when it did).
pub fn record_run(span: &PodSpan, pod: &Pod, end: SystemTime) {
    let status = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    let Some(main) = status.and_then(|all| all.iter().find(|c| c.name == MAIN)) else { return };
    let Some((start, ended, failure)) = run_times(main) else { return };
    let image = main.image.clone();
    let stage = PodStage::Run { container: MAIN, image: &image };
    span.record(PodInterval { stage, start, end: ended.unwrap_or(end), failure: failure.as_deref() });
}

fn run_times(main: &ContainerStatus) -> Option<(SystemTime, Option<SystemTime>, Option<String>)> {
    let state = main.state.as_ref()?;
    if let Some(running) = &state.running {
        return Some((time(&running.started_at.as_ref()?.0), None, None));
    }
    let ended = state.terminated.as_ref()?;
    let failure = ended.reason.clone().filter(|reason| reason != "Completed");
    Some((time(&ended.started_at.as_ref()?.0), ended.finished_at.as_ref().map(|t| time(&t.0)), failure))
}

/// Image pulls per container: from Pulling to Pulled, or to the Failed
/// Event that ended the pull (its reason the failure).
fn pulls(events: &[Event]) -> Vec<(String, SystemTime, SystemTime, Option<String>)> {
    let at = |event: &Event| {
        event
            .event_time
            .as_ref()
            .map(|t| time(&t.0))
            .or_else(|| event.first_timestamp.as_ref().map(|t| time(&t.0)))
            .or_else(|| event.last_timestamp.as_ref().map(|t| time(&t.0)))
    };
    let container = |event: &Event| {
        let path = event.involved_object.field_path.as_deref()?;
        Some(path.split_once('{')?.1.trim_end_matches('}').to_string())
    };
    let mut pulls = Vec::new();
    for pulling in events.iter().filter(|e| e.reason.as_deref() == Some("Pulling")) {
        let (Some(name), Some(start)) = (container(pulling), at(pulling)) else { continue };
        let done = events.iter().find(|e| {
            matches!(e.reason.as_deref(), Some("Pulled" | "Failed")) && container(e).as_deref() == Some(name.as_str())
        });
        let Some(done) = done else { continue };
        let failure = (done.reason.as_deref() == Some("Failed")).then(|| "ErrImagePull".to_string());
        pulls.push((name, start, at(done).unwrap_or(start), failure));
    }
    pulls
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::pulls;

    #[test]
    fn pulls_are_paired_by_container() {
        let event = |reason: &str, container: &str, at: &str| {
            serde_json::from_value(json!({
                "metadata": {"name": format!("{reason}-{container}")},
                "involvedObject": {"fieldPath": format!("spec.containers{{{container}}}")},
                "reason": reason,
                "firstTimestamp": at,
            }))
            .unwrap()
        };
        let events = vec![
            event("Pulling", "main", "2026-01-01T00:00:01Z"),
            event("Pulling", "side", "2026-01-01T00:00:01Z"),
            event("Pulled", "main", "2026-01-01T00:00:03Z"),
            event("Failed", "side", "2026-01-01T00:00:02Z"),
        ];
        let found = pulls(&events);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].2.duration_since(found[0].1).unwrap().as_secs(), 2);
        assert_eq!((found[1].0.as_str(), found[1].3.as_deref()), ("side", Some("ErrImagePull")));
    }
}
