//! The pod of a step: its labels, the `fetch-inputs` init container that
//! lays the inputs out on the artifact claim, and the main container
//! running [`WRAPPER`] in the step's image.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::scripts::{IMAGE_ARTIFACT, IMAGE_ROOT, IO, ROOT, SHARED, STORE, WRAPPER, quote};
use super::security;
use crate::runtime::{Artifact, OutputMount, Sidecar, Stdout, StepMetadata, StepSpec};

/// Every object the runtime makes carries this label, and its watch selects on it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "atc");
/// The label that marks a step's pod (its value: the step type).
pub const STEP_TYPE_LABEL: &str = "concourse.ci/type";
/// What the runtime needs to know about a step after it started (and after
/// an atc restart): its metadata, outputs and stdout mode.
const STEP_ANNOTATION: &str = "concourse.ci/step-spec";
pub const MAIN: &str = "main";
pub const FETCH_INPUTS: &str = "fetch-inputs";
const STORE_VOLUME: &str = "store";
const CACHE_VOLUME: &str = "caches";
const SHARED_VOLUME: &str = "shared";
/// Where a step whose image is an artifact builds its root.
const IMAGE_VOLUME: &str = "image-root";

/// What a pod's annotation keeps of its [`StepSpec`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedStep {
    pub metadata: StepMetadata,
    pub outputs: Vec<(String, String)>,
    pub capture_stdout: bool,
    /// The process waits for stdin, which [`super::scripts::START`] gives.
    #[serde(default)]
    pub stdin: bool,
}

impl SavedStep {
    pub fn of(pod: &Pod) -> Option<SavedStep> {
        let text = pod.metadata.annotations.as_ref()?.get(STEP_ANNOTATION)?;
        serde_json::from_str(text).ok()
    }

    pub fn outputs(&self) -> Vec<OutputMount> {
        self.outputs.iter().map(|(name, path)| OutputMount { name: name.clone(), path: path.clone() }).collect()
    }
}

/// Where a step's files are on the artifact claim.
pub fn step_dir(handle: &str) -> String {
    format!("steps/{handle}")
}

/// Where the cache with this key is under the helper's and the init
/// container's `/store`: `caches/` of the artifact claim, or the cache claim
/// mounted there.
pub fn cache_dir(key: &str) -> String {
    format!("caches/{}", cache_name(key))
}

/// The cache's directory name: a digest of its key.
fn cache_name(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// What varies between the pods of one runtime.
pub struct PodSettings<'a> {
    /// The claim of the step's files and outputs (at `/store`).
    pub claim: &'a str,
    /// When `claim` is a build's own, the shared artifact claim (at
    /// `/shared`): uploads and task caches are there.
    pub shared_claim: Option<&'a str>,
    /// Where the pod must run (next to its build's workspace pod).
    pub affinity: Option<Value>,
    /// A claim of its own for task caches (`--kubernetes-cache-claim`).
    pub cache_claim: Option<&'a str>,
    pub helper_image: &'a str,
    pub service_account: Option<&'a str>,
    pub image_pull_secrets: &'a [String],
    pub node_selector: &'a BTreeMap<String, String>,
    pub tolerations: &'a [Value],
}

/// The image and leading arguments that run the step's process.
#[derive(Default)]
pub struct Program {
    pub image: String,
    pub command: Vec<String>,
    /// The image as the step's log shows it.
    pub describe: String,
    /// The artifact whose `rootfs/` the command enters
    /// ([`super::scripts::ENTER_IMAGE`]): mounted read-only, with an
    /// emptyDir to copy it to, in a privileged container.
    pub image_artifact: Option<Artifact>,
    /// The uid the step's container runs as (none: the image's user).
    pub run_as: Option<i64>,
}

pub fn step_pod(spec: &StepSpec, program: Program, settings: &PodSettings) -> Result<Pod, serde_json::Error> {
    let handle = spec.handle.as_str();
    let saved = SavedStep {
        metadata: spec.metadata.clone(),
        outputs: spec.outputs.iter().map(|o| (o.name.clone(), o.path.clone())).collect(),
        capture_stdout: spec.process.stdout == Stdout::Capture,
        stdin: spec.process.stdin.is_some(),
    };
    let dir = step_dir(handle);
    let root_mount = json!({"name": STORE_VOLUME, "mountPath": ROOT, "subPath": format!("{dir}/root")});
    let mut mounts =
        vec![root_mount.clone(), json!({"name": STORE_VOLUME, "mountPath": IO, "subPath": format!("{dir}/io")})];
    for cache in &spec.caches {
        let (volume, sub_path) = match settings.cache_claim {
            Some(_) => (CACHE_VOLUME, cache_name(&cache.key)),
            None => (shared_volume(settings), cache_dir(&cache.key)),
        };
        mounts.push(json!({"name": volume, "mountPath": format!("{ROOT}/{}", cache.path), "subPath": sub_path}));
    }
    if let Some(artifact) = &program.image_artifact {
        let artifact_dir = format!("artifacts/{}", artifact.id);
        mounts.push(
            json!({"name": artifact_volume(settings, &artifact.id), "mountPath": IMAGE_ARTIFACT, "subPath": artifact_dir, "readOnly": true}),
        );
        mounts.push(json!({"name": IMAGE_VOLUME, "mountPath": IMAGE_ROOT}));
    }
    let mut env: Vec<Value> =
        spec.process.env.iter().map(|(name, value)| json!({"name": name, "value": literal(value)})).collect();
    if let Some(trace) = &spec.trace {
        env.push(json!({"name": "TRACEPARENT", "value": trace.traceparent}));
        if let Some(state) = &trace.tracestate {
            env.push(json!({"name": "TRACESTATE", "value": state}));
        }
    }
    let trace_env: Vec<&Value> =
        env.iter().filter(|e| e["name"] == "TRACEPARENT" || e["name"] == "TRACESTATE").collect();
    let start = if spec.process.stdin.is_some() { "wait" } else { "now" };
    let mut command = vec!["sh".to_string(), "-c".to_string(), WRAPPER.to_string(), "atc-step".into(), start.into()];
    command.extend(program.command);
    command.extend(spec.process.args.iter().cloned());
    let command: Vec<String> = command.iter().map(|arg| literal(arg)).collect();
    let working_dir =
        if spec.process.dir.is_empty() { ROOT.to_string() } else { format!("{ROOT}/{}", spec.process.dir) };
    let mut main = json!({
        "name": MAIN,
        "image": program.image,
        "command": command,
        "workingDir": working_dir,
        "env": env,
        "volumeMounts": mounts,
    });
    let resources = resources(spec);
    if !resources.is_empty() {
        main["resources"] = json!({"limits": resources, "requests": resources});
    }
    let mut volumes = volumes(settings);
    if program.image_artifact.is_some() {
        volumes.push(json!({"name": IMAGE_VOLUME, "emptyDir": {}}));
    }
    // Entering an artifact's root mounts /proc, /dev and the step's root in it.
    main["securityContext"] = if spec.privileged || program.image_artifact.is_some() {
        security::privileged()
    } else {
        security::restricted(program.run_as)
    };
    let fetch_inputs = json!({
        "name": FETCH_INPUTS,
        "image": settings.helper_image,
        "command": ["sh", "-c", literal(&fetch_inputs_script(spec, program.run_as, settings))],
        "env": trace_env,
        "volumeMounts": store_mounts(settings),
        "securityContext": security::restricted(None),
    });
    let mut containers = vec![main];
    containers.extend(spec.sidecars.iter().map(|sidecar| sidecar_container(sidecar, &root_mount, &trace_env)));
    let mut pod_spec = json!({
        "restartPolicy": "Never",
        "initContainers": [fetch_inputs],
        "containers": containers,
        "volumes": volumes,
        "nodeSelector": settings.node_selector,
        "tolerations": settings.tolerations,
        "imagePullSecrets": settings.image_pull_secrets.iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
    });
    if let Some(account) = settings.service_account {
        pod_spec["serviceAccountName"] = json!(account);
    }
    if let Some(affinity) = &settings.affinity {
        pod_spec["affinity"] = affinity.clone();
    }
    serde_json::from_value(json!({
        "metadata": {
            "name": handle,
            "labels": labels(&spec.metadata),
            "annotations": {STEP_ANNOTATION: serde_json::to_string(&saved)?},
        },
        "spec": pod_spec,
    }))
}

/// A task's sidecar as a container of the step's pod: it shares the pod's
/// network, so the step reaches it on localhost, and sees the step's
/// working root where the step does.
fn sidecar_container(sidecar: &Sidecar, root_mount: &Value, trace_env: &[&Value]) -> Value {
    let mut env: Vec<Value> =
        sidecar.env.iter().map(|(name, value)| json!({"name": name, "value": literal(value)})).collect();
    env.extend(trace_env.iter().map(|e| (*e).clone()));
    let ports: Vec<Value> = sidecar
        .ports
        .iter()
        .map(|port| {
            let mut entry = json!({"containerPort": port.port, "protocol": port.protocol});
            if let Some(name) = &port.name {
                entry["name"] = json!(name);
            }
            entry
        })
        .collect();
    let mut container = json!({
        "name": sidecar.name,
        "image": sidecar.image,
        "env": env,
        "ports": ports,
        "volumeMounts": [root_mount],
        "securityContext": security::restricted(None),
    });
    let literals = |values: &[String]| values.iter().map(|value| literal(value)).collect::<Vec<_>>();
    if !sidecar.command.is_empty() {
        container["command"] = json!(literals(&sidecar.command));
    }
    if !sidecar.args.is_empty() {
        container["args"] = json!(literals(&sidecar.args));
    }
    if !sidecar.working_dir.is_empty() {
        container["workingDir"] = json!(sidecar.working_dir);
    }
    if !sidecar.limits.is_empty() || !sidecar.requests.is_empty() {
        container["resources"] = json!({"limits": sidecar.limits, "requests": sidecar.requests});
    }
    container
}

/// `value` as Kubernetes passes it on: `$(VAR)` in a command, its
/// arguments and env values is expanded and `$$` stands for `$`, so every
/// `$` is doubled.
fn literal(value: &str) -> String {
    value.replace('$', "$$")
}

/// Copies each input into the step's root (writes never reach the
/// artifact), and makes the directories mounts and outputs need.
fn fetch_inputs_script(spec: &StepSpec, run_as: Option<i64>, settings: &PodSettings) -> String {
    let root = format!("{STORE}/{}/root", step_dir(spec.handle.as_str()));
    let io = format!("{STORE}/{}/io", step_dir(spec.handle.as_str()));
    let mut script = format!("set -e\nmkdir -p {} {}\n", quote(&root), quote(&io));
    for input in &spec.inputs {
        let into = quote(&format!("{root}/{}", input.path));
        let base = if on_shared_claim(settings, &input.artifact.id) { SHARED } else { STORE };
        let from = quote(&format!("{base}/artifacts/{}/.", input.artifact.id));
        script.push_str(&format!("mkdir -p {into}\ncp -a {from} {into}\n"));
    }
    let mut caches = Vec::new();
    for cache in &spec.caches {
        let cache_dir = quote(&format!("{}/{}", shared_root(settings), cache_dir(&cache.key)));
        script.push_str(&format!("mkdir -p {cache_dir} {}\n", quote(&format!("{root}/{}", cache.path))));
        caches.push(cache_dir);
    }
    for path in spec.outputs.iter().map(|output| &output.path).chain([&spec.process.dir]) {
        script.push_str(&format!("mkdir -p {}\n", quote(&format!("{root}/{path}"))));
    }
    script.push_str(&security::hand_over(run_as, &[quote(&root), quote(&io)], &caches));
    script
}

/// Whether an artifact is on its build's own claim: those are named
/// `ws{BUILD}_...` (see [`super::workspace`]).
pub fn is_build_artifact(id: &str) -> bool {
    super::workspace::build_of_artifact(id).is_some()
}

/// Whether an artifact a step of a build reads is on the shared claim
/// (an upload) rather than the build's own.
fn on_shared_claim(settings: &PodSettings, id: &str) -> bool {
    settings.shared_claim.is_some() && !is_build_artifact(id)
}

/// The volume an artifact is on in a step pod.
fn artifact_volume(settings: &PodSettings, id: &str) -> &'static str {
    if on_shared_claim(settings, id) { SHARED_VOLUME } else { STORE_VOLUME }
}

/// Where the shared claim (caches, uploads) is in `fetch-inputs` and the
/// helper pods: `/store` itself, or `/shared` beside a build's claim.
fn shared_root(settings: &PodSettings) -> &'static str {
    if settings.shared_claim.is_some() { SHARED } else { STORE }
}

fn shared_volume(settings: &PodSettings) -> &'static str {
    if settings.shared_claim.is_some() { SHARED_VOLUME } else { STORE_VOLUME }
}

/// The claim at `/store`, the shared claim beside it when that is a
/// build's, and the cache claim, if any, at `caches` of the shared one.
fn store_mounts(settings: &PodSettings) -> Vec<Value> {
    let mut mounts = vec![json!({"name": STORE_VOLUME, "mountPath": STORE})];
    if settings.shared_claim.is_some() {
        mounts.push(json!({"name": SHARED_VOLUME, "mountPath": SHARED}));
    }
    if settings.cache_claim.is_some() {
        mounts.push(json!({"name": CACHE_VOLUME, "mountPath": format!("{}/caches", shared_root(settings))}));
    }
    mounts
}

fn volumes(settings: &PodSettings) -> Vec<Value> {
    let claim = |name: &str, claim: &str| json!({"name": name, "persistentVolumeClaim": {"claimName": claim}});
    let mut volumes = vec![claim(STORE_VOLUME, settings.claim)];
    if let Some(shared) = settings.shared_claim {
        volumes.push(claim(SHARED_VOLUME, shared));
    }
    if let Some(cache) = settings.cache_claim {
        volumes.push(claim(CACHE_VOLUME, cache));
    }
    volumes
}

/// `container_limits` as Kubernetes resources: CPU shares (1024 a core) as
/// millicores, memory in bytes.
fn resources(spec: &StepSpec) -> BTreeMap<&'static str, String> {
    let mut resources = BTreeMap::new();
    if let Some(shares) = spec.limits.cpu {
        resources.insert("cpu", format!("{}m", (shares * 1000 / 1024).max(1)));
    }
    if let Some(bytes) = spec.limits.memory {
        resources.insert("memory", bytes.to_string());
    }
    resources
}

fn labels(metadata: &StepMetadata) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())]);
    let mut add = |key: &str, value: Option<String>| {
        if let Some(value) = value.map(|v| label_value(&v)).filter(|v| !v.is_empty()) {
            labels.insert(format!("concourse.ci/{key}"), value);
        }
    };
    add("team", Some(metadata.team.clone()));
    add("pipeline", metadata.pipeline.clone());
    add("job", metadata.job.clone());
    add("build-id", metadata.build_id.map(|id| id.to_string()));
    add("step", Some(metadata.step_name.clone()));
    let step_type = Some(label_value(&metadata.step_type)).filter(|t| !t.is_empty());
    labels.insert(STEP_TYPE_LABEL.to_string(), step_type.unwrap_or_else(|| "step".into()));
    labels
}

/// A label value from any name: at most 63 of `[A-Za-z0-9._-]`, starting
/// and ending alphanumeric (the full name is in the step annotation).
pub fn label_value(name: &str) -> String {
    let cleaned: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).take(63).collect();
    cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

/// A long-lived pod that mounts a whole claim, `labels` (besides
/// [`MANAGED_BY`]) on it: artifacts
/// are imported, exported, read, captured and released by exec'ing into it.
pub fn helper_pod(
    name: &str,
    labels: BTreeMap<&str, String>,
    settings: &PodSettings,
) -> Result<Pod, serde_json::Error> {
    let mut spec = json!({
        "restartPolicy": "Always",
        "containers": [{
            "name": MAIN,
            "image": settings.helper_image,
            "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"],
            "volumeMounts": store_mounts(settings),
            "securityContext": security::restricted(None),
        }],
        "volumes": volumes(settings),
        "nodeSelector": settings.node_selector,
        "tolerations": settings.tolerations,
        "imagePullSecrets": settings.image_pull_secrets.iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
    });
    if let Some(account) = settings.service_account {
        spec["serviceAccountName"] = json!(account);
    }
    let mut all_labels = BTreeMap::from([(MANAGED_BY.0, MANAGED_BY.1.to_string())]);
    all_labels.extend(labels);
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": all_labels},
        "spec": spec,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{
        Artifact, CacheMount, InputMount, Limits, ProcessSpec, Stdout, StepHandle, StepMetadata, TraceContext,
    };

    fn spec() -> StepSpec {
        StepSpec {
            handle: StepHandle::parse("build-1-task-2").unwrap(),
            metadata: StepMetadata {
                team: "main".into(),
                pipeline: Some("my pipeline".into()),
                build_id: Some(1),
                step_type: "task".into(),
                step_name: "unit".into(),
                ..Default::default()
            },
            image: None,
            privileged: false,
            limits: Limits { cpu: Some(512), memory: Some(1 << 20) },
            tags: Vec::new(),
            inputs: vec![InputMount { artifact: Artifact { id: "upload_ab".into() }, path: "repo".into() }],
            outputs: Vec::new(),
            caches: vec![CacheMount { key: "k".into(), path: "cache".into() }],
            process: ProcessSpec {
                path: "sh".into(),
                args: vec!["-c".into(), "echo $HOME $(whoami)".into()],
                dir: "repo".into(),
                user: None,
                env: vec![("PRICE".into(), "$5".into())],
                stdin: None,
                stdout: Stdout::Stream,
            },
            sidecars: Vec::new(),
            trace: Some(TraceContext { traceparent: "00-ab-cd-01".into(), tracestate: None }),
        }
    }

    #[test]
    fn a_step_pod_is_labelled_traced_and_mounted_on_the_claim() {
        let secrets = vec!["pull".to_string()];
        let settings = PodSettings { image_pull_secrets: &secrets, ..plain_settings() };
        let program = Program { image: "busybox".into(), command: vec!["sh".into()], ..Default::default() };
        let pod = serde_json::to_value(step_pod(&spec(), program, &settings).unwrap()).unwrap();
        let labels = &pod["metadata"]["labels"];
        assert_eq!(labels["concourse.ci/pipeline"], "my-pipeline");
        assert_eq!(labels["concourse.ci/build-id"], "1");
        assert_eq!(labels[STEP_TYPE_LABEL], "task");
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        let main = &pod["spec"]["containers"][0];
        let init = &pod["spec"]["initContainers"][0];
        assert_eq!(init["name"], FETCH_INPUTS);
        // Kubernetes would expand $(whoami) and turn $$ into $: every $ is doubled.
        assert_eq!(main["command"].as_array().unwrap().last().unwrap(), "echo $$HOME $$(whoami)");
        assert!(main["env"].as_array().unwrap().contains(&json!({"name": "PRICE", "value": "$$5"})));
        for container in [main, init] {
            assert!(
                container["env"].as_array().unwrap().contains(&json!({"name": "TRACEPARENT", "value": "00-ab-cd-01"}))
            );
        }
        assert_eq!(main["workingDir"], format!("{ROOT}/repo"));
        let mounts = main["volumeMounts"].as_array().unwrap();
        assert_eq!(mounts[0]["subPath"], "steps/build-1-task-2/root");
        assert_eq!(
            mounts[2],
            json!({"name": "store", "mountPath": format!("{ROOT}/cache"), "subPath": cache_dir("k")})
        );
        assert_eq!(main["resources"]["limits"], json!({"cpu": "500m", "memory": "1048576"}));
        assert!(init["command"][2].as_str().unwrap().contains("cp -a '/store/artifacts/upload_ab/.'"));
        assert_eq!(pod["spec"]["imagePullSecrets"], json!([{"name": "pull"}]));
    }

    static NO_NODE_SELECTOR: BTreeMap<String, String> = BTreeMap::new();

    /// Settings with nothing extra; a test sets the fields it is about.
    fn plain_settings() -> PodSettings<'static> {
        PodSettings {
            claim: "claim",
            shared_claim: None,
            affinity: None,
            cache_claim: None,
            helper_image: "helper",
            service_account: None,
            image_pull_secrets: &[],
            node_selector: &NO_NODE_SELECTOR,
            tolerations: &[],
        }
    }

    /// `spec`'s pod with plain settings, as JSON.
    fn rendered(spec: &StepSpec, program: Program) -> Value {
        serde_json::to_value(step_pod(spec, program, &plain_settings()).unwrap()).unwrap()
    }

    #[test]
    fn sidecars_are_containers_beside_main_with_the_trace_and_the_root() {
        let mut spec = spec();
        spec.sidecars = vec![crate::runtime::Sidecar {
            name: "web".into(),
            image: "nginx:1".into(),
            args: vec!["--port=$PORT".into()],
            env: vec![("GREETING".into(), "hi".into())],
            ports: vec![crate::runtime::SidecarPort { port: 8080, name: Some("http".into()), protocol: "TCP".into() }],
            limits: BTreeMap::from([("memory".into(), "64Mi".into())]),
            working_dir: "/srv".into(),
            ..Default::default()
        }];
        let pod = rendered(&spec, Program { image: "busybox".into(), ..Default::default() });
        let containers = pod["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        let web = &containers[1];
        assert_eq!(web["name"], "web");
        assert_eq!(web["image"], "nginx:1");
        // No command: the image's entrypoint runs, with the args.
        assert!(web.get("command").is_none());
        assert_eq!(web["args"], json!(["--port=$$PORT"]));
        assert_eq!(web["workingDir"], "/srv");
        assert_eq!(web["ports"], json!([{"containerPort": 8080, "protocol": "TCP", "name": "http"}]));
        assert_eq!(web["resources"], json!({"limits": {"memory": "64Mi"}, "requests": {}}));
        let env = web["env"].as_array().unwrap();
        assert!(env.contains(&json!({"name": "GREETING", "value": "hi"})));
        assert!(env.contains(&json!({"name": "TRACEPARENT", "value": "00-ab-cd-01"})));
        assert_eq!(web["volumeMounts"], json!([containers[0]["volumeMounts"][0]]));
        assert_eq!(web["securityContext"], security::restricted(None));
    }

    #[test]
    fn an_artifact_image_is_mounted_read_only_beside_an_empty_root_in_a_privileged_container() {
        let program = Program {
            image: "helper".into(),
            image_artifact: Some(Artifact { id: "task_1_img".into() }),
            ..Default::default()
        };
        let pod = rendered(&spec(), program);
        let main = &pod["spec"]["containers"][0];
        let mounts = main["volumeMounts"].as_array().unwrap();
        assert!(mounts.contains(&json!({
            "name": STORE_VOLUME, "mountPath": IMAGE_ARTIFACT, "subPath": "artifacts/task_1_img", "readOnly": true
        })));
        assert!(mounts.contains(&json!({"name": IMAGE_VOLUME, "mountPath": IMAGE_ROOT})));
        assert!(pod["spec"]["volumes"].as_array().unwrap().contains(&json!({"name": IMAGE_VOLUME, "emptyDir": {}})));
        assert_eq!(main["securityContext"]["privileged"], true);
    }

    #[test]
    fn a_step_as_a_non_root_uid_is_restricted_and_owns_its_root() {
        let pod = rendered(&spec(), Program { image: "busybox".into(), run_as: Some(1000), ..Default::default() });
        let main = &pod["spec"]["containers"][0];
        assert_eq!(main["securityContext"], security::restricted(Some(1000)));
        let init = &pod["spec"]["initContainers"][0];
        assert_eq!(init["securityContext"], security::restricted(None));
        let script = init["command"][2].as_str().unwrap();
        assert!(
            script.contains("chown -R 1000 '/store/steps/build-1-task-2/root' '/store/steps/build-1-task-2/io'"),
            "{script}"
        );
        let mut privileged = spec();
        privileged.privileged = true;
        let pod = rendered(&privileged, Program { image: "busybox".into(), run_as: Some(1000), ..Default::default() });
        assert_eq!(pod["spec"]["containers"][0]["securityContext"], security::privileged());
    }

    #[test]
    fn a_step_pod_of_a_build_mounts_its_claim_beside_the_shared_one() {
        let affinity = json!({"podAffinity": {}});
        let settings = PodSettings {
            claim: "atc-build-1",
            shared_claim: Some("atc-artifacts"),
            affinity: Some(affinity.clone()),
            ..plain_settings()
        };
        let mut spec = spec();
        spec.inputs.push(InputMount { artifact: Artifact { id: "ws1_b1-get-ab_0".into() }, path: "got".into() });
        let program = Program { image: "busybox".into(), command: vec!["sh".into()], ..Default::default() };
        let pod = serde_json::to_value(step_pod(&spec, program, &settings).unwrap()).unwrap();
        assert_eq!(pod["spec"]["affinity"], affinity);
        let volumes = &pod["spec"]["volumes"];
        assert_eq!(volumes[0]["persistentVolumeClaim"]["claimName"], "atc-build-1");
        assert_eq!(volumes[1], json!({"name": "shared", "persistentVolumeClaim": {"claimName": "atc-artifacts"}}));
        // Caches stay on the shared claim; the upload comes from it, the build's own artifact from the build's.
        let mounts = pod["spec"]["containers"][0]["volumeMounts"].as_array().unwrap();
        assert_eq!(mounts[2]["name"], "shared");
        let script = pod["spec"]["initContainers"][0]["command"][2].as_str().unwrap();
        assert!(script.contains("cp -a '/shared/artifacts/upload_ab/.'"), "{script}");
        assert!(script.contains("cp -a '/store/artifacts/ws1_b1-get-ab_0/.'"), "{script}");
        assert!(script.contains(&format!("mkdir -p '/shared/{}'", cache_dir("k"))), "{script}");
    }

    #[test]
    fn label_values_are_valid_whatever_the_name() {
        assert_eq!(label_value("my pipeline/with:odd chars!"), "my-pipeline-with-odd-chars");
        assert_eq!(label_value("-x-"), "x");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }
}
