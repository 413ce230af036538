//! The image config as Docker and BuildKit write it. oci-spec's config type drops Docker's
//! fields (Healthcheck, OnBuild, Shell, ArgsEscaped), which images in the wild carry and
//! which kiln must keep when it builds on them, so this is our own type. Serialized through
//! [`ImageConfig::to_canonical_json`], keys sorted, so the same build gives the same digest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `{}`: the value type of ExposedPorts and Volumes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Docker's health check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", …]` or `["CMD-SHELL", "…"]`.
    #[serde(rename = "Test", default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// Nanoseconds; 0 means inherit.
    #[serde(rename = "Interval", default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    /// Nanoseconds.
    #[serde(rename = "Timeout", default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    /// Nanoseconds.
    #[serde(rename = "StartPeriod", default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    /// Nanoseconds.
    #[serde(rename = "StartInterval", default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    /// Consecutive failures needed to be unhealthy.
    #[serde(rename = "Retries", default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The `config` object: how a container runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    /// `USER`.
    #[serde(rename = "User", default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// `EXPOSE`.
    #[serde(
        rename = "ExposedPorts",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, Empty>,
    /// `ENV`, `KEY=value` in order.
    #[serde(rename = "Env", default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `ENTRYPOINT`; `Some(vec![])` is an explicit empty entrypoint.
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `VOLUME`.
    #[serde(
        rename = "Volumes",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub volumes: BTreeMap<String, Empty>,
    /// `WORKDIR`.
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    /// `LABEL`.
    #[serde(rename = "Labels", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `STOPSIGNAL`.
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    /// Docker: the Cmd/Entrypoint were already escaped (Windows); BuildKit sets it for
    /// shell-form commands on Linux too.
    #[serde(rename = "ArgsEscaped", default, skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    /// `HEALTHCHECK`.
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<Healthcheck>,
    /// `ONBUILD` triggers, as written after ONBUILD.
    #[serde(rename = "OnBuild", default, skip_serializing_if = "Vec::is_empty")]
    pub on_build: Vec<String>,
    /// `SHELL`.
    #[serde(rename = "Shell", default, skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<String>,
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// One history entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The instruction, as BuildKit writes it (`COPY . /app # buildkit`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// A comment (`buildkit.dockerfile.v0`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// True for config-only steps.
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_layer: bool,
}

/// The rootfs object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Uncompressed layer digests, base first.
    pub diff_ids: Vec<String>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// A whole image config (OCI `application/vnd.oci.image.config.v1+json` with Docker's fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `MAINTAINER`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// How to run it.
    #[serde(default)]
    pub config: RunConfig,
    /// The layers.
    #[serde(default)]
    pub rootfs: RootFs,
    /// One entry per step, base image's first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

impl ImageConfig {
    /// JSON with every object's keys sorted and no insignificant whitespace.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        // serde_json's Map is a BTreeMap (no preserve_order feature): going through Value
        // sorts every object's keys.
        let value = serde_json::to_value(self)?;
        serde_json::to_vec(&value)
    }

    /// The value of `KEY` in Env, if set.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.config.env.iter().rev().find_map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (k == key).then_some(v)
        })
    }

    /// Sets `KEY=value` in Env, replacing an earlier value in place (as Docker does).
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self
            .config
            .env
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(i) => self.config.env[i] = entry,
            None => self.config.env.push(entry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_skips_empty() {
        let mut c = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..ImageConfig::default()
        };
        c.set_env("PATH", "/bin");
        c.set_env("A", "1");
        c.set_env("PATH", "/usr/bin");
        let json = String::from_utf8(c.to_canonical_json().unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"architecture":"amd64","config":{"Env":["PATH=/usr/bin","A=1"]},"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}"#
        );
    }

    #[test]
    fn docker_fields_round_trip() {
        let json = r#"{"architecture":"amd64","os":"linux","config":{"Healthcheck":{"Test":["CMD","x"],"Interval":1000000000},"OnBuild":["RUN x"],"Shell":["/bin/sh","-c"],"ArgsEscaped":true},"rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#;
        let c: ImageConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.config.on_build, ["RUN x"]);
        let back: serde_json::Value =
            serde_json::from_slice(&c.to_canonical_json().unwrap()).unwrap();
        let orig: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back, orig);
    }
}
