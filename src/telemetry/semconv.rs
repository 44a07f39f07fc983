//! The attribute keys of atc's spans and metrics, spelled once. They follow
//! the OpenTelemetry semantic conventions (HTTP, database, process, and the
//! CI/CD `cicd.*` release candidate of semconv 1.43); facts only Concourse
//! has go under `concourse.*`. observability.md is the contract they keep.

// CI/CD: a build is a pipeline run, a step a task run.
pub const CICD_PIPELINE_NAME: &str = "cicd.pipeline.name";
pub const CICD_PIPELINE_ACTION_NAME: &str = "cicd.pipeline.action.name";
pub const CICD_PIPELINE_RESULT: &str = "cicd.pipeline.result";
pub const CICD_PIPELINE_RUN_ID: &str = "cicd.pipeline.run.id";
pub const CICD_PIPELINE_RUN_STATE: &str = "cicd.pipeline.run.state";
pub const CICD_PIPELINE_RUN_URL_FULL: &str = "cicd.pipeline.run.url.full";
pub const CICD_PIPELINE_TASK_NAME: &str = "cicd.pipeline.task.name";
pub const CICD_PIPELINE_TASK_RUN_ID: &str = "cicd.pipeline.task.run.id";
pub const CICD_PIPELINE_TASK_RUN_RESULT: &str = "cicd.pipeline.task.run.result";
pub const CICD_PIPELINE_TASK_RUN_URL_FULL: &str = "cicd.pipeline.task.run.url.full";
pub const CICD_SYSTEM_COMPONENT: &str = "cicd.system.component";
pub const CICD_WORKER_NAME: &str = "cicd.worker.name";
pub const CICD_WORKER_STATE: &str = "cicd.worker.state";
pub const CONTAINER_IMAGE_NAME: &str = "container.image.name";

// Database client operations.
pub const DB_SYSTEM_NAME: &str = "db.system.name";
pub const DB_OPERATION_NAME: &str = "db.operation.name";
pub const DB_COLLECTION_NAME: &str = "db.collection.name";

// HTTP server requests.
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
pub const HTTP_REQUEST_RESEND_COUNT: &str = "http.request.resend_count";
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
pub const HTTP_ROUTE: &str = "http.route";
pub const URL_PATH: &str = "url.path";
pub const URL_SCHEME: &str = "url.scheme";
pub const CLIENT_ADDRESS: &str = "client.address";
pub const USER_AGENT_ORIGINAL: &str = "user_agent.original";

// HTTP client requests (a credential manager to its store).
pub const SERVER_ADDRESS: &str = "server.address";
pub const SERVER_PORT: &str = "server.port";

// RPC (the AWS SDK's calls: rpc.system = aws-api).
pub const RPC_SYSTEM: &str = "rpc.system";
pub const RPC_SERVICE: &str = "rpc.service";
pub const RPC_METHOD: &str = "rpc.method";

// Processes a runtime starts.
pub const PROCESS_PID: &str = "process.pid";
pub const PROCESS_COMMAND: &str = "process.command";
pub const PROCESS_EXIT_CODE: &str = "process.exit.code";

/// What kind of failure it was; set only on failures.
pub const ERROR_TYPE: &str = "error.type";

// Kubernetes (k8s.*)
pub const K8S_POD_NAME: &str = "k8s.pod.name";
pub const K8S_NAMESPACE_NAME: &str = "k8s.namespace.name";
pub const K8S_NODE_NAME: &str = "k8s.node.name";
pub const K8S_POD_STATUS_PHASE: &str = "k8s.pod.status.phase";
pub const K8S_CONTAINER_NAME: &str = "k8s.container.name";
pub const K8S_PERSISTENTVOLUMECLAIM_NAME: &str = "k8s.persistentvolumeclaim.name";
pub const K8S_CONTAINER_STATUS_LAST_TERMINATED_REASON: &str = "k8s.container.status.last_terminated_reason";
pub const CONCOURSE_K8S_RESOURCE: &str = "concourse.k8s.resource";

/// The project Google files the data under (a resource attribute).
pub const GCP_PROJECT_ID: &str = "gcp.project_id";

/// The exit status on a step's `step.finished` event.
pub const EXIT_STATUS: &str = "exit_status";

// Concourse's own facts.
pub const CONCOURSE_TEAM_NAME: &str = "concourse.team.name";
pub const CONCOURSE_PIPELINE_NAME: &str = "concourse.pipeline.name";
pub const CONCOURSE_JOB_NAME: &str = "concourse.job.name";
pub const CONCOURSE_BUILD_NAME: &str = "concourse.build.name";
pub const CONCOURSE_RESOURCE_NAME: &str = "concourse.resource.name";
pub const CONCOURSE_RESOURCE_TYPE: &str = "concourse.resource.type";
pub const CONCOURSE_STEP_TYPE: &str = "concourse.step.type";
pub const CONCOURSE_HOOK_TYPE: &str = "concourse.hook.type";
pub const CONCOURSE_CREDS_MANAGER: &str = "concourse.creds.manager";
pub const CONCOURSE_SECRET_PATH: &str = "concourse.secret.path";
pub const CONCOURSE_SECRET_FOUND: &str = "concourse.secret.found";
pub const CONCOURSE_CACHE_HIT: &str = "concourse.cache.hit";
pub const CONCOURSE_LOCK_TYPE: &str = "concourse.lock.type";
pub const CONCOURSE_LOCK_ACQUIRED: &str = "concourse.lock.acquired";
pub const CONCOURSE_CHECKS_STARTED: &str = "concourse.checks.started";
pub const CONCOURSE_STEPS_STOPPED: &str = "concourse.steps.stopped";
