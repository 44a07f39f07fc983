//! Build events in Concourse's wire format: each has a type, a version and
//! a JSON payload; `GET /api/v1/builds/:id/events` wraps them in an
//! envelope `{"event", "version", "data", "event_id"}`.

use serde::Serialize;
use serde_json::Value;

/// Which step an event is about: the step's plan id and, for logs, which stream.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Origin {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
}

impl Origin {
    pub fn step(plan_id: &str) -> Origin {
        Origin { id: plan_id.to_string(), source: None }
    }
}

/// The task config as events show it (a shadow of the real one).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct TaskConfigSummary {
    pub platform: String,
    pub image: String,
    pub run: TaskRunSummary,
    pub inputs: Vec<TaskInputSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct TaskRunSummary {
    pub path: String,
    pub args: Vec<String>,
    pub dir: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskInputSummary {
    pub name: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct MetadataField {
    pub name: String,
    pub value: String,
}

/// Every event a build can record. `time` is unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEvent {
    Status { status: String, time: i64 },
    Log { origin: Origin, payload: String, time: i64 },
    Error { origin: Origin, message: String, time: i64 },
    InitializeTask { origin: Origin, config: TaskConfigSummary, time: i64 },
    StartTask { origin: Origin, config: TaskConfigSummary, time: i64 },
    FinishTask { origin: Origin, exit_status: i32, time: i64 },
    InitializeGet { origin: Origin, time: i64 },
    StartGet { origin: Origin, time: i64 },
    FinishGet { origin: Origin, exit_status: i32, version: Value, metadata: Vec<MetadataField>, time: i64 },
    InitializePut { origin: Origin, time: i64 },
    StartPut { origin: Origin, time: i64 },
    FinishPut { origin: Origin, exit_status: i32, version: Value, metadata: Vec<MetadataField>, time: i64 },
    InitializeCheck { origin: Origin, name: String, time: i64 },
    Initialize { origin: Origin, time: i64 },
    Start { origin: Origin, time: i64 },
    Finish { origin: Origin, succeeded: bool, time: i64 },
    SetPipelineChanged { origin: Origin, changed: bool },
    SelectedWorker { origin: Origin, worker: String, time: i64 },
    ImageCheck { origin: Origin, plan: Value, time: i64 },
    ImageGet { origin: Origin, plan: Value, time: i64 },
    AcrossSubsteps { origin: Origin, substeps: Vec<Value>, time: i64 },
}

impl BuildEvent {
    /// The event's type name on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            BuildEvent::Status { .. } => "status",
            BuildEvent::Log { .. } => "log",
            BuildEvent::Error { .. } => "error",
            BuildEvent::InitializeTask { .. } => "initialize-task",
            BuildEvent::StartTask { .. } => "start-task",
            BuildEvent::FinishTask { .. } => "finish-task",
            BuildEvent::InitializeGet { .. } => "initialize-get",
            BuildEvent::StartGet { .. } => "start-get",
            BuildEvent::FinishGet { .. } => "finish-get",
            BuildEvent::InitializePut { .. } => "initialize-put",
            BuildEvent::StartPut { .. } => "start-put",
            BuildEvent::FinishPut { .. } => "finish-put",
            BuildEvent::InitializeCheck { .. } => "initialize-check",
            BuildEvent::Initialize { .. } => "initialize",
            BuildEvent::Start { .. } => "start",
            BuildEvent::Finish { .. } => "finish",
            BuildEvent::SetPipelineChanged { .. } => "set-pipeline-changed",
            BuildEvent::SelectedWorker { .. } => "selected-worker",
            BuildEvent::ImageCheck { .. } => "image-check",
            BuildEvent::ImageGet { .. } => "image-get",
            BuildEvent::AcrossSubsteps { .. } => "across-substeps",
        }
    }

    /// The version of the event's payload format, as Concourse numbers them.
    pub fn version(&self) -> &'static str {
        match self {
            BuildEvent::Log { .. } | BuildEvent::FinishGet { .. } | BuildEvent::FinishPut { .. } => "5.1",
            BuildEvent::Error { .. } => "4.1",
            BuildEvent::InitializeTask { .. } | BuildEvent::FinishTask { .. } => "4.0",
            BuildEvent::StartTask { .. } => "5.0",
            BuildEvent::InitializeGet { .. } | BuildEvent::InitializePut { .. } => "2.0",
            BuildEvent::ImageCheck { .. } | BuildEvent::ImageGet { .. } => "1.1",
            _ => "1.0",
        }
    }

    /// The event's `data` object.
    pub fn payload(&self) -> Value {
        use serde_json::json;
        match self {
            BuildEvent::Status { status, time } => json!({ "status": status, "time": time }),
            BuildEvent::Log { origin, payload, time } => json!({ "origin": origin, "payload": payload, "time": time }),
            BuildEvent::Error { origin, message, time } => {
                json!({ "origin": origin, "message": message, "time": time })
            }
            BuildEvent::InitializeTask { origin, config, time } | BuildEvent::StartTask { origin, config, time } => {
                json!({ "origin": origin, "config": config, "time": time })
            }
            BuildEvent::FinishTask { origin, exit_status, time } => {
                json!({ "origin": origin, "exit_status": exit_status, "time": time })
            }
            BuildEvent::InitializeGet { origin, time }
            | BuildEvent::StartGet { origin, time }
            | BuildEvent::InitializePut { origin, time }
            | BuildEvent::StartPut { origin, time }
            | BuildEvent::Initialize { origin, time }
            | BuildEvent::Start { origin, time } => json!({ "origin": origin, "time": time }),
            BuildEvent::FinishGet { origin, exit_status, version, metadata, time }
            | BuildEvent::FinishPut { origin, exit_status, version, metadata, time } => {
                let mut data =
                    json!({ "origin": origin, "exit_status": exit_status, "version": version, "time": time });
                if !metadata.is_empty() {
                    data["metadata"] = json!(metadata);
                }
                data
            }
            BuildEvent::InitializeCheck { origin, name, time } => {
                json!({ "origin": origin, "name": name, "time": time })
            }
            BuildEvent::Finish { origin, succeeded, time } => {
                json!({ "origin": origin, "succeeded": succeeded, "time": time })
            }
            BuildEvent::SetPipelineChanged { origin, changed } => json!({ "origin": origin, "changed": changed }),
            BuildEvent::SelectedWorker { origin, worker, time } => {
                json!({ "origin": origin, "selected_worker": worker, "time": time })
            }
            BuildEvent::ImageCheck { origin, plan, time } | BuildEvent::ImageGet { origin, plan, time } => {
                json!({ "origin": origin, "plan": plan, "time": time })
            }
            BuildEvent::AcrossSubsteps { origin, substeps, time } => {
                json!({ "origin": origin, "substeps": substeps, "time": time })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_events_match_the_wire_format() {
        let event = BuildEvent::Log {
            origin: Origin { id: "a1".into(), source: Some("stdout") },
            payload: "hi\n".into(),
            time: 7,
        };
        assert_eq!((event.kind(), event.version()), ("log", "5.1"));
        assert_eq!(
            event.payload(),
            serde_json::json!({ "origin": { "id": "a1", "source": "stdout" }, "payload": "hi\n", "time": 7 })
        );
    }

    #[test]
    fn finish_get_omits_empty_metadata() {
        let event = BuildEvent::FinishGet {
            origin: Origin::step("b2"),
            exit_status: 0,
            version: serde_json::json!({ "ref": "abc" }),
            metadata: vec![],
            time: 1,
        };
        assert!(event.payload().get("metadata").is_none());
        assert_eq!(event.version(), "5.1");
    }
}
