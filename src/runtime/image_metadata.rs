//! `metadata.json` beside an image artifact's `rootfs/`, as image resources
//! write it (registry-image with `format: rootfs`): the image's environment
//! and default user, which a step using the artifact as its image
//! (`image:`) starts with.

use serde::Deserialize;

use super::RuntimeError;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ImageMetadata {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    user: Option<String>,
}

impl ImageMetadata {
    /// Reads `metadata.json`; an image without one (empty `bytes`) has none.
    pub fn parse(bytes: &[u8]) -> Result<ImageMetadata, RuntimeError> {
        if bytes.is_empty() {
            return Ok(ImageMetadata::default());
        }
        serde_json::from_slice(bytes)
            .map_err(|err| RuntimeError::Setup(format!("the image's metadata.json is not valid image metadata: {err}")))
    }

    /// `NAME=VALUE` entries as pairs, below the step's own environment.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    /// The image's default user, when it names one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref().filter(|user| !user.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_gives_environment_and_user() {
        let metadata = ImageMetadata::parse(br#"{"env": ["PATH=/bin", "A=b=c", "junk"], "user": "1000"}"#).unwrap();
        assert_eq!(metadata.env(), [("PATH".into(), "/bin".into()), ("A".into(), "b=c".into())]);
        assert_eq!(metadata.user(), Some("1000"));
        assert_eq!(ImageMetadata::parse(b"").unwrap(), ImageMetadata::default());
        assert!(ImageMetadata::parse(b"[1]").unwrap_err().to_string().contains("metadata.json"));
    }
}
