//! The role matrix: every route in the route table, called by every kind of
//! caller, against a private pipeline of team `dev`. What each route needs is
//! written here independently of the server (Concourse's role map), and the
//! test fails when the server gains a route this table does not cover.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

/// What a route requires, in Concourse's terms.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    Anyone,
    Login,
    Admin,
    /// Logged in with some role on some team.
    AnyTeam,
    /// At least this role on the team of the path.
    Role(u8),
    /// Viewer, unless the pipeline is public.
    PipelineRead,
    /// Viewer, unless both the pipeline and the build's job are public.
    PublicJobRead,
    /// Anyone with the resource's webhook token (none given here: 400).
    Webhook,
}

const VIEWER: u8 = 1;
const OPERATOR: u8 = 2;
const MEMBER: u8 = 3;
const OWNER: u8 = 4;

fn expected_requirements() -> BTreeMap<&'static str, Needs> {
    use Needs::*;
    BTreeMap::from([
        ("GetInfo", Anyone),
        ("GetHealth", Anyone),
        ("GetUser", Login),
        ("ListActiveUsersSince", Admin),
        ("GetWall", Anyone),
        ("SetWall", Admin),
        ("ClearWall", Admin),
        ("GetComponents", Admin),
        ("PauseAllComponents", Admin),
        ("UnpauseAllComponents", Admin),
        ("PauseComponent", Admin),
        ("UnpauseComponent", Admin),
        ("ListTeams", Anyone),
        ("GetTeam", Role(VIEWER)),
        ("SetTeam", Role(OWNER)),
        ("RenameTeam", Role(OWNER)),
        ("DestroyTeam", Admin),
        ("ListTeamBuilds", Role(VIEWER)),
        ("GetCC", Anyone),
        ("CreateBuild", Role(MEMBER)),
        ("CreateArtifact", Role(MEMBER)),
        ("GetArtifact", Role(MEMBER)),
        ("ListBuildArtifacts", PublicJobRead),
        ("ListWorkers", AnyTeam),
        ("CreatePipelineBuild", Role(MEMBER)),
        ("ListAllPipelines", Anyone),
        ("ListPipelines", Anyone),
        ("OrderPipelines", Role(MEMBER)),
        ("GetPipeline", PipelineRead),
        ("DeletePipeline", Role(MEMBER)),
        ("PausePipeline", Role(OPERATOR)),
        ("UnpausePipeline", Role(OPERATOR)),
        ("ExposePipeline", Role(MEMBER)),
        ("HidePipeline", Role(MEMBER)),
        ("RenamePipeline", Role(MEMBER)),
        ("ArchivePipeline", Role(MEMBER)),
        ("GetConfig", Role(VIEWER)),
        ("SaveConfig", Role(MEMBER)),
        ("ListPipelineBuilds", PipelineRead),
        ("ListAllJobs", Anyone),
        ("ListJobs", PipelineRead),
        ("GetJob", PipelineRead),
        ("ListJobInputs", Role(VIEWER)),
        ("PauseJob", Role(OPERATOR)),
        ("ScheduleJob", Role(OPERATOR)),
        ("UnpauseJob", Role(OPERATOR)),
        ("ListJobBuilds", PipelineRead),
        ("PipelineBadge", PipelineRead),
        ("JobBadge", PipelineRead),
        ("CreateJobBuild", Role(OPERATOR)),
        ("GetJobBuild", PipelineRead),
        ("RerunJobBuild", Role(OPERATOR)),
        ("ListAllResources", Anyone),
        ("ListResources", PipelineRead),
        ("GetResource", PipelineRead),
        ("ListResourceTypes", PipelineRead),
        ("ListResourceVersions", PipelineRead),
        ("CheckResource", Role(OPERATOR)),
        ("CheckResourceWebHook", Webhook),
        ("CheckResourceType", Role(OPERATOR)),
        ("GetResourceVersion", PipelineRead),
        ("EnableResourceVersion", Role(OPERATOR)),
        ("DisableResourceVersion", Role(OPERATOR)),
        ("PinResourceVersion", Role(OPERATOR)),
        ("UnpinResource", Role(OPERATOR)),
        ("SetPinCommentOnResource", Role(OPERATOR)),
        ("ListBuildsWithVersionAsInput", PipelineRead),
        ("ListBuildsWithVersionAsOutput", PipelineRead),
        ("ListBuilds", Anyone),
        ("GetBuild", PipelineRead),
        ("BuildResources", PipelineRead),
        ("GetBuildPlan", PublicJobRead),
        ("BuildEvents", PublicJobRead),
        ("AbortBuild", Role(OPERATOR)),
        ("SetBuildComment", Role(OPERATOR)),
        ("GetInfoCreds", Admin),
        ("GetLogLevel", Admin),
        ("SetLogLevel", Admin),
        ("DownloadCLI", Anyone),
        ("ListContainers", Role(VIEWER)),
        ("GetContainer", Role(VIEWER)),
        ("HijackContainer", Role(MEMBER)),
        ("ListVolumes", Role(VIEWER)),
        ("GetVersionsDB", Role(VIEWER)),
        ("MainJobBadge", Anyone),
        ("ClearTaskCache", Role(OPERATOR)),
        ("ListSharedForResource", Admin),
        ("ListSharedForResourceType", Admin),
        ("ClearResourceVersions", Admin),
        ("ClearResourceTypeVersions", Admin),
        ("ClearResourceCache", Role(OPERATOR)),
        ("GetDownstreamResourceCausality", PipelineRead),
        ("GetUpstreamResourceCausality", PipelineRead),
        ("RegisterWorker", Admin),
        ("LandWorker", Admin),
        ("RetireWorker", Admin),
        ("PruneWorker", Admin),
        ("HeartbeatWorker", Admin),
        ("DeleteWorker", Admin),
        ("ListDestroyingContainers", Admin),
        ("ReportWorkerContainers", Admin),
        ("ListDestroyingVolumes", Admin),
        ("ReportWorkerVolumes", Admin),
        ("GetBuildPreparation", PublicJobRead),
    ])
}

/// What a caller the route admits gets from routes that do not answer 2xx
/// here: a redirect, or a refusal (the matrix has no running container; atc
/// has no TSA workers, no fly binaries, no hijacking). Every other admitted
/// call succeeds.
fn refusals() -> BTreeMap<&'static str, StatusCode> {
    let not_implemented = StatusCode::NOT_IMPLEMENTED;
    BTreeMap::from([
        ("MainJobBadge", StatusCode::MOVED_PERMANENTLY),
        ("DownloadCLI", StatusCode::NOT_FOUND),
        ("GetContainer", StatusCode::NOT_FOUND),
        ("HijackContainer", not_implemented),
        ("RegisterWorker", not_implemented),
        ("LandWorker", not_implemented),
        ("RetireWorker", not_implemented),
        ("PruneWorker", StatusCode::BAD_REQUEST),
        ("HeartbeatWorker", not_implemented),
        ("DeleteWorker", not_implemented),
        ("ListDestroyingContainers", not_implemented),
        ("ReportWorkerContainers", not_implemented),
        ("ListDestroyingVolumes", not_implemented),
        ("ReportWorkerVolumes", not_implemented),
    ])
}

/// Who calls: a name, their role level on `dev` (0 = none), admin or not, logged in or not.
struct CallerKind {
    name: &'static str,
    level: u8,
    admin: bool,
    logged_in: bool,
}

const CALLERS: [CallerKind; 7] = [
    CallerKind { name: "admin", level: 0, admin: true, logged_in: true },
    CallerKind { name: "owner", level: OWNER, admin: false, logged_in: true },
    CallerKind { name: "member", level: MEMBER, admin: false, logged_in: true },
    CallerKind { name: "operator", level: OPERATOR, admin: false, logged_in: true },
    CallerKind { name: "viewer", level: VIEWER, admin: false, logged_in: true },
    CallerKind { name: "outsider", level: 0, admin: false, logged_in: true },
    CallerKind { name: "anonymous", level: 0, admin: false, logged_in: false },
];

fn allowed(needs: Needs, caller: &CallerKind) -> Result<(), StatusCode> {
    let login = || if caller.logged_in { Ok(()) } else { Err(StatusCode::UNAUTHORIZED) };
    match needs {
        Needs::Anyone => Ok(()),
        Needs::Webhook => Err(StatusCode::BAD_REQUEST),
        Needs::Login => login(),
        Needs::Admin => login().and(if caller.admin { Ok(()) } else { Err(StatusCode::FORBIDDEN) }),
        Needs::AnyTeam => {
            login().and(if caller.admin || caller.level > 0 { Ok(()) } else { Err(StatusCode::FORBIDDEN) })
        }
        // The matrix's pipeline is private, so reading it takes a viewer.
        Needs::PipelineRead | Needs::PublicJobRead => allowed(Needs::Role(VIEWER), caller),
        Needs::Role(level) => {
            login().and(if caller.admin || caller.level >= level { Ok(()) } else { Err(StatusCode::FORBIDDEN) })
        }
    }
}

const PIPELINE: &str = "resource_types:\n- name: rt\n  type: mock\nresources:\n- name: r\n  type: mock\njobs:\n- name: j\n  plan:\n  - get: r\n";

fn team_auth() -> serde_json::Value {
    json!({ "auth": {
        "owner": { "users": ["local:owner"] },
        "member": { "users": ["local:member"] },
        "pipeline-operator": { "users": ["local:operator"] },
        "viewer": { "users": ["local:viewer"] },
    }})
}

/// Puts team `dev` with its private pipeline `p` back as the matrix expects.
async fn reset(server: &TestServer, admin: &str) {
    let component = std::time::Duration::from_secs(10);
    server.test_db.db.register_component("tracker", component).await.unwrap();
    let response = server.put_json("/api/v1/teams/dev", Some(admin), &team_auth()).await;
    assert!(response.status().is_success());
    let response = server.set_pipeline(admin, "dev", "p", PIPELINE).await;
    assert!(response.status().is_success(), "reset pipeline: {}", response.status());
    server.request(Method::PUT, "/api/v1/teams/dev/pipelines/p/hide", Some(admin)).send().await.unwrap();
    // Inputs resolved for job `j`, as the (paused) scheduler would have.
    let db = &server.test_db.db;
    let pipeline = db.find_pipeline("dev", &atc::db::PipelineRef::named("p")).await.unwrap().unwrap();
    let job = db.find_job(pipeline.id, "j").await.unwrap().unwrap();
    let resource = db.find_resource(pipeline.id, "r").await.unwrap().unwrap();
    let input = atc::db::NextInput {
        name: "r".into(),
        resource_id: resource.id,
        version_id: a_version(server).await,
        first_occurrence: true,
    };
    db.save_next_inputs(job.id, &[input], None).await.unwrap();
}

/// A version of resource `r`; returns its id.
async fn a_version(server: &TestServer) -> i64 {
    let db = &server.test_db.db;
    let pipeline = db.find_pipeline("dev", &atc::db::PipelineRef::named("p")).await.unwrap().unwrap();
    let resource = db.find_resource(pipeline.id, "r").await.unwrap().unwrap();
    let ids = db
        .save_versions(
            atc::db::VersionOwner::Resource(resource.id),
            &resource.config_hash,
            &[(json!({"v": "1"}), json!([]))],
            None,
        )
        .await
        .unwrap();
    ids[0]
}

/// An uploaded artifact of team `dev`; returns its id.
async fn an_artifact(server: &TestServer, admin: &str) -> i64 {
    let response = server
        .request(Method::POST, "/api/v1/teams/dev/artifacts", Some(admin))
        .body(crate::support::tgz(&[("hello.txt", "hi")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<serde_json::Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// A finished build of job `j` (so its event stream ends at once); returns its id.
async fn finished_build(server: &TestServer) -> i64 {
    let db = &server.test_db.db;
    let team = db.find_team("dev").await.unwrap().unwrap();
    let pipeline = db.find_pipeline("dev", &atc::db::PipelineRef::named("p")).await.unwrap().unwrap();
    let job = db.find_job(pipeline.id, "j").await.unwrap().unwrap();
    let plan = r#"{"id":"1","do":[]}"#;
    let number = db.next_build_number(job.id).await.unwrap();
    let id = db
        .create_build(&atc::db::NewBuild {
            team_id: team.id,
            pipeline_id: Some(pipeline.id),
            job_id: Some(job.id),
            name: number.to_string(),
            plan: Some(atc::db::BuildPlan::new(serde_json::from_str(plan).unwrap())),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(db.end_unstarted_build(id, atc::db::BuildStatus::Succeeded, &[]).await.unwrap());
    id
}

async fn every_route_enforces_its_role(backend: Backend) {
    let users: Vec<(&str, &str)> =
        ["owner", "member", "operator", "viewer", "outsider"].iter().map(|u| (*u, "pw")).collect();
    let server = TestServer::start_with_users(backend, &users).await;
    let admin = server.admin_token().await;
    reset(&server, &admin).await;
    let mut tokens = BTreeMap::new();
    tokens.insert("admin", admin.clone());
    for (user, password) in &users {
        tokens.insert(*user, server.login(user, password).await);
    }

    let requirements = expected_requirements();
    let refusals = refusals();
    let specs = atc::api::routes::route_specs();
    let served: Vec<&str> = specs.iter().map(|s| s.name).collect();
    let expected: Vec<&str> = requirements.keys().copied().collect();
    let mut served_sorted = served.clone();
    served_sorted.sort();
    assert_eq!(served_sorted, expected, "the matrix must cover exactly the served routes");

    let mut failures = Vec::new();
    let mut renames = 0;
    for spec in &specs {
        let needs = requirements[spec.name];
        for caller in &CALLERS {
            renames += 1;
            let path = spec
                .path
                .replace("{team_name}", "dev")
                .replace("{pipeline_name}", "p")
                .replace("{job_name}", "j")
                .replace("{resource_name}", "r")
                .replace("{resource_type_name}", "rt")
                .replace("{build_id}", &finished_build(&server).await.to_string())
                .replace("{version_id}", &a_version(&server).await.to_string())
                .replace("{build_name}", "1")
                .replace("{component_name}", "tracker")
                .replace("{step_name}", "a-task")
                .replace("{worker_name}", "a-worker")
                .replace("{id}", "no-such-container")
                .replace("{artifact_id}", &an_artifact(&server, &admin).await.to_string());
            let token = if caller.logged_in { Some(tokens[caller.name].as_str()) } else { None };
            let mut request = server.request(spec.method.clone(), &path, token);
            request = match spec.name {
                "SetTeam" => request.json(&team_auth()),
                "RenameTeam" => request.json(&json!({ "name": format!("dev-{renames}") })),
                "RenamePipeline" => request.json(&json!({ "name": format!("p-{renames}") })),
                "OrderPipelines" => request.json(&json!(["p"])),
                "SetBuildComment" => request.json(&json!({ "comment": "looked at it" })),
                "SetWall" => request.json(&json!({ "message": "maintenance at noon" })),
                "CreateArtifact" => request.body(crate::support::tgz(&[("a", "b")])),
                "CreateBuild" | "CreatePipelineBuild" => request.json(&json!({ "id": "1", "do": [] })),
                "SetPinCommentOnResource" => request.json(&json!({ "pin_comment": "pinned for a reason" })),
                "SaveConfig" => request.header("Content-Type", "application/x-yaml").body(PIPELINE),
                "SetLogLevel" => request.body("info"),
                _ => request,
            };
            let status = request.send().await.unwrap().status();
            let ok = match allowed(needs, caller) {
                Ok(()) => refusals.get(spec.name).map_or(status.is_success(), |r| status == *r),
                Err(expected) => status == expected,
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {}: got {status}, expected {:?}",
                    spec.method,
                    spec.path,
                    caller.name,
                    allowed(needs, caller)
                ));
            }
            if spec.method != Method::GET && status.is_success() {
                reset(&server, &admin).await;
            }
        }
    }
    assert!(failures.is_empty(), "role matrix failures:\n{}", failures.join("\n"));
    server.stop().await;
}

async fn public_pipelines_are_readable_by_anyone(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    reset(&server, &admin).await;
    server.request(Method::PUT, "/api/v1/teams/dev/pipelines/p/expose", Some(&admin)).send().await.unwrap();
    let requirements = expected_requirements();
    let anonymous_status = |path: String| {
        let server = &server;
        async move { server.get(&path, None).await.status() }
    };
    let version = a_version(&server).await;
    let concrete = |path: &str, build: i64| {
        path.replace("{team_name}", "dev")
            .replace("{pipeline_name}", "p")
            .replace("{job_name}", "j")
            .replace("{resource_name}", "r")
            .replace("{build_id}", &build.to_string())
            .replace("{version_id}", &version.to_string())
            .replace("{build_name}", "1")
    };
    let build = finished_build(&server).await;
    for spec in atc::api::routes::route_specs() {
        let status = anonymous_status(concrete(spec.path, build)).await;
        match requirements[spec.name] {
            Needs::PipelineRead => {
                assert!(status.is_success(), "{} on a public pipeline without login: {status}", spec.path)
            }
            Needs::PublicJobRead => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{} of a private job needs a login", spec.path)
            }
            _ => {}
        }
    }
    // Once the job is public too, its builds' plans and logs are readable.
    let public_job = PIPELINE.replace("- name: j\n", "- name: j\n  public: true\n");
    assert!(server.set_pipeline(&admin, "dev", "p", &public_job).await.status().is_success());
    for spec in atc::api::routes::route_specs() {
        if requirements[spec.name] == Needs::PublicJobRead {
            let status = anonymous_status(concrete(spec.path, build)).await;
            assert!(status.is_success(), "{} of a public job without login: {status}", spec.path);
        }
    }
    server.stop().await;
}

on_both_backends!(every_route_enforces_its_role, public_pipelines_are_readable_by_anyone);
