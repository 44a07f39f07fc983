//! The route table: every API route with its Concourse name and who may
//! call it. Authorization is applied from here, in one place, so no handler
//! can forget it; the role-matrix test walks this same list.

use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};

// Kept on one line: adding a handler module is a one-word change.
#[rustfmt::skip]
use super::{AppState, artifacts, badges, build_events, builds, causality, cctray, checks, clear, components, containers, hijack, info, jobs, log_level, pipeline_config, pipelines, resources, teams, unsupported, users, versions, wall};
use crate::auth::Role;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Anyone; a token, if presented, must be valid. Handlers filter by role.
    Anyone,
    /// Any logged-in user.
    Authenticated,
    /// A user holding some role on some team.
    AnyTeam,
    /// Owners of the main team.
    Admin,
    /// At least this role on the team in the path.
    TeamRole(Role),
    /// Anyone for a public pipeline, else viewers of its team.
    PipelineRead,
    /// The build in the path: anyone when its pipeline is public, else
    /// viewers of its team.
    BuildRead,
    /// As `BuildRead`, but a public pipeline's build also needs a public job
    /// (its logs and plan).
    BuildLogsRead,
    /// At least this role on the team of the build in the path.
    BuildRole(Role),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Concourse's name for the route (`GetPipeline`, `SaveConfig`, ...).
    pub name: &'static str,
    pub method: Method,
    pub path: &'static str,
    pub policy: Policy,
    /// The route may create what its path names last (a team or a pipeline),
    /// so that object need not exist yet.
    pub creates: bool,
    /// The path's `{pipeline_name}` names a group (every instance of that
    /// name), not one pipeline: only the team is resolved.
    pub names_group: bool,
}

macro_rules! p {
    ($suffix:literal) => {
        concat!("/api/v1/teams/{team_name}/pipelines/{pipeline_name}", $suffix)
    };
}

/// Every API route with its handler, one per line.
#[rustfmt::skip]
pub fn api_routes() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    use Policy::*;
    use Role::*;
    let route = |name, method: Method, path, policy, handler| (RouteSpec { name, method, path, policy, creates: false, names_group: false }, handler);
    let creating = |name, method: Method, path, policy, handler| (RouteSpec { name, method, path, policy, creates: true, names_group: false }, handler);
    let on_group = |name, method: Method, path, policy, handler| (RouteSpec { name, method, path, policy, creates: false, names_group: true }, handler);
    vec![
        route("GetInfo", Method::GET, "/api/v1/info", Anyone, get(info::get_info)),
        route("GetHealth", Method::GET, "/api/v1/health", Anyone, get(info::get_health)),
        route("GetUser", Method::GET, "/api/v1/user", Authenticated, get(users::get_user)),
        route("GetWall", Method::GET, "/api/v1/wall", Anyone, get(wall::get_wall)),
        route("SetWall", Method::PUT, "/api/v1/wall", Admin, put(wall::set_wall)),
        route("ClearWall", Method::DELETE, "/api/v1/wall", Admin, delete(wall::clear_wall)),
        route("GetComponents", Method::GET, "/api/v1/components", Admin, get(components::list_components)),
        route("PauseAllComponents", Method::PUT, "/api/v1/components/pause", Admin, put(components::pause_all)),
        route("UnpauseAllComponents", Method::PUT, "/api/v1/components/unpause", Admin, put(components::unpause_all)),
        route("PauseComponent", Method::PUT, "/api/v1/components/{component_name}/pause", Admin, put(components::pause_component)),
        route("UnpauseComponent", Method::PUT, "/api/v1/components/{component_name}/unpause", Admin, put(components::unpause_component)),
        route("ListActiveUsersSince", Method::GET, "/api/v1/users", Admin, get(users::list_active_users)),
        route("GetInfoCreds", Method::GET, "/api/v1/info/creds", Admin, get(info::get_info_creds)),
        route("GetLogLevel", Method::GET, "/api/v1/log-level", Admin, get(log_level::get_log_level)),
        route("SetLogLevel", Method::PUT, "/api/v1/log-level", Admin, put(log_level::set_log_level)),
        route("DownloadCLI", Method::GET, "/api/v1/cli", Anyone, get(unsupported::download_cli)),
        // Teams
        route("ListTeams", Method::GET, "/api/v1/teams", Anyone, get(teams::list_teams)),
        route("GetTeam", Method::GET, "/api/v1/teams/{team_name}", TeamRole(Viewer), get(teams::get_team)),
        creating("SetTeam", Method::PUT, "/api/v1/teams/{team_name}", TeamRole(Owner), put(teams::set_team)),
        route("RenameTeam", Method::PUT, "/api/v1/teams/{team_name}/rename", TeamRole(Owner), put(teams::rename_team)),
        route("DestroyTeam", Method::DELETE, "/api/v1/teams/{team_name}", Admin, delete(teams::destroy_team)),
        route("CreateBuild", Method::POST, "/api/v1/teams/{team_name}/builds", TeamRole(Member), post(builds::create_one_off_build)),
        route("GetCC", Method::GET, "/api/v1/teams/{team_name}/cc.xml", Anyone, get(cctray::get_cc)),
        route("CreateArtifact", Method::POST, "/api/v1/teams/{team_name}/artifacts", TeamRole(Member), post(artifacts::create_artifact)),
        route("GetArtifact", Method::GET, "/api/v1/teams/{team_name}/artifacts/{artifact_id}", TeamRole(Member), get(artifacts::get_artifact)),
        route("ListTeamBuilds", Method::GET, "/api/v1/teams/{team_name}/builds", TeamRole(Viewer), get(builds::list_team_builds)),
        route("ListContainers", Method::GET, "/api/v1/teams/{team_name}/containers", TeamRole(Viewer), get(containers::list_containers)),
        route("GetContainer", Method::GET, "/api/v1/teams/{team_name}/containers/{id}", TeamRole(Viewer), get(containers::get_container)),
        route("HijackContainer", Method::GET, "/api/v1/teams/{team_name}/containers/{id}/hijack", TeamRole(Member), get(hijack::hijack_container)),
        route("ListVolumes", Method::GET, "/api/v1/teams/{team_name}/volumes", TeamRole(Viewer), get(containers::list_volumes)),
        // Pipelines
        route("ListAllPipelines", Method::GET, "/api/v1/pipelines", Anyone, get(pipelines::list_all_pipelines)),
        route("ListPipelines", Method::GET, "/api/v1/teams/{team_name}/pipelines", Anyone, get(pipelines::list_team_pipelines)),
        route("OrderPipelines", Method::PUT, "/api/v1/teams/{team_name}/pipelines/ordering", TeamRole(Member), put(pipelines::order_pipelines)),
        on_group("OrderPipelinesWithinGroup", Method::PUT, p!("/ordering"), TeamRole(Member), put(pipelines::order_pipelines_within_group)),
        route("GetPipeline", Method::GET, p!(""), PipelineRead, get(pipelines::get_pipeline)),
        route("DeletePipeline", Method::DELETE, p!(""), TeamRole(Member), delete(pipelines::delete_pipeline)),
        route("PausePipeline", Method::PUT, p!("/pause"), TeamRole(PipelineOperator), put(pipelines::pause_pipeline)),
        route("UnpausePipeline", Method::PUT, p!("/unpause"), TeamRole(PipelineOperator), put(pipelines::unpause_pipeline)),
        route("ExposePipeline", Method::PUT, p!("/expose"), TeamRole(Member), put(pipelines::expose_pipeline)),
        route("HidePipeline", Method::PUT, p!("/hide"), TeamRole(Member), put(pipelines::hide_pipeline)),
        on_group("RenamePipeline", Method::PUT, p!("/rename"), TeamRole(Member), put(pipelines::rename_pipeline)),
        route("ArchivePipeline", Method::PUT, p!("/archive"), TeamRole(Member), put(pipelines::archive_pipeline)),
        route("GetConfig", Method::GET, p!("/config"), TeamRole(Viewer), get(pipeline_config::get_config)),
        creating("SaveConfig", Method::PUT, p!("/config"), TeamRole(Member), put(pipeline_config::save_config)),
        route("CreatePipelineBuild", Method::POST, p!("/builds"), TeamRole(Member), post(builds::create_one_off_build)),
        route("PipelineBadge", Method::GET, p!("/badge"), PipelineRead, get(badges::pipeline_badge)),
        route("JobBadge", Method::GET, p!("/jobs/{job_name}/badge"), PipelineRead, get(badges::job_badge)),
        route("ListPipelineBuilds", Method::GET, p!("/builds"), PipelineRead, get(builds::list_pipeline_builds)),
        route("GetVersionsDB", Method::GET, p!("/versions-db"), TeamRole(Viewer), get(causality::versions_db)),
        route("MainJobBadge", Method::GET, "/api/v1/pipelines/{pipeline_name}/jobs/{job_name}/badge", Anyone, get(badges::main_job_badge)),
        // Jobs
        route("ListAllJobs", Method::GET, "/api/v1/jobs", Anyone, get(jobs::list_all_jobs)),
        route("ListJobs", Method::GET, p!("/jobs"), PipelineRead, get(jobs::list_jobs)),
        route("GetJob", Method::GET, p!("/jobs/{job_name}"), PipelineRead, get(jobs::get_job)),
        route("ListJobInputs", Method::GET, p!("/jobs/{job_name}/inputs"), TeamRole(Viewer), get(jobs::list_job_inputs)),
        route("ScheduleJob", Method::PUT, p!("/jobs/{job_name}/schedule"), TeamRole(PipelineOperator), put(jobs::schedule_job)),
        route("PauseJob", Method::PUT, p!("/jobs/{job_name}/pause"), TeamRole(PipelineOperator), put(jobs::pause_job)),
        route("UnpauseJob", Method::PUT, p!("/jobs/{job_name}/unpause"), TeamRole(PipelineOperator), put(jobs::unpause_job)),
        route("CreateJobBuild", Method::POST, p!("/jobs/{job_name}/builds"), TeamRole(PipelineOperator), post(jobs::create_job_build)),
        route("GetJobBuild", Method::GET, p!("/jobs/{job_name}/builds/{build_name}"), PipelineRead, get(jobs::get_job_build)),
        route("RerunJobBuild", Method::POST, p!("/jobs/{job_name}/builds/{build_name}"), TeamRole(PipelineOperator), post(jobs::rerun_job_build)),
        route("ListJobBuilds", Method::GET, p!("/jobs/{job_name}/builds"), PipelineRead, get(builds::list_job_builds)),
        route("ClearTaskCache", Method::DELETE, p!("/jobs/{job_name}/tasks/{step_name}/cache"), TeamRole(PipelineOperator), delete(clear::clear_task_cache)),
        // Resources
        route("ListAllResources", Method::GET, "/api/v1/resources", Anyone, get(resources::list_all_resources)),
        route("ListResources", Method::GET, p!("/resources"), PipelineRead, get(resources::list_resources)),
        route("GetResource", Method::GET, p!("/resources/{resource_name}"), PipelineRead, get(resources::get_resource)),
        route("CheckResource", Method::POST, p!("/resources/{resource_name}/check"), TeamRole(PipelineOperator), post(checks::check_resource)),
        route("CheckResourceWebHook", Method::POST, p!("/resources/{resource_name}/check/webhook"), Anyone, post(checks::check_resource_webhook)),
        route("CheckPrototype", Method::POST, p!("/prototypes/{prototype_name}/check"), TeamRole(PipelineOperator), post(checks::check_prototype)),
        route("CheckResourceType", Method::POST, p!("/resource-types/{resource_type_name}/check"), TeamRole(PipelineOperator), post(checks::check_resource_type)),
        route("ListResourceVersions", Method::GET, p!("/resources/{resource_name}/versions"), PipelineRead, get(versions::list_versions)),
        route("GetResourceVersion", Method::GET, p!("/resources/{resource_name}/versions/{version_id}"), PipelineRead, get(versions::get_version)),
        route("EnableResourceVersion", Method::PUT, p!("/resources/{resource_name}/versions/{version_id}/enable"), TeamRole(PipelineOperator), put(versions::enable_version)),
        route("DisableResourceVersion", Method::PUT, p!("/resources/{resource_name}/versions/{version_id}/disable"), TeamRole(PipelineOperator), put(versions::disable_version)),
        route("PinResourceVersion", Method::PUT, p!("/resources/{resource_name}/versions/{version_id}/pin"), TeamRole(PipelineOperator), put(versions::pin_version)),
        route("UnpinResource", Method::PUT, p!("/resources/{resource_name}/unpin"), TeamRole(PipelineOperator), put(versions::unpin_resource)),
        route("SetPinCommentOnResource", Method::PUT, p!("/resources/{resource_name}/pin_comment"), TeamRole(PipelineOperator), put(versions::set_pin_comment)),
        route("ListBuildsWithVersionAsInput", Method::GET, p!("/resources/{resource_name}/versions/{version_id}/input_to"), PipelineRead, get(versions::input_to)),
        route("ListBuildsWithVersionAsOutput", Method::GET, p!("/resources/{resource_name}/versions/{version_id}/output_of"), PipelineRead, get(versions::output_of)),
        route("ListResourceTypes", Method::GET, p!("/resource-types"), PipelineRead, get(resources::list_resource_types)),
        route("ListSharedForResource", Method::GET, p!("/resources/{resource_name}/shared"), Admin, get(clear::list_shared_for_resource)),
        route("ListSharedForResourceType", Method::GET, p!("/resource-types/{resource_type_name}/shared"), Admin, get(clear::list_shared_for_resource_type)),
        route("ClearResourceVersions", Method::DELETE, p!("/resources/{resource_name}/versions"), Admin, delete(clear::clear_resource_versions)),
        route("ClearResourceTypeVersions", Method::DELETE, p!("/resource-types/{resource_type_name}/versions"), Admin, delete(clear::clear_resource_type_versions)),
        route("ClearResourceCache", Method::DELETE, p!("/resources/{resource_name}/cache"), TeamRole(PipelineOperator), delete(clear::clear_resource_cache)),
        route("GetDownstreamResourceCausality", Method::GET, p!("/resources/{resource_name}/versions/{version_id}/downstream"), PipelineRead, get(causality::downstream)),
        route("GetUpstreamResourceCausality", Method::GET, p!("/resources/{resource_name}/versions/{version_id}/upstream"), PipelineRead, get(causality::upstream)),
        // Builds
        route("ListBuilds", Method::GET, "/api/v1/builds", Anyone, get(builds::list_builds)),
        route("ListBuildArtifacts", Method::GET, "/api/v1/builds/{build_id}/artifacts", BuildLogsRead, get(artifacts::list_build_artifacts)),
        route("ListWorkers", Method::GET, "/api/v1/workers", AnyTeam, get(artifacts::list_workers)),
        route("RegisterWorker", Method::POST, "/api/v1/workers", Admin, post(unsupported::register_worker)),
        route("LandWorker", Method::PUT, "/api/v1/workers/{worker_name}/land", Admin, put(unsupported::land_worker)),
        route("RetireWorker", Method::PUT, "/api/v1/workers/{worker_name}/retire", Admin, put(unsupported::retire_worker)),
        route("PruneWorker", Method::PUT, "/api/v1/workers/{worker_name}/prune", Admin, put(unsupported::prune_worker)),
        route("HeartbeatWorker", Method::PUT, "/api/v1/workers/{worker_name}/heartbeat", Admin, put(unsupported::heartbeat_worker)),
        route("DeleteWorker", Method::DELETE, "/api/v1/workers/{worker_name}", Admin, delete(unsupported::delete_worker)),
        route("ListDestroyingContainers", Method::GET, "/api/v1/containers/destroying", Admin, get(unsupported::list_destroying)),
        route("ReportWorkerContainers", Method::PUT, "/api/v1/containers/report", Admin, put(unsupported::worker_report)),
        route("ListDestroyingVolumes", Method::GET, "/api/v1/volumes/destroying", Admin, get(unsupported::list_destroying)),
        route("ReportWorkerVolumes", Method::PUT, "/api/v1/volumes/report", Admin, put(unsupported::worker_report)),
        route("GetBuild", Method::GET, "/api/v1/builds/{build_id}", BuildRead, get(builds::get_build)),
        route("BuildResources", Method::GET, "/api/v1/builds/{build_id}/resources", BuildRead, get(builds::build_resources)),
        route("GetBuildPlan", Method::GET, "/api/v1/builds/{build_id}/plan", BuildLogsRead, get(builds::get_build_plan)),
        route("GetBuildPreparation", Method::GET, "/api/v1/builds/{build_id}/preparation", BuildLogsRead, get(builds::get_build_preparation)),
        route("BuildEvents", Method::GET, "/api/v1/builds/{build_id}/events", BuildLogsRead, get(build_events::stream_events)),
        route("AbortBuild", Method::PUT, "/api/v1/builds/{build_id}/abort", BuildRole(PipelineOperator), put(builds::abort_build)),
        route("SetBuildComment", Method::PUT, "/api/v1/builds/{build_id}/comment", BuildRole(PipelineOperator), put(builds::set_build_comment)),
    ]
}

/// The route table without handlers.
pub fn route_specs() -> Vec<RouteSpec> {
    api_routes().into_iter().map(|(spec, _)| spec).collect()
}
