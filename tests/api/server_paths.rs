//! What users see of an error names things in their terms (the step's
//! program, an upload's entry), never where atc keeps them on the server.

use std::os::unix::fs::PermissionsExt;

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

async fn a_resource_script_that_cannot_start_is_named_as_the_step_names_it(backend: Backend) {
    let types = tempfile::tempdir().unwrap();
    std::fs::create_dir(types.path().join("broken")).unwrap();
    for name in ["check", "in", "out"] {
        let path = types.path().join("broken").join(name);
        std::fs::write(&path, "#!/no/such/interpreter\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let server = TestServer::start_with_resource_types(backend, types.path()).await;
    let token = server.admin_token().await;
    let pipeline = "resources:\n- {name: r, type: broken, check_every: never}\njobs:\n- {name: j, plan: [{get: r}]}\n";
    server.set_and_unpause(&token, "p", pipeline).await;
    let response = server
        .request(Method::POST, "/api/v1/teams/main/pipelines/p/resources/r/check", Some(&token))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let watched = server.watch(&token, id).await;
    assert_eq!(watched.status(), "errored");
    let output = watched.output();
    assert!(output.contains("cannot run /opt/resource/check: No such file or directory"), "{output}");
    assert!(!output.contains(&types.path().display().to_string()), "no server path: {output}");
    server.stop().await;
}

on_both_backends!(a_resource_script_that_cannot_start_is_named_as_the_step_names_it);
