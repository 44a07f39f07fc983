//! What the local runtime makes of a step's image. There are no containers:
//! processes run on the host. A resource type's image is reduced to its
//! three executables (`/opt/resource/{check,in,out}`), taken from
//! `--resource-types-dir` or from atc itself for the built-in types; an
//! image artifact contributes the environment of its `metadata.json` and any
//! `rootfs/opt/resource` executables; other images are noted in the log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::resource::builtin::BUILTIN_TYPES;
use crate::runtime::{ImageMetadata, ImageSpec, RuntimeError};

/// Where resource types' executables live on this host.
#[derive(Debug, Clone)]
pub struct ResourceTypes {
    /// `DIR/TYPE` for each `--resource-types-dir` type; these win over
    /// built-in types of the same name, so an operator can swap one in.
    pub from_dir: BTreeMap<String, PathBuf>,
    /// The `atc` executable that runs built-in types (`atc resource TYPE CMD`).
    pub atc_executable: PathBuf,
}

pub const RESOURCE_COMMANDS: [&str; 3] = ["check", "in", "out"];
const RESOURCE_EXECUTABLES_PREFIX: &str = "/opt/resource/";

/// `--resource-types-dir` could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", .dir.display())]
pub struct UnreadableTypesDir {
    pub dir: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl ResourceTypes {
    /// Blocking: lists `dir`. A type needs all three executables.
    pub fn scan(dir: Option<&Path>, atc_executable: PathBuf) -> Result<Self, UnreadableTypesDir> {
        let mut from_dir = BTreeMap::new();
        if let Some(dir) = dir {
            let entries =
                std::fs::read_dir(dir).map_err(|source| UnreadableTypesDir { dir: dir.to_path_buf(), source })?;
            for entry in entries.flatten() {
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                let missing: Vec<&str> =
                    RESOURCE_COMMANDS.iter().copied().filter(|command| !is_executable(&path.join(command))).collect();
                if missing.is_empty() {
                    from_dir.insert(entry.file_name().to_string_lossy().into_owned(), path);
                } else {
                    tracing::warn!(
                        resource_type = %path.display(),
                        "ignoring resource type: {} missing or not executable",
                        missing.join(", ")
                    );
                }
            }
        }
        Ok(ResourceTypes { from_dir, atc_executable })
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.from_dir.keys().cloned().collect();
        names.extend(BUILTIN_TYPES.iter().map(|name| name.to_string()));
        names.sort();
        names.dedup();
        names
    }

    /// The program and leading arguments that stand for `/opt/resource/COMMAND`
    /// of `resource_type`.
    fn executable(&self, resource_type: &str, command: &str) -> Result<(PathBuf, Vec<String>), RuntimeError> {
        if let Some(dir) = self.from_dir.get(resource_type) {
            return Ok((dir.join(command), Vec::new()));
        }
        if BUILTIN_TYPES.contains(&resource_type) {
            let args = vec!["resource".to_string(), resource_type.to_string(), command.to_string()];
            return Ok((self.atc_executable.clone(), args));
        }
        Err(RuntimeError::Setup(format!(
            "unknown resource type '{resource_type}': it is neither built in ({}) nor in --resource-types-dir",
            BUILTIN_TYPES.join(", ")
        )))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// How a step's process is started, given its image.
pub struct ResolvedProgram {
    pub program: PathBuf,
    pub leading_args: Vec<String>,
    /// The image's environment, below the step's own.
    pub image_env: Vec<(String, String)>,
    /// The image's default user, when it names one.
    pub image_user: Option<String>,
    /// A line for the step's log when the image cannot be honoured.
    pub notice: Option<String>,
    /// What stands for the image, when one was given and used.
    pub image: Option<String>,
}

/// Blocking when the image is an artifact (reads its `metadata.json`).
/// `artifact_dir` maps an artifact to its directory.
pub fn resolve(
    image: Option<&ImageSpec>,
    path: &str,
    types: &ResourceTypes,
    artifact_dir: impl Fn(&crate::runtime::Artifact) -> Result<PathBuf, RuntimeError>,
) -> Result<ResolvedProgram, RuntimeError> {
    let resource_command =
        path.strip_prefix(RESOURCE_EXECUTABLES_PREFIX).filter(|command| RESOURCE_COMMANDS.contains(command));
    let mut resolved = ResolvedProgram {
        program: PathBuf::from(path),
        leading_args: Vec::new(),
        image_env: Vec::new(),
        image_user: None,
        notice: None,
        image: None,
    };
    match image {
        None => {}
        Some(ImageSpec::ResourceType(image)) => {
            let name = &image.base_type;
            let command = resource_command.ok_or_else(|| {
                RuntimeError::Setup(format!(
                    "the image of resource type '{name}' only runs /opt/resource/check, in or out, not {path}"
                ))
            })?;
            // No images here: a custom type runs its base type's executables.
            (resolved.program, resolved.leading_args) = types.executable(name, command)?;
            let origin = if types.from_dir.contains_key(name) { "--resource-types-dir" } else { "built in" };
            resolved.image = Some(format!("resource type {name} ({origin})"));
        }
        Some(ImageSpec::Artifact(artifact)) => {
            let dir = artifact_dir(artifact)?;
            let metadata = ImageMetadata::parse(&std::fs::read(dir.join("metadata.json")).unwrap_or_default())?;
            resolved.image_env = metadata.env();
            resolved.image_user = metadata.user().map(str::to_string);
            let from_rootfs = resource_command.map(|command| dir.join("rootfs/opt/resource").join(command));
            resolved.image = Some(format!("image artifact {}", artifact.id));
            match from_rootfs {
                Some(executable) if is_executable(&executable) => resolved.program = executable,
                _ => {
                    resolved.notice = Some(
                        "atc: the image's root filesystem is not used by the local runtime (only its environment); running on the host"
                            .to_string(),
                    )
                }
            }
        }
        Some(ImageSpec::Resource { .. }) => {
            resolved.notice = Some("atc: image_resource is not used by the local runtime; running on the host".into());
        }
        Some(ImageSpec::RootfsUri(_)) => {
            resolved.notice = Some("atc: rootfs_uri is not used by the local runtime; running on the host".into());
        }
    }
    Ok(resolved)
}
