//! Plans past their limits: steps nested ten times deeper than allowed,
//! attempts and across multiplying ten times past theirs. Configurations
//! and `fly execute` plans are 400s naming the limit, what only running
//! reveals errors the step, and the server stays up. A plan exactly at the
//! limit runs on a worker thread's small stack.

use reqwest::Method;
use serde_json::{Value, json};

use crate::document_limits::{DOCUMENT_DEPTH, refused, set_config, still_up};
use crate::on_both_backends;
use crate::support::{Backend, TestServer};

const STEP_DEPTH: usize = 64;
const ACROSS_COMBINATIONS: usize = 4096;
const PLAN_STEPS: usize = 50_000;

/// A step nested in `try` `levels` times around a task.
fn in_tries(levels: usize) -> String {
    let mut step = "task: t\nconfig: {platform: linux, run: {path: 'true'}}".to_string();
    for _ in 0..levels {
        let indented: Vec<String> = step.lines().map(|line| format!("  {line}")).collect();
        step = format!("try:\n{}", indented.join("\n"));
    }
    step
}

fn job_of(step: &str) -> String {
    let indented: Vec<String> = step.lines().map(|line| format!("    {line}")).collect();
    format!("jobs:\n- name: j\n  plan:\n  - {}\n", indented.join("\n").trim_start())
}

async fn steps_nested_past_the_step_depth_are_400s(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;

    // Modifiers multiply nesting: each level is 25 steps deep once every
    // hook, timeout, attempts and a 16-var across wrap it.
    let leaf = "{task: h, config: {platform: linux, run: {path: 'true'}}}";
    let vars: Vec<String> = (0..16).map(|i| format!("{{var: v{i}, values: [x]}}")).collect();
    let modifiers = format!(
        "timeout: 1m\nattempts: 1\nacross: [{}]\non_success: {leaf}\non_failure: {leaf}\non_abort: {leaf}\non_error: {leaf}\nensure: {leaf}",
        vars.join(", ")
    );
    let mut step = format!("task: t\nconfig: {{platform: linux, run: {{path: 'true'}}}}\n{modifiers}");
    for _ in 0..26 {
        let indented: Vec<String> = step.lines().map(|line| format!("  {line}")).collect();
        step = format!("try:\n{}\n{modifiers}", indented.join("\n"));
    }
    let errors = refused(set_config(&server, &token, "application/x-yaml", job_of(&step)).await).await;
    let expected = format!("jobs.j: steps nest more than {STEP_DEPTH} deep once their hooks and modifiers wrap them");
    assert_eq!(errors, [json!(expected).to_string()]);

    // Steps as deep as YAML nests them (and nothing else wraps) are fine:
    // parsing, validating and compiling them takes no more stack than that.
    let deepest = set_config(&server, &token, "application/x-yaml", job_of(&in_tries(DOCUMENT_DEPTH - 8))).await;
    assert_eq!(deepest.status(), 201, "{}", deepest.text().await.unwrap());

    // A plan sent whole (fly execute) is measured the same way: an across
    // runs its substeps one level below each var.
    let vars: Vec<Value> = (0..10 * STEP_DEPTH).map(|i| json!({ "name": format!("v{i}"), "values": [1] })).collect();
    let template = json!({ "id": "2", "task": { "name": "t" } }).to_string();
    let plan = json!({ "id": "1", "across": { "vars": vars, "substep_template": template } });
    let response =
        server.request(Method::POST, "/api/v1/teams/main/builds", Some(&token)).json(&plan).send().await.unwrap();
    assert_eq!(
        refused(response).await,
        [json!(format!("the plan's steps nest more than {STEP_DEPTH} deep")).to_string()]
    );
    still_up(&server).await;
    server.stop().await;
}

async fn attempts_multiplying_past_the_plan_steps_are_400s(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    // 10 attempts of 10 attempts of ...: 10^6 copies of the task.
    let mut step = "task: t\nconfig: {platform: linux, run: {path: 'true'}}\nattempts: 10".to_string();
    for _ in 0..5 {
        let indented: Vec<String> = step.lines().map(|line| format!("  {line}")).collect();
        step = format!("try:\n{}\nattempts: 10", indented.join("\n"));
    }
    let started = std::time::Instant::now();
    let errors = refused(set_config(&server, &token, "application/x-yaml", job_of(&step)).await).await;
    assert_eq!(
        errors,
        [json!(format!("jobs.j: it has more than {PLAN_STEPS} steps once its attempts are made")).to_string()]
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "refused quickly: {:?}", started.elapsed());
    still_up(&server).await;
    server.stop().await;
}

async fn across_past_its_combinations_is_a_400_or_an_errored_step(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let values = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    // 64 × 64 × 10: ten times the limit.
    let across = format!(
        "across: [{{var: a, values: [{}]}}, {{var: b, values: [{}]}}, {{var: c, values: [{}]}}]",
        values(64),
        values(64),
        values(10)
    );
    let step = format!("task: t\nconfig: {{platform: linux, run: {{path: 'true'}}}}\n{across}");
    let errors = refused(set_config(&server, &token, "application/x-yaml", job_of(&step)).await).await;
    let expected = format!(
        "across has {} combinations of values; at most {ACROSS_COMBINATIONS} are allowed",
        10 * ACROSS_COMBINATIONS
    );
    assert!(errors[0].contains(&expected), "{errors:?}");

    // Lists known only when the step runs are counted then.
    let list = |n: usize| Value::Array((0..n).map(|i| json!(i)).collect());
    let template =
        json!({ "id": "2", "task": { "name": "t", "config": { "platform": "linux", "run": { "path": "true" } } } });
    let plan = json!({ "id": "1", "across": {
        "vars": [{ "name": "a", "values": list(64) }, { "name": "b", "values": list(64) }, { "name": "c", "values": list(10) }],
        "substep_template": template.to_string(),
    } });
    let id = server.execute(&token, &plan).await;
    let watched = server.watch(&token, id).await;
    assert_eq!(watched.status(), "errored");
    assert!(watched.output().contains(&expected), "{}", watched.output());
    still_up(&server).await;
    server.stop().await;
}

/// A plan whose across substep only becomes deep once its var is filled in.
async fn steps_that_nest_past_the_limit_only_when_run_error_the_step(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let mut deep =
        json!({ "id": "leaf", "task": { "name": "t", "config": { "platform": "linux", "run": { "path": "true" } } } });
    for i in 0..50 {
        deep = json!({ "id": format!("d{i}"), "do": [deep] });
    }
    let mut vars = vec![json!({ "name": "steps", "values": [[deep]] })];
    vars.extend((0..15).map(|i| json!({ "name": format!("v{i}"), "values": [i] })));
    let template = json!({ "id": "2", "do": "((.:steps))" }).to_string();
    let plan = json!({ "id": "1", "across": { "vars": vars, "substep_template": template } });
    let id = server.execute(&token, &plan).await;
    let watched = server.watch(&token, id).await;
    assert_eq!(watched.status(), "errored");
    assert!(watched.output().contains(&format!("steps nest more than {STEP_DEPTH} deep")), "{}", watched.output());
    still_up(&server).await;
    server.stop().await;
}

/// The deepest plan there may be runs to the end on a worker thread: one
/// across level per var, then alternating in_parallel, do, try and ensure.
async fn a_plan_exactly_at_the_step_depth_runs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token().await;
    let leaf =
        json!({ "id": "leaf", "task": { "name": "t", "config": { "platform": "linux", "run": { "path": "true" } } } });
    let mut substep = leaf.clone();
    // 1 (across) + 16 (vars) + 46 + 1 (the task) = 64.
    for i in 0..46 {
        let id = format!("s{i}");
        substep = match i % 4 {
            0 => json!({ "id": id, "in_parallel": { "steps": [substep] } }),
            1 => json!({ "id": id, "do": [substep] }),
            2 => json!({ "id": id, "try": { "step": substep } }),
            _ => json!({ "id": id, "ensure": { "step": substep, "ensure": leaf } }),
        };
    }
    let vars: Vec<Value> =
        (0..16).map(|i| json!({ "name": format!("v{i}"), "values": [i], "max_in_flight": "all" })).collect();
    let plan = json!({ "id": "1", "across": { "vars": vars, "substep_template": substep.to_string() } });
    let id = server.execute(&token, &plan).await;
    let watched = server.watch(&token, id).await;
    assert_eq!(watched.status(), "succeeded", "{}", watched.output());
    // `try` would hide an errored step: there must be none.
    assert!(watched.of_type("error").is_empty(), "{}", watched.output());
    assert_eq!(watched.of_type("finish-task").len(), 1 + 46 / 4, "every task ran");
    still_up(&server).await;
    server.stop().await;
}

on_both_backends!(
    steps_nested_past_the_step_depth_are_400s,
    attempts_multiplying_past_the_plan_steps_are_400s,
    across_past_its_combinations_is_a_400_or_an_errored_step,
    steps_that_nest_past_the_limit_only_when_run_error_the_step,
    a_plan_exactly_at_the_step_depth_runs,
);
