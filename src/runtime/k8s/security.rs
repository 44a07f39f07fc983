//! The security context of the runtime's containers. A step that is not
//! privileged gets a restrictive one: no privilege escalation (setuid
//! binaries gain nothing), the container runtime's default seccomp
//! profile, and every capability dropped. A step that runs as a non-root
//! uid (`run.user`) keeps none and must run as non-root; one that runs as
//! root (or as its image's user) keeps the few a build needs to own and
//! change files, switch users (package managers do), bind low ports and
//! chroot, and loses the rest of a container's defaults (NET_RAW, MKNOD,
//! SETFCAP, AUDIT_WRITE). atc's own containers (`fetch-inputs`, the
//! artifact helper) run as root with that set: they copy artifacts whose
//! files belong to any uid (`cp -a` keeps owners) on a ReadWriteMany claim,
//! where an fsGroup is often not applied (NFS and hostPath volumes), so a
//! fixed non-root uid could neither read every output nor keep owners.

use serde_json::{Value, json};

/// What a root step keeps of a container runtime's default capabilities.
const ROOT_CAPABILITIES: [&str; 10] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
];

/// The context of a container that is not privileged, running as `uid`
/// (none: the image's user).
pub fn restricted(uid: Option<i64>) -> Value {
    let mut context = json!({
        "allowPrivilegeEscalation": false,
        "seccompProfile": {"type": "RuntimeDefault"},
        "capabilities": {"drop": ["ALL"]},
    });
    if let Some(uid) = uid {
        context["runAsUser"] = json!(uid);
    }
    match uid {
        Some(uid) if uid != 0 => context["runAsNonRoot"] = json!(true),
        _ => context["capabilities"]["add"] = json!(ROOT_CAPABILITIES),
    }
    context
}

pub fn privileged() -> Value {
    json!({"privileged": true})
}

/// Lines for `fetch-inputs` that hand a step running as a non-root `uid`
/// its working root and I/O files (and its caches' top directories), which
/// `fetch-inputs` made as root: the step writes outputs and its wrapper
/// writes its stdout there.
pub fn hand_over(uid: Option<i64>, dirs: &[String], caches: &[String]) -> String {
    match uid {
        Some(uid) if uid != 0 => {
            let mut lines = format!("chown -R {uid} {}\n", dirs.join(" "));
            if !caches.is_empty() {
                lines.push_str(&format!("chown {uid} {}\n", caches.join(" ")));
            }
            lines
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_root_step_keeps_no_capabilities_and_must_not_be_root() {
        let context = restricted(Some(1000));
        assert_eq!(context["runAsUser"], 1000);
        assert_eq!(context["runAsNonRoot"], true);
        assert_eq!(context["allowPrivilegeEscalation"], false);
        assert_eq!(context["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(context["capabilities"], json!({"drop": ["ALL"]}));
        assert_eq!(hand_over(Some(1000), &["'a'".into()], &[]), "chown -R 1000 'a'\n");
    }

    #[test]
    fn a_root_step_keeps_what_builds_need() {
        for uid in [None, Some(0)] {
            let context = restricted(uid);
            assert!(context.get("runAsNonRoot").is_none());
            let added = context["capabilities"]["add"].as_array().unwrap();
            assert!(added.contains(&json!("CHOWN")) && !added.contains(&json!("NET_RAW")));
            assert_eq!(hand_over(uid, &["'a'".into()], &["'c'".into()]), "");
        }
        assert_eq!(restricted(Some(0))["runAsUser"], 0);
    }
}
