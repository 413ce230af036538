//! The image config as Docker and BuildKit write it. oci-spec's config type drops Docker's
//! fields (Healthcheck, OnBuild, Shell, ArgsEscaped), which images in the wild carry and
//! which kiln must keep when it builds on them, so this is our own type. Serialized through
//! [`ImageConfig::to_canonical_json`], keys sorted, so the same build gives the same digest.
//!
//! Read as registries serve it: every optional field may be `null` or absent (BuildKit writes
//! `"OnBuild": null`, Docker's classic builder `"Volumes": null`, `docker import` `"Env": null`),
//! and fields kiln does not know are kept in `extra` and written back, so a base's config
//! passes on what kiln has no opinion about. Only the bookkeeping of how the base itself was
//! built ([`BASE_BUILD_FIELDS`]) is dropped when kiln builds on it.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Top-level fields describing how an image itself was built (Docker's classic builder,
/// BuildKit's build info and inline cache): true of the base, false of an image built on it.
pub const BASE_BUILD_FIELDS: [&str; 7] = [
    "container",
    "container_config",
    "docker_version",
    "id",
    "parent",
    "moby.buildkit.buildinfo.v1",
    "moby.buildkit.cache.v0",
];

/// Deserializes `null` as the type's default, for fields writers leave `null`.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `{}`: the value type of ExposedPorts and Volumes (anything else, `null` included, reads
/// as `{}` too: only the keys mean something).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Empty {}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Empty {})
    }
}

/// Docker's health check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", …]` or `["CMD-SHELL", "…"]`.
    #[serde(
        rename = "Test",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    /// Nanoseconds; 0 means inherit.
    #[serde(
        rename = "Interval",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub interval: i64,
    /// Nanoseconds.
    #[serde(
        rename = "Timeout",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub timeout: i64,
    /// Nanoseconds.
    #[serde(
        rename = "StartPeriod",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub start_period: i64,
    /// Nanoseconds.
    #[serde(
        rename = "StartInterval",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub start_interval: i64,
    /// Consecutive failures needed to be unhealthy.
    #[serde(
        rename = "Retries",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The `config` object: how a container runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    /// `USER`.
    #[serde(
        rename = "User",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub user: String,
    /// `EXPOSE`.
    #[serde(
        rename = "ExposedPorts",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, Empty>,
    /// `ENV`, `KEY=value` in order.
    #[serde(
        rename = "Env",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
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
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub volumes: BTreeMap<String, Empty>,
    /// `WORKDIR`.
    #[serde(
        rename = "WorkingDir",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    /// `LABEL`.
    #[serde(
        rename = "Labels",
        default,
        deserialize_with = "null_labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// `STOPSIGNAL`.
    #[serde(
        rename = "StopSignal",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    /// Docker: the Cmd/Entrypoint were already escaped (Windows); BuildKit sets it for
    /// shell-form commands on Linux too.
    #[serde(
        rename = "ArgsEscaped",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub args_escaped: bool,
    /// `HEALTHCHECK`.
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<Healthcheck>,
    /// `ONBUILD` triggers, as written after ONBUILD.
    #[serde(
        rename = "OnBuild",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub on_build: Vec<String>,
    /// `SHELL`.
    #[serde(
        rename = "Shell",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub shell: Vec<String>,
    /// Fields kiln does not model (`Hostname`, `StopTimeout`, …), kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Labels, with a `null` map or a `null` value read as empty.
fn null_labels<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: Option<BTreeMap<String, Option<String>>> = Option::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
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
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub created_by: String,
    /// A comment (`buildkit.dockerfile.v0`).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub comment: String,
    /// True for config-only steps.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub empty_layer: bool,
    /// Fields kiln does not model (`author`, …), kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The rootfs object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type", default = "layers", deserialize_with = "null_layers")]
    pub kind: String,
    /// Uncompressed layer digests, base first.
    #[serde(default, deserialize_with = "null_default")]
    pub diff_ids: Vec<String>,
}

fn layers() -> String {
    "layers".to_owned()
}

fn null_layers<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_else(layers))
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: layers(),
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
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub author: String,
    /// CPU architecture (empty when the config names none; a reader decides what that means).
    #[serde(default, deserialize_with = "null_default")]
    pub architecture: String,
    /// Operating system.
    #[serde(default, deserialize_with = "null_default")]
    pub os: String,
    /// CPU variant.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub variant: String,
    /// How to run it.
    #[serde(default, deserialize_with = "null_default")]
    pub config: RunConfig,
    /// The layers.
    #[serde(default, deserialize_with = "null_default")]
    pub rootfs: RootFs,
    /// One entry per step, base image's first.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
    /// Fields kiln does not model (`os.version`, `os.features`, …), kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ImageConfig {
    /// The config of an image built on this one: what describes how this image itself was
    /// built ([`BASE_BUILD_FIELDS`]) is dropped.
    pub fn for_derived_image(mut self) -> Self {
        for field in BASE_BUILD_FIELDS {
            self.extra.remove(field);
        }
        self
    }

    /// Makes `history` line up with `layers` layers, as BuildKit's exporter does: entries
    /// claiming more layers than exist become empty-layer ones (from the bottom up), and
    /// layers without an entry get one (`created_by` empty) at the end.
    pub fn align_history(&mut self, layers: usize) {
        let mut counted = 0;
        for h in &mut self.history {
            if counted >= layers {
                h.empty_layer = true;
            }
            if !h.empty_layer {
                counted += 1;
            }
        }
        if self.history.is_empty() && layers == 0 {
            return;
        }
        for _ in counted..layers {
            self.history.push(History {
                created: self.created.clone(),
                ..History::default()
            });
        }
    }

    /// Fills in the times BuildKit's image exporter fills, so the same steps make the same
    /// image: an entry with a layer and no time takes its layer's (`layer_times`, one per
    /// layer with an entry, base first: when the step that made it first ran); an entry still
    /// without one takes the first new layer's time if it comes before it, else the time of the
    /// entry before it; the image's `created`, when unset, is the last entry's. With `epoch`
    /// (`SOURCE_DATE_EPOCH`) no time is later than it, base image entries included.
    pub fn stamp_times(&mut self, layer_times: &[Option<String>], epoch: Option<i64>) {
        let mut layer = 0;
        for h in &mut self.history {
            if h.empty_layer {
                continue;
            }
            if h.created.is_none() {
                h.created = layer_times.get(layer).cloned().flatten();
            }
            layer += 1;
        }
        // BuildKit's `normalizeLayersAndHistory`: the first time after an entry without one
        // (else the last time) fills the gaps before it; after the first gap each timed entry
        // is what the following gaps take.
        let mut fill = None;
        let mut gap = false;
        for h in &self.history {
            match &h.created {
                Some(t) => {
                    fill = Some(t.clone());
                    if gap {
                        break;
                    }
                }
                None => gap = true,
            }
        }
        gap = false;
        for h in &mut self.history {
            match &h.created {
                Some(t) if gap => fill = Some(t.clone()),
                Some(_) => {}
                None => {
                    gap = true;
                    h.created.clone_from(&fill);
                }
            }
        }
        if let Some(epoch) = epoch {
            let clamp = |t: &mut Option<String>| {
                let later = t
                    .as_deref()
                    .is_none_or(|t| crate::time::parse_rfc3339(t).is_none_or(|s| s > epoch));
                if later {
                    *t = Some(crate::time::rfc3339(epoch));
                }
            };
            self.history.iter_mut().for_each(|h| clamp(&mut h.created));
            if self.created.is_some() {
                clamp(&mut self.created);
            }
        }
        if self.created.is_none() {
            self.created = self.history.iter().rev().find_map(|h| h.created.clone());
        }
    }

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

    fn entry(created: Option<&str>, layer: bool) -> History {
        History {
            created: created.map(str::to_owned),
            empty_layer: !layer,
            ..History::default()
        }
    }

    fn times(c: &ImageConfig) -> Vec<Option<&str>> {
        c.history.iter().map(|h| h.created.as_deref()).collect()
    }

    #[test]
    fn times_follow_buildkits_exporter() {
        let base = "2020-01-01T00:00:00Z";
        let mut c = ImageConfig {
            history: vec![
                entry(Some(base), true),
                entry(None, false), // ENV before the first new layer
                entry(None, true),  // RUN, made at t1
                entry(None, false), // LABEL
                entry(None, true),  // COPY, made at t2
                entry(None, false), // CMD
            ],
            ..ImageConfig::default()
        };
        let t1 = "2026-01-01T00:00:01Z";
        let t2 = "2026-01-01T00:00:02Z";
        let layer_times = [None, Some(t1.to_owned()), Some(t2.to_owned())];
        c.stamp_times(&layer_times, None);
        assert_eq!(
            times(&c),
            [Some(base), Some(t1), Some(t1), Some(t1), Some(t2), Some(t2)]
        );
        assert_eq!(c.created.as_deref(), Some(t2));

        // An epoch clamps every later time, the base's too, and the image's.
        let mut c = ImageConfig {
            history: vec![entry(Some(base), true), entry(None, true)],
            ..ImageConfig::default()
        };
        c.stamp_times(&[None, Some(t1.to_owned())], Some(0));
        let epoch = "1970-01-01T00:00:00Z";
        assert_eq!(times(&c), [Some(epoch), Some(epoch)]);
        assert_eq!(c.created.as_deref(), Some(epoch));

        // Base history alone: the image keeps the base's last time.
        let mut c = ImageConfig {
            history: vec![entry(Some(base), true)],
            ..ImageConfig::default()
        };
        c.stamp_times(&[None], None);
        assert_eq!(c.created.as_deref(), Some(base));
    }

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

    #[test]
    fn nulls_read_as_absent_and_unknown_fields_survive() {
        // What BuildKit, docker's classic builder, `docker import` and buildah write.
        let json = r#"{
            "architecture": "amd64", "os": "linux", "author": null, "created": null,
            "os.version": "10.0", "docker_version": "20.10.24",
            "container_config": {"Hostname": "x", "Cmd": null},
            "config": {"Env": null, "Cmd": null, "Entrypoint": null, "OnBuild": null,
                       "Volumes": null, "Labels": {"a": null, "b": "c"}, "ExposedPorts": null,
                       "Shell": null, "User": null, "WorkingDir": null, "Healthcheck": null,
                       "Hostname": "abc", "StopTimeout": 5, "Volumes2": {"/v": null}},
            "rootfs": {"type": "layers", "diff_ids": null},
            "history": [{"created": null, "created_by": null, "comment": null,
                         "empty_layer": null, "author": "me"}]
        }"#;
        let c: ImageConfig = serde_json::from_str(json).unwrap();
        assert!(c.config.env.is_empty() && c.config.on_build.is_empty());
        assert_eq!(c.config.labels["a"], "");
        assert_eq!(c.config.extra["StopTimeout"], 5);
        assert_eq!(c.history[0].extra["author"], "me");
        assert_eq!(c.extra["os.version"], "10.0");
        let derived = c.for_derived_image();
        assert!(!derived.extra.contains_key("container_config"));
        assert!(!derived.extra.contains_key("docker_version"));
        let out: serde_json::Value =
            serde_json::from_slice(&derived.to_canonical_json().unwrap()).unwrap();
        assert_eq!(out["os.version"], "10.0");
        assert_eq!(out["config"]["Hostname"], "abc");

        for config in [
            r#"{"config": null}"#,
            r#"{}"#,
            r#"{"rootfs": null, "history": null}"#,
        ] {
            let c: ImageConfig = serde_json::from_str(config).unwrap();
            assert_eq!(c.rootfs.kind, "layers", "{config}");
        }
        let v: RunConfig =
            serde_json::from_str(r#"{"Volumes": {"/data": {}, "/x": null}}"#).unwrap();
        assert_eq!(v.volumes.len(), 2);
    }

    #[test]
    fn history_is_aligned_with_layers() {
        let entry = |layer: bool| History {
            created_by: "x".into(),
            empty_layer: !layer,
            ..History::default()
        };
        let mut none = ImageConfig::default();
        none.align_history(2);
        assert_eq!(none.history.len(), 2);
        assert!(none.history.iter().all(|h| !h.empty_layer));

        let mut too_many = ImageConfig {
            history: vec![entry(true), entry(false), entry(true), entry(true)],
            ..ImageConfig::default()
        };
        too_many.align_history(2);
        let layers: Vec<bool> = too_many.history.iter().map(|h| !h.empty_layer).collect();
        assert_eq!(layers, [true, false, true, false]);

        let mut scratch = ImageConfig::default();
        scratch.align_history(0);
        assert!(scratch.history.is_empty());
    }
}
