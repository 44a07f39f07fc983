//! Cases every runtime passes, written against `&dyn Runtime` only, with
//! the image the runtime needs for a POSIX shell (`Shell`): no case assumes
//! the host's `sh`, or exactly one worker. The Kubernetes runtime runs them
//! from `tests/cluster` (which includes this file and `support.rs`), so
//! they name their helpers through `super::`.

use std::time::Duration;

use atc::runtime::{
    CacheMount, ImageSpec, InputMount, OutputMount, OutputOffset, OutputStream, ProcessSpec, Runtime, RuntimeError,
    Stdout,
};
use tokio_util::sync::CancellationToken;

use super::support::{
    GRACE, RecordingSink, Shell, eventually, exec, export, import, observer, read, run, sh_process, tgz,
};

/// Calls `$callback!(ARGS... ; case, case, ...)` with the name of every
/// case below: one list for each runtime's tests.
macro_rules! with_suite_cases {
    ($callback:ident!($($args:tt)*)) => {
        $callback!($($args)* ;
            output_streams_arrive_separately_while_the_process_runs,
            stdout_and_stderr_keep_their_own_order,
            exit_codes_are_reported,
            args_env_dir_and_stdin_reach_the_process,
            the_runtime_environment_does_not_leak_into_steps,
            inputs_are_laid_out_and_isolated_from_the_step_writes,
            outputs_are_captured_even_when_the_step_fails,
            an_output_at_an_input_path_starts_from_the_input,
            caches_persist_across_runs_of_the_same_key,
            cancellation_interrupts_the_step,
            captured_stdout_is_returned_and_not_streamed,
            captured_stdout_past_the_limit_stops_the_step,
            artifacts_round_trip_through_tgz,
            read_file_refuses_paths_outside_the_artifact,
            read_file_reads_regular_files_up_to_the_limit,
            released_artifacts_are_gone,
            a_missing_executable_is_a_setup_error,
            an_unknown_resource_type_is_a_setup_error,
            a_started_step_reports_its_worker_and_image,
            the_workers_offer_the_built_in_resource_types,
            a_step_is_attached_to_twice_with_the_same_outcome,
            attaching_from_an_offset_skips_what_was_read,
            a_step_is_listed_until_it_is_stopped,
            stopping_a_running_step_interrupts_its_attach,
            a_handle_starts_one_step_only,
            exec_runs_a_process_in_a_running_steps_environment,
            exec_of_a_missing_program_says_it_was_not_found,
            stopping_a_step_stops_what_was_exec_d_into_it,
                );
    };
}

/// Turns every case below into a `#[tokio::test]` for the runtime that
/// `$make().await.runtime` gives.
macro_rules! runtime_suite {
    ($make:path) => {
        with_suite_cases!(runtime_suite!(@cases $make));
    };
    (@cases $make:path ; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let fixture = $make().await;
                $crate::suite::$case(&fixture.runtime, &fixture.shell()).await;
            }
        )*
    };
}

const DEADLINE: Duration = Duration::from_secs(20);

pub async fn output_streams_arrive_separately_while_the_process_runs(runtime: &dyn Runtime, shell: &Shell) {
    let sink = RecordingSink::new();
    let cancel = CancellationToken::new();
    let step = shell.step("printf 'to stdout'; printf 'to stderr' >&2; sleep 60");
    let run = run(runtime, step, sink.clone(), cancel.clone());
    let watch = async {
        let arrived =
            eventually(DEADLINE, || async { sink.stdout() == "to stdout" && sink.stderr() == "to stderr" }).await;
        cancel.cancel();
        arrived
    };
    let (result, arrived) = tokio::join!(run, watch);
    assert!(arrived, "output should arrive before the process exits: {:?} / {:?}", sink.stdout(), sink.stderr());
    assert!(matches!(result, Err(RuntimeError::Interrupted)), "{result:?}");
}

pub async fn stdout_and_stderr_keep_their_own_order(runtime: &dyn Runtime, shell: &Shell) {
    let sink = RecordingSink::new();
    let script = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done";
    let outcome = run(runtime, shell.step(script), sink.clone(), CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(sink.stdout(), "out1\nout2\nout3\nout4\nout5\n");
    assert_eq!(sink.stderr(), "err1\nerr2\nerr3\nerr4\nerr5\n");
    assert_eq!(outcome.stdout, None);
}

pub async fn exit_codes_are_reported(runtime: &dyn Runtime, shell: &Shell) {
    for (script, expected) in [("exit 0", 0), ("exit 3", 3), ("kill -9 $$", 137)] {
        let outcome = run(runtime, shell.step(script), RecordingSink::new(), CancellationToken::new()).await.unwrap();
        assert_eq!(outcome.exit_code, expected, "{script}");
    }
}

pub async fn args_env_dir_and_stdin_reach_the_process(runtime: &dyn Runtime, shell: &Shell) {
    let sink = RecordingSink::new();
    let mut step = shell.step(r#"echo "$GREETING $1"; pwd; cat"#);
    step.process.args.extend(["sh".into(), "world".into()]);
    step.process.env = vec![("GREETING".into(), "hello".into())];
    step.process.dir = "some/dir".into();
    step.process.stdin = Some(b"from stdin".to_vec());
    let outcome = run(runtime, step, sink.clone(), CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{}", sink.stderr());
    let stdout = sink.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "hello world");
    assert!(lines[1].ends_with("/some/dir"), "{stdout}");
    assert_eq!(lines[2], "from stdin");
}

pub async fn the_runtime_environment_does_not_leak_into_steps(runtime: &dyn Runtime, shell: &Shell) {
    // cargo sets CARGO_* for the test process; a step must not see them.
    let sink = RecordingSink::new();
    let outcome = run(runtime, shell.step("env"), sink.clone(), CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.exit_code, 0);
    let env = sink.stdout();
    assert!(env.lines().any(|line| line.starts_with("PATH=")), "{env}");
    assert!(!env.contains("CARGO_"), "{env}");
}

pub async fn inputs_are_laid_out_and_isolated_from_the_step_writes(runtime: &dyn Runtime, shell: &Shell) {
    let first = import(runtime, tgz(&[("file", "original", 0o644), ("dir/nested", "nested", 0o644)])).await;
    let second = import(runtime, tgz(&[("script.sh", "#!/bin/sh\necho ran script\n", 0o755)])).await;
    let mut step = shell.step(
        "cat first/dir/nested && ./second/script.sh && echo changed >> first/file && touch first/new && rm first/dir/nested",
    );
    step.inputs = vec![
        InputMount { artifact: first.clone(), path: "first".into() },
        InputMount { artifact: second.clone(), path: "second".into() },
    ];
    let sink = RecordingSink::new();
    let outcome = run(runtime, step, sink.clone(), CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{}", sink.stderr());
    assert_eq!(sink.stdout(), "nestedran script\n");
    assert_eq!(read(runtime, &first, "file").await, "original");
    assert_eq!(read(runtime, &first, "dir/nested").await, "nested");
    assert!(runtime.read_file(&first, "new").await.is_err());
}

pub async fn outputs_are_captured_even_when_the_step_fails(runtime: &dyn Runtime, shell: &Shell) {
    let mut step = shell.step("echo partial > out/result && mkdir -p nested/deep && echo n > nested/deep/f; exit 1");
    step.outputs = vec![
        OutputMount { name: "out".into(), path: "out".into() },
        OutputMount { name: "deep".into(), path: "nested/deep".into() },
        OutputMount { name: "untouched".into(), path: "empty".into() },
    ];
    let outcome = run(runtime, step, RecordingSink::new(), CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.exit_code, 1);
    assert_eq!(read(runtime, &outcome.outputs["out"], "result").await, "partial\n");
    assert_eq!(read(runtime, &outcome.outputs["deep"], "f").await, "n\n");
    assert!(export(runtime, &outcome.outputs["untouched"]).await.is_empty());
}

pub async fn an_output_at_an_input_path_starts_from_the_input(runtime: &dyn Runtime, shell: &Shell) {
    let input = import(runtime, tgz(&[("kept", "from input", 0o644)])).await;
    let mut step = shell.step("echo added > repo/added");
    step.inputs = vec![InputMount { artifact: input.clone(), path: "repo".into() }];
    step.outputs = vec![OutputMount { name: "repo".into(), path: "repo".into() }];
    let outcome = run(runtime, step, RecordingSink::new(), CancellationToken::new()).await.unwrap();
    let output = &outcome.outputs["repo"];
    assert_ne!(output, &input);
    assert_eq!(read(runtime, output, "kept").await, "from input");
    assert_eq!(read(runtime, output, "added").await, "added\n");
    assert!(runtime.read_file(&input, "added").await.is_err());
}

pub async fn caches_persist_across_runs_of_the_same_key(runtime: &dyn Runtime, shell: &Shell) {
    let cached_step = |key: &str| {
        let mut step = shell.step("cat cache/count 2>/dev/null || echo none; echo again >> cache/count");
        step.caches = vec![CacheMount { key: key.into(), path: "cache".into() }];
        step
    };
    let mut seen = Vec::new();
    for key in ["job/step/cache", "job/step/cache", "other/cache"] {
        let sink = RecordingSink::new();
        let outcome = run(runtime, cached_step(key), sink.clone(), CancellationToken::new()).await.unwrap();
        assert_eq!(outcome.exit_code, 0, "{}", sink.stderr());
        seen.push(sink.stdout());
    }
    assert_eq!(seen, ["none\n", "again\n", "none\n"]);
}

pub async fn cancellation_interrupts_the_step(runtime: &dyn Runtime, shell: &Shell) {
    let cancel = CancellationToken::new();
    let sink = RecordingSink::new();
    let mut step = shell.step("trap '' TERM; echo started; sleep 60");
    step.outputs = vec![OutputMount { name: "out".into(), path: "out".into() }];
    let run = run(runtime, step, sink.clone(), cancel.clone());
    let stop = async {
        assert!(eventually(DEADLINE, || async { sink.stdout().contains("started") }).await);
        cancel.cancel();
    };
    let started = std::time::Instant::now();
    let (result, ()) = tokio::join!(run, stop);
    assert!(matches!(result, Err(RuntimeError::Interrupted)), "{result:?}");
    // Even a process ignoring SIGTERM is gone well before its sleep ends.
    assert!(started.elapsed() < Duration::from_secs(30));
}

pub async fn captured_stdout_is_returned_and_not_streamed(runtime: &dyn Runtime, shell: &Shell) {
    let sink = RecordingSink::new();
    let mut step = shell.step(r#"printf '[{"ref":"1"}]'; echo logged >&2"#);
    step.process.stdout = Stdout::Capture;
    let outcome = run(runtime, step, sink.clone(), CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.stdout.as_deref(), Some(&b"[{\"ref\":\"1\"}]"[..]));
    assert_eq!(sink.text(OutputStream::Stdout), "");
    assert_eq!(sink.stderr(), "logged\n");
}

pub async fn captured_stdout_past_the_limit_stops_the_step(runtime: &dyn Runtime, shell: &Shell) {
    // Runtimes keep at most 10 MiB of a resource's response.
    let mut step = shell.step("head -c 11534336 /dev/zero; sleep 60");
    step.process.stdout = Stdout::Capture;
    let result = run(runtime, step, RecordingSink::new(), CancellationToken::new()).await;
    match result {
        Err(err @ RuntimeError::StdoutTooLarge { .. }) => assert!(err.to_string().contains("stdout"), "{err}"),
        other => panic!("expected StdoutTooLarge, got {other:?}"),
    }
}

pub async fn artifacts_round_trip_through_tgz(runtime: &dyn Runtime, _shell: &Shell) {
    let original = tgz(&[("a.txt", "alpha", 0o644), ("bin/run", "#!/bin/sh\n", 0o755), ("deep/er/c", "", 0o600)]);
    let artifact = import(runtime, original).await;
    let files = export(runtime, &artifact).await;
    let expected = [("a.txt", "alpha", 0o644), ("bin/run", "#!/bin/sh\n", 0o755), ("deep/er/c", "", 0o600)];
    for (path, content, mode) in expected {
        assert_eq!(files.get(path), Some(&(content.to_string(), mode)), "{path} in {files:?}");
    }
    assert_eq!(files.len(), 3, "{files:?}");
    let reimported = import(runtime, {
        let files: Vec<(&str, &str, u32)> =
            files.iter().map(|(path, (content, mode))| (path.as_str(), content.as_str(), *mode)).collect();
        tgz(&files)
    })
    .await;
    assert_eq!(read(runtime, &reimported, "a.txt").await, "alpha");
}

pub async fn read_file_refuses_paths_outside_the_artifact(runtime: &dyn Runtime, shell: &Shell) {
    let mut step = shell.step("echo inside > out/file && ln -s /etc/hostname out/escape && ln -s file out/alias");
    step.outputs = vec![OutputMount { name: "out".into(), path: "out".into() }];
    let outcome = run(runtime, step, RecordingSink::new(), CancellationToken::new()).await.unwrap();
    let artifact = &outcome.outputs["out"];
    assert_eq!(read(runtime, artifact, "file").await, "inside\n");
    assert_eq!(read(runtime, artifact, "./alias").await, "inside\n");
    for escaping in ["../file", "/etc/hostname", "escape", "sub/../../x"] {
        let result = runtime.read_file(artifact, escaping).await;
        assert!(matches!(result, Err(RuntimeError::Setup(_))), "{escaping}: {result:?}");
    }
    assert!(runtime.read_file(artifact, "missing").await.is_err());
    let forged = atc::runtime::Artifact { id: "../../etc".into() };
    assert!(runtime.read_file(&forged, "passwd").await.is_err());
}

pub async fn read_file_reads_regular_files_up_to_the_limit(runtime: &dyn Runtime, shell: &Shell) {
    let limit = atc::runtime::MAX_READ_FILE_BYTES;
    let mut step = shell
        .step(&format!("truncate -s {limit} out/largest && truncate -s {} out/larger && mkfifo out/fifo", limit + 1));
    step.outputs = vec![OutputMount { name: "out".into(), path: "out".into() }];
    let outcome = run(runtime, step, RecordingSink::new(), CancellationToken::new()).await.unwrap();
    let artifact = &outcome.outputs["out"];
    assert_eq!(runtime.read_file(artifact, "largest").await.unwrap().len() as u64, limit);
    let larger = runtime.read_file(artifact, "larger").await;
    assert!(matches!(&larger, Err(RuntimeError::Setup(m)) if m.contains("larger than")), "{larger:?}");
    // Nothing writes to the FIFO: reading it would wait forever.
    let fifo = tokio::time::timeout(Duration::from_secs(10), runtime.read_file(artifact, "fifo")).await;
    assert!(matches!(&fifo, Ok(Err(RuntimeError::Setup(m))) if m.contains("not a regular file")), "{fifo:?}");
}

pub async fn released_artifacts_are_gone(runtime: &dyn Runtime, _shell: &Shell) {
    let artifact = import(runtime, tgz(&[("f", "x", 0o644)])).await;
    runtime.release(vec![artifact.clone()]).await.unwrap();
    assert!(runtime.read_file(&artifact, "f").await.is_err());
    // Releasing twice is harmless.
    runtime.release(vec![artifact]).await.unwrap();
}

pub async fn a_missing_executable_is_a_setup_error(runtime: &dyn Runtime, shell: &Shell) {
    let mut step = shell.step("");
    step.process.path = "/no/such/executable".into();
    let result = run(runtime, step, RecordingSink::new(), CancellationToken::new()).await;
    assert!(
        matches!(&result, Err(RuntimeError::Setup(message)) if message.contains("/no/such/executable")),
        "{result:?}"
    );
}

pub async fn an_unknown_resource_type_is_a_setup_error(runtime: &dyn Runtime, shell: &Shell) {
    let mut step = shell.step("");
    step.image = Some(ImageSpec::resource_type("no-such-type"));
    step.process.path = "/opt/resource/check".into();
    let result = run(runtime, step, RecordingSink::new(), CancellationToken::new()).await;
    assert!(matches!(&result, Err(RuntimeError::Setup(message)) if message.contains("no-such-type")), "{result:?}");
}

pub async fn a_started_step_reports_its_worker_and_image(runtime: &dyn Runtime, shell: &Shell) {
    let workers: Vec<String> = runtime.workers().await.into_iter().map(|w| w.name).collect();
    let mut step = shell.step("");
    step.image = Some(ImageSpec::resource_type("mock"));
    step.process.path = "/opt/resource/check".into();
    step.process.stdin = Some(br#"{"source":{}}"#.to_vec());
    step.process.stdout = Stdout::Capture;
    let observer = observer();
    let handle = runtime.start(step, observer.clone()).await.unwrap();
    runtime.attach(&handle, RecordingSink::new(), OutputOffset::default()).await.unwrap();
    runtime.stop(&handle, Duration::ZERO).await.unwrap();
    // Placed once, on one of the workers the runtime lists (there may be several).
    let placed = observer.placed.lock().unwrap().clone();
    assert_eq!(placed.len(), 1, "{placed:?}");
    assert!(workers.contains(&placed[0]), "{placed:?} not among {workers:?}");
    let images = observer.images.lock().unwrap().clone();
    assert!(matches!(images.as_slice(), [image] if image.contains("mock")), "{images:?}");
}

pub async fn the_workers_offer_the_built_in_resource_types(runtime: &dyn Runtime, _shell: &Shell) {
    let workers = runtime.workers().await;
    assert!(!workers.is_empty());
    for worker in &workers {
        assert_eq!(worker.platform, "linux");
        assert!(!worker.name.is_empty());
        for builtin in ["git", "mock", "time"] {
            assert!(worker.resource_types.iter().any(|t| t == builtin), "{:?}", worker.resource_types);
        }
    }
}

pub async fn a_step_is_attached_to_twice_with_the_same_outcome(runtime: &dyn Runtime, shell: &Shell) {
    let mut step = shell.step("echo out; echo err >&2; echo kept > out/file; exit 3");
    step.outputs = vec![OutputMount { name: "out".into(), path: "out".into() }];
    let handle = runtime.start(step, observer()).await.unwrap();
    let first_sink = RecordingSink::new();
    let first = runtime.attach(&handle, first_sink.clone(), OutputOffset::default()).await.unwrap();
    let second_sink = RecordingSink::new();
    let second = runtime.attach(&handle, second_sink.clone(), OutputOffset::default()).await.unwrap();
    assert_eq!(first.exit_code, 3);
    assert_eq!(first, second, "a second attach answers the same outcome");
    assert_eq!((first_sink.stdout(), first_sink.stderr()), ("out\n".to_string(), "err\n".to_string()));
    assert_eq!((second_sink.stdout(), second_sink.stderr()), ("out\n".to_string(), "err\n".to_string()));
    assert_eq!(read(runtime, &first.outputs["out"], "file").await, "kept\n");
    runtime.stop(&handle, GRACE).await.unwrap();
    let gone = runtime.attach(&handle, RecordingSink::new(), OutputOffset::default()).await;
    assert!(matches!(gone, Err(RuntimeError::UnknownStep(_))), "{gone:?}");
    // The outcome's artifacts outlive the step.
    assert_eq!(read(runtime, &first.outputs["out"], "file").await, "kept\n");
}

pub async fn attaching_from_an_offset_skips_what_was_read(runtime: &dyn Runtime, shell: &Shell) {
    let handle =
        runtime.start(shell.step("echo first; echo one >&2; echo second; echo two >&2"), observer()).await.unwrap();
    let everything = RecordingSink::new();
    runtime.attach(&handle, everything.clone(), OutputOffset::default()).await.unwrap();
    assert_eq!(everything.offset(), OutputOffset { stdout: 13, stderr: 8 });
    let rest = RecordingSink::new();
    let since = OutputOffset { stdout: "first\n".len() as u64, stderr: "one\n".len() as u64 };
    runtime.attach(&handle, rest.clone(), since).await.unwrap();
    assert_eq!((rest.stdout(), rest.stderr()), ("second\n".to_string(), "two\n".to_string()));
    assert_eq!(rest.offset(), everything.offset());
    runtime.stop(&handle, GRACE).await.unwrap();
}

pub async fn a_step_is_listed_until_it_is_stopped(runtime: &dyn Runtime, shell: &Shell) {
    let running = runtime.start(shell.step("sleep 60"), observer()).await.unwrap();
    let exited = runtime.start(shell.step("true"), observer()).await.unwrap();
    let handles = || async { runtime.list().await.unwrap().into_iter().map(|step| step.handle).collect::<Vec<_>>() };
    let listed = handles().await;
    assert!(listed.contains(&running) && listed.contains(&exited), "{listed:?}");
    runtime.stop(&running, GRACE).await.unwrap();
    runtime.stop(&exited, GRACE).await.unwrap();
    let listed = handles().await;
    assert!(!listed.contains(&running) && !listed.contains(&exited), "{listed:?}");
    // Stopping what is gone is no error.
    runtime.stop(&running, GRACE).await.unwrap();
}

pub async fn stopping_a_running_step_interrupts_its_attach(runtime: &dyn Runtime, shell: &Shell) {
    let sink = RecordingSink::new();
    let handle = runtime.start(shell.step("trap '' TERM; echo started; sleep 60"), observer()).await.unwrap();
    let attach = runtime.attach(&handle, sink.clone(), OutputOffset::default());
    let stop = async {
        assert!(eventually(DEADLINE, || async { sink.stdout().contains("started") }).await);
        runtime.stop(&handle, GRACE).await.unwrap();
    };
    let started = std::time::Instant::now();
    let (attached, ()) = tokio::join!(attach, stop);
    assert!(matches!(attached, Err(RuntimeError::Interrupted) | Err(RuntimeError::UnknownStep(_))), "{attached:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

pub async fn a_handle_starts_one_step_only(runtime: &dyn Runtime, shell: &Shell) {
    let step = shell.step("sleep 60");
    let again = step.clone();
    let handle = runtime.start(step, observer()).await.unwrap();
    let refused = runtime.start(again, observer()).await;
    assert!(matches!(&refused, Err(RuntimeError::AlreadyStarted(h)) if *h == handle), "{refused:?}");
    runtime.stop(&handle, GRACE).await.unwrap();
}

pub async fn exec_runs_a_process_in_a_running_steps_environment(runtime: &dyn Runtime, shell: &Shell) {
    let mut step = shell.step("echo ready > marker; sleep 60");
    step.process.env = vec![("GREETING".into(), "hello".into())];
    step.process.dir = "work".into();
    let handle = runtime.start(step, observer()).await.unwrap();
    let process = sh_process("cat marker; echo \"$GREETING\"; pwd; cat; echo oops >&2; exit 4");
    let probe = sh_process("test -f marker");
    assert!(
        eventually(DEADLINE, || async { exec(runtime, &handle, probe.clone(), None).await.0.ok() == Some(0) }).await
    );
    let (stdin, chunks) = tokio::sync::mpsc::channel(1);
    stdin.send(bytes::Bytes::from_static(b"typed in")).await.unwrap();
    drop(stdin);
    let (code, printed) = exec(runtime, &handle, process, Some(chunks)).await;
    assert_eq!(code.unwrap(), 4);
    let lines: Vec<&str> = printed.stdout.lines().collect();
    assert_eq!(lines[0..2], ["ready", "hello"], "{printed:?}");
    assert!(lines[2].ends_with("/work"), "{printed:?}");
    assert_eq!(lines[3], "typed in");
    assert_eq!(printed.stderr, "oops\n");

    // More output than a pipe holds, read slowly, arrives whole.
    let (code, printed) = exec(runtime, &handle, sh_process("head -c 1000000 /dev/zero | tr '\\0' x"), None).await;
    assert_eq!(code.unwrap(), 0);
    assert_eq!(printed.stdout.len(), 1_000_000);
    runtime.stop(&handle, GRACE).await.unwrap();
}

pub async fn exec_of_a_missing_program_says_it_was_not_found(runtime: &dyn Runtime, shell: &Shell) {
    let handle = runtime.start(shell.step("sleep 60"), observer()).await.unwrap();
    let missing = ProcessSpec { path: "/no/such/program".into(), args: Vec::new(), ..sh_process("") };
    let (result, _) = exec(runtime, &handle, missing, None).await;
    assert!(matches!(&result, Err(RuntimeError::ExecutableNotFound(path)) if path == "/no/such/program"), "{result:?}");
    let elsewhere = ProcessSpec { dir: "no/such/dir".into(), ..sh_process("true") };
    let (result, _) = exec(runtime, &handle, elsewhere, None).await;
    assert!(matches!(&result, Err(RuntimeError::Setup(_))), "{result:?}");
    runtime.stop(&handle, GRACE).await.unwrap();
}

pub async fn stopping_a_step_stops_what_was_exec_d_into_it(runtime: &dyn Runtime, shell: &Shell) {
    let handle = runtime.start(shell.step("sleep 60"), observer()).await.unwrap();
    let session = exec(runtime, &handle, sh_process("touch started; sleep 60 & sleep 60"), None);
    let stopper = async {
        let probe = sh_process("test -f started");
        assert!(
            eventually(DEADLINE, || async { exec(runtime, &handle, probe.clone(), None).await.0.ok() == Some(0) })
                .await
        );
        runtime.stop(&handle, GRACE).await.unwrap();
    };
    let ((code, _), ()) = tokio::time::timeout(DEADLINE, async { tokio::join!(session, stopper) }).await.unwrap();
    assert_ne!(code.unwrap(), 0);
}
