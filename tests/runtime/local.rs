//! The local runtime: the shared suite, and what only it can show.

use std::time::Duration;

use atc::runtime::{ImageSpec, Limits, OutputMount, Runtime, RuntimeError, Sidecar};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::{LocalFixture, RecordingSink, eventually, import, observer, read, run, shell_step, tgz};

runtime_suite!(crate::support::local_runtime);

/// Whether a pid names a live process (a zombie waiting for its reaper is dead).
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

fn pids(text: &str) -> Vec<u32> {
    text.split_whitespace().filter_map(|word| word.strip_prefix("pid:")).map(|pid| pid.parse().unwrap()).collect()
}

#[tokio::test]
async fn cancellation_kills_the_whole_process_group_including_grandchildren() {
    let fixture = LocalFixture::new().await;
    let sink = RecordingSink::new();
    let cancel = CancellationToken::new();
    // A child that ignores SIGTERM and a grandchild of it, both sleeping.
    let script = r#"
        sh -c 'trap "" TERM; sleep 300 & echo pid:$!; wait' &
        echo pid:$!
        sleep 300 &
        echo pid:$!
        wait
    "#;
    let run = run(&fixture.runtime, shell_step(script), sink.clone(), cancel.clone());
    let stop = async {
        assert!(eventually(Duration::from_secs(20), || async { pids(&sink.stdout()).len() == 3 }).await);
        for pid in pids(&sink.stdout()) {
            assert!(is_alive(pid), "pid {pid} should be running before the cancel");
        }
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(run, stop);
    assert!(matches!(result, Err(RuntimeError::Interrupted)), "{result:?}");
    let survivors = pids(&sink.stdout());
    let all_gone = eventually(Duration::from_secs(10), || {
        let survivors = survivors.clone();
        async move { survivors.iter().all(|pid| !is_alive(*pid)) }
    })
    .await;
    assert!(all_gone, "still running: {:?}", survivors.iter().filter(|pid| is_alive(**pid)).collect::<Vec<_>>());
}

#[tokio::test]
async fn background_processes_do_not_outlive_their_step() {
    let fixture = LocalFixture::new().await;
    let sink = RecordingSink::new();
    let outcome = run(
        &fixture.runtime,
        shell_step("sleep 300 >/dev/null 2>&1 & echo pid:$!"),
        sink.clone(),
        CancellationToken::new(),
    );
    let outcome = tokio::time::timeout(Duration::from_secs(20), outcome).await.expect("the step should end").unwrap();
    assert_eq!(outcome.exit_code, 0);
    let pid = pids(&sink.stdout())[0];
    assert!(eventually(Duration::from_secs(10), || async { !is_alive(pid) }).await, "pid {pid} survived its step");
}

#[tokio::test]
async fn step_work_dirs_are_removed_after_the_step() {
    let fixture = LocalFixture::new().await;
    let mut step = shell_step("mkdir -p a/b && chmod 500 a/b && echo x > out/f");
    step.outputs = vec![OutputMount { name: "out".into(), path: "out".into() }];
    let outcome = run(&fixture.runtime, step, RecordingSink::new(), CancellationToken::new()).await.unwrap();
    assert_eq!(read(&fixture.runtime, &outcome.outputs["out"], "f").await, "x\n");
    let steps = std::fs::read_dir(fixture.dir.path().join("work/steps")).unwrap().count();
    assert_eq!(steps, 0);
}

#[tokio::test]
async fn a_restarted_runtime_keeps_steps_and_removes_partial_uploads() {
    let fixture = LocalFixture::new().await;
    let work = fixture.dir.path().join("work");
    let artifact = import(&fixture.runtime, tgz(&[("kept", "artifact", 0o644)])).await;
    // What a killed atc leaves: a step (its engine decides what becomes of
    // it) and a half-unpacked upload (nobody can finish it).
    let step = fixture.runtime.start(shell_step("echo done"), observer()).await.unwrap();
    std::fs::create_dir_all(work.join("uploads/partial")).unwrap();

    let mut options = atc::runtime::local::LocalRuntimeOptions::new(work.clone());
    options.atc_executable = Some(env!("CARGO_BIN_EXE_atc").into());
    let restarted = atc::runtime::local::LocalRuntime::new(options).await.unwrap();
    let listed = restarted.list().await.unwrap();
    assert_eq!(listed.iter().map(|step| &step.handle).collect::<Vec<_>>(), [&step]);
    assert_eq!(listed[0].metadata.step_type, "task");
    assert_eq!(std::fs::read_dir(work.join("uploads")).unwrap().count(), 0);
    // Artifacts may still be wanted (downloads, uploaded inputs): they stay.
    assert_eq!(read(&restarted, &artifact, "kept").await, "artifact");
    restarted.stop(&step, Duration::from_secs(1)).await.unwrap();
    assert!(restarted.list().await.unwrap().is_empty());
}

/// The point of the lifecycle: a step started by one atc process is
/// followed to its end by the next, running or already exited meanwhile.
#[tokio::test]
async fn a_step_outlives_the_runtime_that_started_it() {
    let fixture = LocalFixture::new().await;
    let work = fixture.dir.path().join("work");
    let marker = fixture.dir.path().join("go");
    let script = format!("echo before; while [ ! -e {} ]; do sleep 0.05; done; echo after; exit 7", marker.display());
    let mut step = shell_step(&script);
    step.outputs = vec![OutputMount { name: "out".into(), path: "out".into() }];
    let running = fixture.runtime.start(step, observer()).await.unwrap();
    let finished = fixture.runtime.start(shell_step("echo quick"), observer()).await.unwrap();
    let seen = RecordingSink::new();
    let watch = fixture.runtime.attach(&running, seen.clone(), Default::default());
    let read_before =
        async { assert!(eventually(Duration::from_secs(20), || async { seen.stdout() == "before\n" }).await) };
    tokio::select! {
        _ = watch => panic!("the step cannot end before the marker exists"),
        () = read_before => {}
    }
    let since = seen.offset();
    drop(fixture.runtime);
    // The exit of one happens while no atc is watching.
    let quick_deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !work.join(format!("steps/{finished}/exit")).exists() {
        assert!(std::time::Instant::now() < quick_deadline, "the quick step never exited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut options = atc::runtime::local::LocalRuntimeOptions::new(work.clone());
    options.atc_executable = Some(env!("CARGO_BIN_EXE_atc").into());
    let restarted = atc::runtime::local::LocalRuntime::new(options).await.unwrap();
    let rest = RecordingSink::new();
    let attach = restarted.attach(&running, rest.clone(), since);
    std::fs::write(&marker, "").unwrap();
    let outcome = attach.await.unwrap();
    assert_eq!(outcome.exit_code, 7);
    assert_eq!(rest.stdout(), "after\n", "only what was not read before the restart");
    assert!(outcome.outputs.contains_key("out"));
    let quick = RecordingSink::new();
    assert_eq!(restarted.attach(&finished, quick.clone(), Default::default()).await.unwrap().exit_code, 0);
    assert_eq!(quick.stdout(), "quick\n");
    for handle in [running, finished] {
        restarted.stop(&handle, Duration::from_secs(1)).await.unwrap();
    }
}

#[tokio::test]
async fn unusable_images_and_limits_are_noted_in_the_log_and_the_step_runs_on_the_host() {
    let fixture = LocalFixture::new().await;
    let cases = [
        (
            ImageSpec::Resource {
                type_: "registry-image".into(),
                source: json!({"repository": "busybox"}),
                params: json!({}),
                version: None,
            },
            "atc: image_resource is not used by the local runtime; running on the host\n",
        ),
        (ImageSpec::RootfsUri("docker:///busybox".into()), "atc: rootfs_uri is not used by the local runtime"),
    ];
    for (image, notice) in cases {
        let sink = RecordingSink::new();
        let mut step = shell_step("echo ran");
        step.image = Some(image);
        step.limits = Limits { cpu: Some(512), memory: None };
        let outcome = run(&fixture.runtime, step, sink.clone(), CancellationToken::new()).await.unwrap();
        assert_eq!(outcome.exit_code, 0);
        assert_eq!(sink.stdout(), "ran\n");
        assert!(sink.stderr().starts_with(notice), "{}", sink.stderr());
        assert!(sink.stderr().contains("container_limits are not enforced"), "{}", sink.stderr());
    }
}

#[tokio::test]
async fn an_image_artifact_gives_its_environment_and_resource_executables() {
    let fixture = LocalFixture::new().await;
    let image = import(
        &fixture.runtime,
        tgz(&[
            ("metadata.json", r#"{"env":["FROM_IMAGE=yes","OVERRIDDEN=image"],"user":""}"#, 0o644),
            ("rootfs/opt/resource/check", "#!/bin/sh\necho \"[{\\\"image\\\":\\\"$FROM_IMAGE\\\"}]\"\n", 0o755),
        ]),
    )
    .await;
    let sink = RecordingSink::new();
    let mut task = shell_step("echo $FROM_IMAGE $OVERRIDDEN");
    task.image = Some(ImageSpec::Artifact(image.clone()));
    task.process.env = vec![("OVERRIDDEN".into(), "step".into())];
    run(&fixture.runtime, task, sink.clone(), CancellationToken::new()).await.unwrap();
    assert_eq!(sink.stdout(), "yes step\n");
    assert!(sink.stderr().contains("root filesystem is not used"), "{}", sink.stderr());

    let mut check = shell_step("");
    check.image = Some(ImageSpec::Artifact(image));
    check.process.path = "/opt/resource/check".into();
    check.process.args.clear();
    check.process.stdout = atc::runtime::Stdout::Capture;
    let outcome = run(&fixture.runtime, check, RecordingSink::new(), CancellationToken::new()).await.unwrap();
    assert_eq!(String::from_utf8(outcome.stdout.unwrap()).unwrap(), "[{\"image\":\"yes\"}]\n");
}

#[tokio::test]
async fn run_user_is_honoured_as_root_or_explained_otherwise() {
    let fixture = LocalFixture::new().await;
    let sink = RecordingSink::new();
    let mut step = shell_step("id -un; stat -c %U out");
    step.process.user = Some("nobody".into());
    step.outputs = vec![OutputMount { name: "out".into(), path: "out".into() }];
    let outcome = run(&fixture.runtime, step, sink.clone(), CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{}", sink.stderr());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!(sink.stdout(), "nobody\nnobody\n");
        assert_eq!(sink.stderr(), "");
    } else {
        assert!(sink.stderr().contains("user 'nobody' is not used: atc does not run as root"), "{}", sink.stderr());
    }

    let sink = RecordingSink::new();
    let mut step = shell_step("true");
    step.process.user = Some("no-such-user-here".into());
    run(&fixture.runtime, step, sink.clone(), CancellationToken::new()).await.unwrap();
    assert!(sink.stderr().contains("no-such-user-here"), "{}", sink.stderr());
}

#[tokio::test]
async fn a_relative_run_path_is_relative_to_the_working_directory() {
    let fixture = LocalFixture::new().await;
    let input = import(&fixture.runtime, tgz(&[("ci/test.sh", "#!/bin/sh\necho tested in $(pwd)\n", 0o755)])).await;
    let sink = RecordingSink::new();
    let mut step = shell_step("");
    step.inputs = vec![atc::runtime::InputMount { artifact: input, path: "repo".into() }];
    step.process.path = "ci/test.sh".into();
    step.process.args.clear();
    step.process.dir = "repo".into();
    let outcome = run(&fixture.runtime, step, sink.clone(), CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{}", sink.stderr());
    assert!(sink.stdout().starts_with("tested in /") && sink.stdout().trim_end().ends_with("/repo"));
}

#[tokio::test]
async fn a_step_with_sidecars_is_refused_naming_the_runtime() {
    let fixture = LocalFixture::new().await;
    let mut step = shell_step("echo never");
    step.sidecars = vec![Sidecar { name: "db".into(), image: "postgres:16".into(), ..Default::default() }];
    let sink = RecordingSink::new();
    let result = run(&fixture.runtime, step, sink.clone(), CancellationToken::new()).await;
    let Err(RuntimeError::Setup(message)) = &result else { panic!("{result:?}") };
    assert!(message.contains("sidecar 'db'") && message.contains("local runtime"), "{message}");
    assert!(message.contains("--kubernetes-namespace"), "{message}");
    assert!(sink.stdout().is_empty());
}
