//! What the fuzz targets in `fuzz/` run, and what `tests/fuzz_corpora.rs`
//! replays their corpora through: one function per target, handing
//! untrusted bytes to exactly the functions a handler or a step hands them
//! to. Sharing these keeps the fuzzers and the replay from drifting apart.
//! Not an API.
//!
//! Each runs on a thread with the stack of a tokio worker, where handlers
//! and steps run, so an input that would overflow their stack fails here too.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use serde_json::{Map, Value};

use crate::api::{
    body, build_events, builds, checks, instance_vars, login_target, names, pagination, pipeline_config, sky,
};
use crate::config::{self, TaskConfig, vars};
use crate::engine::exec::parallel;
use crate::engine::plan::{Plan, Step};
use crate::engine::state::Scope;

/// A fuzz target: its name (that of its file in `fuzz/fuzz_targets/` and of
/// its corpus in `fuzz/corpus/`) and what it runs.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

pub const TARGETS: [Target; 10] = [
    Target { name: "pipeline_config", run: pipeline_config },
    Target { name: "pipeline_vars", run: pipeline_vars },
    Target { name: "var_interpolation", run: var_interpolation },
    Target { name: "instance_vars", run: instance_vars },
    Target { name: "query_string", run: query_string },
    Target { name: "headers", run: headers },
    Target { name: "api_body", run: api_body },
    Target { name: "build_plan", run: build_plan },
    Target { name: "resource_output", run: resource_output },
    Target { name: "artifact_file", run: artifact_file },
];

/// tokio's default for its worker threads, which atc does not change.
const WORKER_STACK_BYTES: usize = 2 * 1024 * 1024;

/// Runs `work` on a thread with a worker's stack; its panic, if any, goes on.
fn on_worker_stack(work: impl FnOnce() + Send) {
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .stack_size(WORKER_STACK_BYTES)
            .spawn_scoped(scope, work)
            .expect("a thread to run the input on");
        if let Err(panic) = worker.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// Inputs of two parts are split at their first NUL byte (first part empty
/// without one): a NUL is the one byte the text parts never need.
fn two_parts(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&byte| byte == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (&[], data),
    }
}

/// Vars as a var file (`-l`, `var_files:`) gives them: a YAML map.
fn var_file(bytes: &[u8]) -> Map<String, Value> {
    match config::yaml_value(bytes) {
        Ok(Value::Object(vars)) => vars,
        _ => Map::new(),
    }
}

/// `PUT .../config`: the body, parsed, validated and split for storage.
pub fn pipeline_config(data: &[u8]) {
    on_worker_stack(|| {
        let _ = pipeline_config::checked_config(data);
    });
}

/// `VARS \0 CONFIG`: a configuration with vars interpolated into it, as
/// `atc validate-pipeline -l VARS -c CONFIG` and the `set_pipeline` step
/// (`var_files: [VARS]`, the vars also as local vars) read it.
pub fn pipeline_vars(data: &[u8]) {
    on_worker_stack(|| {
        let (vars, config) = two_parts(data);
        let vars = var_file(vars);
        let _ = crate::cli::validate_pipeline::check_document(std::path::Path::new("pipeline.yml"), config, &vars);
        let Ok(document) = config::yaml_value(config) else { return };
        let scope = Scope::root();
        for (name, value) in &vars {
            scope.set_local_var(name, value.clone());
        }
        let _ = crate::engine::exec::set_pipeline::configure("pipeline.yml", document, &vars, &scope);
    });
}

/// `VARS \0 DOCUMENT`: every `((var))` of a document found and parsed, and
/// the document interpolated with the vars, whether undefined ones fail it
/// (steps) or stay (configurations).
pub fn var_interpolation(data: &[u8]) {
    on_worker_stack(|| {
        let (vars, document) = two_parts(data);
        let vars = var_file(vars);
        let Ok(document) = config::yaml_value(document) else { return };
        for name in vars::references(&document) {
            if let Ok(reference) = vars::VarRef::parse(&name) {
                let _ = reference.to_string();
            }
        }
        let lookup = |reference: &vars::VarRef| -> Option<Value> { vars.get(&reference.path).cloned() };
        let _ = vars::interpolate(&document, &lookup, vars::Undefined::Fail);
        let _ = vars::interpolate(&document, &lookup, vars::Undefined::Keep);
    });
}

/// A pipeline's instance vars in a URL's query string.
pub fn instance_vars(data: &[u8]) {
    on_worker_stack(|| {
        let Ok(query) = std::str::from_utf8(data) else { return };
        let _ = instance_vars::from_query(Some(query));
    });
}

/// The other query strings handlers read: pagination, and each value as a
/// date (`since`), a redirect (`redirect_uri`) and a name (as paths give
/// them).
pub fn query_string(data: &[u8]) {
    on_worker_stack(|| {
        let Ok(query) = std::str::from_utf8(data) else { return };
        // Pagination reads the request's URI: only a query a URI can hold gets there.
        if let Ok(uri) = Uri::try_from(format!("/api/v1/builds?{query}")) {
            let _ = pagination::page_query(&uri);
        }
        for (_, value) in instance_vars::form_pairs(query) {
            let _ = crate::clock::parse_date(&value);
            let _ = login_target::LoginTarget::parse(&value);
            let _ = login_target::parse_port(&value);
            let _ = names::validate_name("pipeline", &value);
        }
    });
}

/// One header value as every header a handler reads: `Last-Event-ID`,
/// `X-Concourse-Config-Version`, `Content-Type`, `Authorization` (bearer
/// and basic) and `Cookie`.
pub fn headers(data: &[u8]) {
    on_worker_stack(|| {
        // Only what HTTP can carry as a header value gets to a handler.
        let Ok(value) = HeaderValue::from_bytes(data) else { return };
        let mut headers = HeaderMap::new();
        let names = [
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static(pipeline_config::CONFIG_VERSION_HEADER),
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::COOKIE,
        ];
        for name in names {
            headers.insert(name, value.clone());
        }
        let _ = build_events::first_event(&headers);
        let _ = pipeline_config::expected_config_version(&headers);
        let _ = pipeline_config::require_config_media_type(&headers);
        let _ = crate::api::access::presented_token(&headers);
        let _ = sky::client_credentials(&headers, &[]);
    });
}

/// `SELECTOR BODY`: a request body of the type the first byte picks, parsed
/// as its handler parses it.
pub fn api_body(data: &[u8]) {
    on_worker_stack(|| {
        let Some((selector, body)) = data.split_first() else { return };
        match selector % 9 {
            0 => drop(body::parse_json::<builds::CommentBody>(body)),
            1 => drop(body::parse_json::<crate::api::versions::PinCommentBody>(body)),
            2 => drop(body::parse_json::<crate::api::wall::WallBody>(body)),
            3 => drop(body::parse_json::<crate::api::teams::SetTeamBody>(body)),
            4 => drop(body::parse_json::<crate::api::teams::RenameBody>(body)),
            5 => drop(body::parse_json::<crate::api::pipelines::RenameBody>(body)),
            6 => drop(body::parse_json::<Vec<String>>(body)),
            7 => drop(checks::check_body(body)),
            // Logins post forms.
            _ => drop(instance_vars::form_pairs(&String::from_utf8_lossy(body))),
        }
    });
}

/// A `fly execute` plan: parsed, checked and made ready to store; then, as
/// running it begins, an `across`'s substeps (of the values it lists).
pub fn build_plan(data: &[u8]) {
    on_worker_stack(|| {
        let Ok(plan) = body::parse_json::<Plan>(data) else { return };
        let Ok(stored) = builds::one_off_plan(plan) else { return };
        // As the database stores it.
        let _ = serde_json::to_string(&stored.private);
        let plan = stored.private;
        if let Step::Across(across) = &plan.step {
            let value_lists: Option<Vec<Vec<Value>>> =
                across.vars.iter().map(|var| var.values.as_array().cloned()).collect();
            if let Some(value_lists) = value_lists {
                let _ = parallel::substeps(&plan.id, across, &value_lists, &Scope::root());
            }
        }
    });
}

/// `SELECTOR STDOUT`: what a resource's `check` (even selector) or `in`
/// and `out` (odd) printed.
pub fn resource_output(data: &[u8]) {
    on_worker_stack(|| {
        let Some((selector, stdout)) = data.split_first() else { return };
        if selector % 2 == 0 {
            let _ = crate::resource::parse_check_response("/opt/resource/check", stdout);
        } else {
            let _ = crate::resource::version_result("/opt/resource/in get", 0, stdout.to_vec());
        }
    });
}

/// `SELECTOR FILE`: a file of an artifact a step reads, as a task config
/// (`file:`) or a `load_var` of the format the first byte picks.
pub fn artifact_file(data: &[u8]) {
    on_worker_stack(|| {
        let Some((selector, file)) = data.split_first() else { return };
        match selector % 5 {
            0 => {
                let Ok(raw) = config::yaml_value(file) else { return };
                if let Ok(task) = TaskConfig::from_value(raw) {
                    let _ = task.problems();
                    let _ = TaskConfig::environment(task.params.as_ref().unwrap_or(&Map::new()));
                }
            }
            format => {
                let format = ["json", "yaml", "trim", "raw"][usize::from(format) - 1];
                let _ = crate::engine::exec::load_var::decode(format, file);
            }
        }
    });
}
