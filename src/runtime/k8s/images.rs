//! Which image runs a step, and how its process starts in it: task images
//! (`image_resource` of type registry-image or docker-image, `rootfs_uri`,
//! an artifact entered from the helper image: [`ENTER_IMAGE`]),
//! resource types' images (`--kubernetes-base-resource-type`, a custom
//! type's `source`), and atc's built-in types, which run in the helper
//! image as `atc resource TYPE CMD` (so a mock `image_resource` with
//! `mirror_self`, the image of the mock itself, is the helper image).

use std::collections::BTreeMap;

use serde_json::Value;

use super::pod::Program;
use super::scripts::{ENTER_IMAGE, sh};
use crate::resource::builtin::BUILTIN_TYPES;
use crate::runtime::{ImageMetadata, ImageSpec, ProcessSpec, RuntimeError};

const RESOURCE_EXECUTABLES: &str = "/opt/resource/";
/// Resource types whose `source` names an image.
const IMAGE_TYPES: [&str; 2] = ["registry-image", "docker-image"];

/// The base resource types' images when no flag overrides them.
pub fn default_base_types() -> BTreeMap<String, String> {
    ["time", "registry-image", "git", "s3", "docker-image", "pool", "semver"]
        .into_iter()
        .map(|name| (name.to_string(), format!("concourse/{name}-resource")))
        .collect()
}

pub struct Images<'a> {
    /// Base resource type → image.
    pub base_types: &'a BTreeMap<String, String>,
    pub helper_image: &'a str,
    /// Where atc is in the helper image.
    pub helper_atc: &'a str,
}

impl Images<'_> {
    /// The image, the leading command and the user for `process`; an
    /// artifact's `metadata` (when read) gives its environment and default
    /// user.
    pub fn program(
        &self,
        image: Option<&ImageSpec>,
        process: &ProcessSpec,
        metadata: Option<&ImageMetadata>,
    ) -> Result<Program, RuntimeError> {
        let mut program = self.image_program(image, process, metadata)?;
        // An artifact's root is entered as the user by name or number; a container runs as a uid.
        if program.image_artifact.is_none() {
            program.run_as = process.user.as_deref().map(uid).transpose()?;
        }
        Ok(program)
    }

    fn image_program(
        &self,
        image: Option<&ImageSpec>,
        process: &ProcessSpec,
        metadata: Option<&ImageMetadata>,
    ) -> Result<Program, RuntimeError> {
        let path = process.path.as_str();
        let plain = |image: String| Program {
            describe: image.clone(),
            image,
            command: vec![path.to_string()],
            ..Default::default()
        };
        match image {
            None => Ok(plain(self.helper_image.to_string())),
            Some(ImageSpec::Resource { type_, source, .. }) => {
                if type_ == "mock" && source.get("mirror_self") == Some(&Value::Bool(true)) {
                    // Concourse's mock gives its own image as the task's image: here, the one it runs in.
                    let describe = format!("{} (the mock resource type's own image)", self.helper_image);
                    return Ok(Program { describe, ..plain(self.helper_image.to_string()) });
                }
                if !IMAGE_TYPES.contains(&type_.as_str()) {
                    return Err(RuntimeError::Setup(format!(
                        "image_resource of type '{type_}': the Kubernetes runtime runs images of type {} only",
                        IMAGE_TYPES.join(" or ")
                    )));
                }
                Ok(plain(reference(source)?))
            }
            Some(ImageSpec::RootfsUri(uri)) => Ok(plain(rootfs_uri(uri)?)),
            Some(ImageSpec::Artifact(artifact)) => {
                let metadata = metadata.cloned().unwrap_or_default();
                let user = process.user.as_deref().or(metadata.user()).unwrap_or_default();
                let step_sets = |name: &str| process.env.iter().any(|(own, _)| own == name);
                let env: Vec<String> = metadata
                    .env()
                    .into_iter()
                    .filter(|(name, _)| !step_sets(name))
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                let mut args = vec![user.to_string(), path.to_string(), env.len().to_string()];
                args.extend(env);
                Ok(Program {
                    image: self.helper_image.to_string(),
                    command: sh(ENTER_IMAGE, args),
                    describe: format!(
                        "image artifact {} (its rootfs, entered from {})",
                        artifact.id, self.helper_image
                    ),
                    image_artifact: Some(artifact.clone()),
                    run_as: None,
                })
            }
            Some(ImageSpec::ResourceType(resource_type)) => {
                if let Some(nearest) = resource_type.custom.first() {
                    if !IMAGE_TYPES.contains(&nearest.type_.as_str()) {
                        return Err(RuntimeError::Setup(format!(
                            "resource type '{}' is of type '{}': on Kubernetes a custom type's image comes from a {} type",
                            nearest.name,
                            nearest.type_,
                            IMAGE_TYPES.join(" or ")
                        )));
                    }
                    let image = reference(&nearest.source)?;
                    let describe = format!("{image} (resource type {})", nearest.name);
                    return Ok(Program { describe, ..plain(image) });
                }
                let name = &resource_type.base_type;
                if let Some(image) = self.base_types.get(name) {
                    return Ok(Program { describe: format!("{image} (resource type {name})"), ..plain(image.clone()) });
                }
                if BUILTIN_TYPES.contains(&name.as_str()) {
                    let command = path.strip_prefix(RESOURCE_EXECUTABLES).ok_or_else(|| {
                        RuntimeError::Setup(format!(
                            "the image of resource type '{name}' only runs /opt/resource/check, in or out, not {path}"
                        ))
                    })?;
                    let command = [self.helper_atc, "resource", name, command].map(str::to_string).to_vec();
                    let describe = format!("{} (built-in resource type {name})", self.helper_image);
                    return Ok(Program { command, describe, ..plain(self.helper_image.to_string()) });
                }
                let mut known: Vec<&str> = self.base_types.keys().map(String::as_str).collect();
                known.extend(BUILTIN_TYPES);
                known.sort();
                known.dedup();
                Err(RuntimeError::Setup(format!(
                    "unknown resource type '{name}': the Kubernetes runtime knows {}",
                    known.join(", ")
                )))
            }
        }
    }
}

/// The uid a task's `run.user` names: a number, or `root`. Kubernetes
/// runs a container as a uid; a name would need the image's /etc/passwd.
fn uid(user: &str) -> Result<i64, RuntimeError> {
    match user {
        "root" => Ok(0),
        _ => user.parse().ok().filter(|uid| *uid >= 0).ok_or_else(|| {
            RuntimeError::Setup(format!(
                "run.user '{user}': the Kubernetes runtime runs a task's container as a numeric uid (or root); give the uid"
            ))
        }),
    }
}

/// `repository` with `digest` or `tag` (default `latest`) from a
/// registry-image or docker-image `source`.
fn reference(source: &Value) -> Result<String, RuntimeError> {
    let field = |name: &str| source.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
    let repository =
        field("repository").ok_or_else(|| RuntimeError::Setup("the image's source has no repository".into()))?;
    Ok(match (field("digest"), field("tag")) {
        (Some(digest), _) => format!("{repository}@{digest}"),
        (None, Some(tag)) => format!("{repository}:{tag}"),
        (None, None) => format!("{repository}:latest"),
    })
}

/// `docker:///REPOSITORY[#TAG]` as an image reference.
fn rootfs_uri(uri: &str) -> Result<String, RuntimeError> {
    let rest = uri.strip_prefix("docker:///").ok_or_else(|| {
        RuntimeError::Setup(format!("rootfs_uri '{uri}': the Kubernetes runtime takes docker:///REPOSITORY[#TAG] only"))
    })?;
    Ok(match rest.split_once('#') {
        Some((repository, tag)) => format!("{repository}:{tag}"),
        None => rest.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn image_sources_become_references() {
        assert_eq!(reference(&json!({"repository": "busybox"})).unwrap(), "busybox:latest");
        assert_eq!(reference(&json!({"repository": "r", "tag": "1"})).unwrap(), "r:1");
        assert_eq!(reference(&json!({"repository": "r", "tag": "1", "digest": "sha256:ab"})).unwrap(), "r@sha256:ab");
        assert!(reference(&json!({})).is_err());
        assert_eq!(rootfs_uri("docker:///alpine#3.20").unwrap(), "alpine:3.20");
        assert!(rootfs_uri("https://x").is_err());
    }

    fn process(path: &str) -> ProcessSpec {
        ProcessSpec {
            path: path.into(),
            args: Vec::new(),
            dir: String::new(),
            user: None,
            env: vec![("WHO".into(), "step".into())],
            stdin: None,
            stdout: crate::runtime::Stdout::Stream,
        }
    }

    #[test]
    fn an_artifact_image_is_entered_with_its_environment_below_the_steps() {
        let base_types = default_base_types();
        let images = Images { base_types: &base_types, helper_image: "helper", helper_atc: "/bin/atc" };
        let metadata = ImageMetadata::parse(br#"{"env": ["WHO=image", "PATH=/bin"], "user": "nobody"}"#).unwrap();
        let image = ImageSpec::Artifact(crate::runtime::Artifact { id: "task_1_img".into() });
        let program = images.program(Some(&image), &process("make"), Some(&metadata)).unwrap();
        assert_eq!(program.image, "helper");
        assert_eq!(program.image_artifact.map(|a| a.id).as_deref(), Some("task_1_img"));
        assert_eq!(program.command[4..], ["nobody", "make", "1", "PATH=/bin"]);
    }

    #[test]
    fn a_task_user_is_a_uid() {
        let base_types = default_base_types();
        let images = Images { base_types: &base_types, helper_image: "helper", helper_atc: "/bin/atc" };
        let as_user = |user: &str| {
            let process = ProcessSpec { user: Some(user.into()), ..process("make") };
            images.program(None, &process, None).map(|program| program.run_as)
        };
        assert_eq!(as_user("1000").unwrap(), Some(1000));
        assert_eq!(as_user("root").unwrap(), Some(0));
        let named = as_user("concourse").unwrap_err().to_string();
        assert!(named.contains("run.user 'concourse'") && named.contains("numeric uid"), "{named}");
        // Inside an artifact's root a name is looked up there.
        let image = ImageSpec::Artifact(crate::runtime::Artifact { id: "img".into() });
        let process = ProcessSpec { user: Some("concourse".into()), ..process("make") };
        assert_eq!(images.program(Some(&image), &process, None).unwrap().run_as, None);
    }

    #[test]
    fn built_in_types_run_atc_in_the_helper_image() {
        let base_types = default_base_types();
        let images = Images { base_types: &base_types, helper_image: "helper", helper_atc: "/bin/atc" };
        let program =
            images.program(Some(&ImageSpec::resource_type("mock")), &process("/opt/resource/check"), None).unwrap();
        assert_eq!(program.image, "helper");
        assert_eq!(program.command, ["/bin/atc", "resource", "mock", "check"]);
        let git = images.program(Some(&ImageSpec::resource_type("git")), &process("/opt/resource/in"), None).unwrap();
        assert_eq!((git.image.as_str(), git.command), ("concourse/git-resource", vec!["/opt/resource/in".to_string()]));
        let mirrored = ImageSpec::Resource {
            type_: "mock".into(),
            source: json!({"mirror_self": true}),
            params: json!({}),
            version: None,
        };
        let task = images.program(Some(&mirrored), &process("echo"), None).unwrap();
        assert_eq!((task.image.as_str(), task.command), ("helper", vec!["echo".to_string()]));
        let unknown = images.program(Some(&ImageSpec::resource_type("nope")), &process("/opt/resource/in"), None);
        assert!(matches!(unknown, Err(RuntimeError::Setup(m)) if m.contains("'nope'")));
    }
}
