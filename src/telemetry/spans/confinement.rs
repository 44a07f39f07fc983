//! Spans have one home: outside `telemetry`, no module calls the tracer,
//! builds or records on a span, or spells an attribute. `metric` writes its
//! instruments' attributes itself.

use std::path::{Path, PathBuf};

/// What only `telemetry` may write, and whether `metric` may too.
const CONFINED: &[(&str, bool)] = &[
    ("global::tracer", false),
    ("span_builder(", false),
    (".set_attribute(", false),
    (".add_event(", false),
    ("KeyValue::new(", true),
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// `file:line: code` of every confined call in `files`; `in_metric` files
/// may spell attributes.
fn confined_calls(files: &[PathBuf], in_metric: impl Fn(&Path) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let confined: Vec<&str> = CONFINED
            .iter()
            .filter(|(_, metric_may)| !(*metric_may && in_metric(file)))
            .map(|(call, _)| *call)
            .collect();
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if !code.starts_with("//") && confined.iter().any(|call| code.contains(call)) {
                found.push(format!("{}:{}: {code}", file.display(), number + 1));
            }
        }
    }
    found
}

#[test]
fn nothing_outside_telemetry_makes_spans_or_spells_attributes() {
    let src = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run under cargo")).join("src");
    let (telemetry, metric) = (src.join("telemetry"), src.join("metric"));
    let outside: Vec<PathBuf> = rust_files(&src).into_iter().filter(|file| !file.starts_with(&telemetry)).collect();
    let found = confined_calls(&outside, |file| file.starts_with(&metric));
    assert!(
        found.is_empty(),
        "spans belong in src/telemetry/spans, attribute keys in src/telemetry/semconv.rs: \
         say what happened with a type from there instead of\n{}",
        found.join("\n")
    );
    // Still the calls telemetry makes spans with, so the scan above cannot
    // pass because the API changed its names.
    assert!(confined_calls(&rust_files(&telemetry), |_| false).iter().any(|call| call.contains("global::tracer(")));
}
