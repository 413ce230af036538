//! `RUN --mount=type=…,key=value,…`: BuildKit's mount options, defaults and errors.
//!
//! BuildKit reads a mount twice: at parse time it only splits the CSV and refuses variables
//! in `from`; at dispatch time it expands every value and builds the typed mount. Here
//! [`parse_mount`] is the second step (with an expander, or literally without one) and
//! [`precheck_mount`] the first.

use serde::Serialize;

use super::flags::Expander;
use super::{csv, strconv, suggest};

/// What is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A directory of the build context or another stage (read-only by default).
    Bind,
    /// A persistent cache directory.
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A secret file (or environment variable).
    Secret,
    /// An SSH agent socket.
    Ssh,
}

impl MountType {
    const ALL: [(&'static str, MountType); 5] = [
        ("bind", MountType::Bind),
        ("cache", MountType::Cache),
        ("tmpfs", MountType::Tmpfs),
        ("secret", MountType::Secret),
        ("ssh", MountType::Ssh),
    ];

    /// The lowercase name used in Dockerfiles.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("bind", |(n, _)| n)
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareMode {
    /// Concurrent writers share the directory.
    Shared,
    /// Each writer gets its own copy.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// SELinux relabeling of a bind mount (buildah's `relabel=`; BuildKit has no such option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Relabel {
    /// `z`: a label shared between containers.
    Shared,
    /// `Z`: a label private to this container.
    Private,
}

/// One typed `--mount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// `type=` (default `bind`).
    #[serde(rename = "type")]
    pub mount_type: MountType,
    /// `from=`: a stage or image to take the source from.
    pub from: Option<String>,
    /// `source=`/`src=`.
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`.
    pub target: Option<String>,
    /// `ro`/`rw`; when neither is given, true for bind, secret and ssh mounts.
    pub read_only: bool,
    /// `size=` of a tmpfs, in bytes.
    pub size_limit: Option<i64>,
    /// `id=`: the cache, secret or ssh id.
    pub id: Option<String>,
    /// `sharing=` of a cache.
    pub sharing: Option<ShareMode>,
    /// `required` for secret and ssh mounts: fail when it is not provided.
    pub required: bool,
    /// `env=` of a secret: expose it as this variable (empty means the default name).
    pub env: Option<String>,
    /// `mode=` (octal) for cache, secret and ssh mounts.
    pub mode: Option<u32>,
    /// `uid=` for cache, secret and ssh mounts.
    pub uid: Option<u32>,
    /// `gid=` for cache, secret and ssh mounts.
    pub gid: Option<u32>,
    /// `relabel=shared|private` of a bind mount.
    pub relabel: Option<Relabel>,
}

impl Mount {
    fn new() -> Self {
        Mount {
            mount_type: MountType::Bind,
            from: None,
            source: None,
            target: None,
            read_only: false,
            size_limit: None,
            id: None,
            sharing: None,
            required: false,
            env: None,
            mode: None,
            uid: None,
            gid: None,
            relabel: None,
        }
    }
}

/// Why a comma-separated option value (`--mount`, `--device`) was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    /// BuildKit's message.
    pub message: String,
    /// The `key=value` field it is about, when there is one.
    pub field: Option<String>,
    /// A suggestion or the accepted values.
    pub hint: Option<String>,
}

impl OptionError {
    pub(crate) fn new(message: impl Into<String>, field: Option<&str>) -> Self {
        OptionError {
            message: message.into(),
            field: field.map(str::to_owned),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

const ALL_KEYS: [&str; 20] = [
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
    "relabel",
];

fn split_fields(value: &str) -> Result<Vec<String>, OptionError> {
    csv::fields(value)
        .map_err(|e| OptionError::new(format!("failed to parse csv mounts: {e}"), None))
}

/// BuildKit's parse-time check of a `--mount` value: the CSV must split and `from` must not
/// use variables. Returns whether the value needs no expansion at all, in which case
/// [`parse_mount`] without an expander gives exactly what dispatch would.
pub fn precheck_mount(value: &str) -> Result<bool, OptionError> {
    let mut literal = true;
    for field in split_fields(value)? {
        let Some((key, v)) = field.split_once('=') else {
            continue;
        };
        if key.to_lowercase() == "from" && v.find('$').is_some_and(|i| i + 1 != v.len()) {
            return Err(OptionError::new(
                "'from' doesn't support variable expansion, define alias stage instead",
                Some(&field),
            ));
        }
        literal &= !v.contains(['$', '\'', '"', '\\', '`']);
    }
    Ok(literal)
}

/// Parses a `--mount` value into a typed mount. Values go through `expander` when given
/// (dispatch time); without one they are taken as written.
pub fn parse_mount(value: &str, expander: Option<Expander<'_>>) -> Result<Mount, OptionError> {
    let mut m = Mount::new();
    let mut ro_auto = true;
    for field in split_fields(value)? {
        let f = Some(field.as_str());
        let Some((key, raw)) = field.split_once('=') else {
            let key = field.to_lowercase();
            match key.as_str() {
                "readonly" | "ro" => (m.read_only, ro_auto) = (true, false),
                "readwrite" | "rw" => (m.read_only, ro_auto) = (false, false),
                "required" => m.required = secret_or_ssh(&m, &key, f)?,
                _ => {
                    return Err(OptionError::new(
                        format!("invalid field '{field}' must be a key=value pair"),
                        f,
                    ));
                }
            }
            continue;
        };
        let key = key.to_lowercase();
        let v = match expander {
            Some(expand) => expand(raw).map_err(|e| OptionError::new(e, f))?,
            None => raw.to_owned(),
        };
        let invalid = || OptionError::new(format!("invalid value for {key}: {v}"), f);
        let set = |v: &str| Some(v.to_owned()).filter(|s| !s.is_empty());
        match key.as_str() {
            "type" => m.mount_type = mount_type(&v, f)?,
            "from" => m.from = set(&v),
            "source" | "src" => m.source = set(&v),
            "target" | "dst" | "destination" => m.target = set(&v),
            "readonly" | "ro" => {
                m.read_only = strconv::parse_bool(&v).ok_or_else(invalid)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !strconv::parse_bool(&v).ok_or_else(invalid)?;
                ro_auto = false;
            }
            "required" => {
                secret_or_ssh(&m, &key, f)?;
                m.required = strconv::parse_bool(&v).ok_or_else(invalid)?;
            }
            "size" => {
                if m.mount_type != MountType::Tmpfs {
                    return Err(unexpected_for_type(&key, &m, f));
                }
                m.size_limit = Some(ram_in_bytes(&v).ok_or_else(invalid)?);
            }
            "id" => m.id = set(&v),
            "sharing" => m.sharing = Some(share_mode(&v, f)?),
            "mode" => m.mode = Some(number(&v, 8, "mode", f)?),
            "uid" => m.uid = Some(number(&v, 10, "uid", f)?),
            "gid" => m.gid = Some(number(&v, 10, "gid", f)?),
            "env" => m.env = Some(v),
            "relabel" => {
                if m.mount_type != MountType::Bind {
                    return Err(unexpected_for_type(&key, &m, f));
                }
                m.relabel = Some(relabel(&v, f)?);
            }
            _ => {
                let mut err = OptionError::new(format!("unexpected key '{key}' in '{field}'"), f);
                if let Some(s) = suggest::closest(&key, &ALL_KEYS) {
                    err = err.hint(format!("did you mean {s}?"));
                }
                return Err(err);
            }
        }
    }
    validate(&mut m, ro_auto)?;
    Ok(m)
}

fn secret_or_ssh(m: &Mount, key: &str, field: Option<&str>) -> Result<bool, OptionError> {
    match m.mount_type {
        MountType::Secret | MountType::Ssh => Ok(true),
        _ => Err(unexpected_for_type(key, m, field)),
    }
}

fn unexpected_for_type(key: &str, m: &Mount, field: Option<&str>) -> OptionError {
    let t = m.mount_type.as_str();
    OptionError::new(
        format!("unexpected key '{key}' for mount type '{t}'"),
        field,
    )
}

fn mount_type(v: &str, field: Option<&str>) -> Result<MountType, OptionError> {
    let lower = v.to_lowercase();
    if let Some((_, t)) = MountType::ALL.iter().find(|(n, _)| *n == lower) {
        return Ok(*t);
    }
    let names: Vec<&str> = MountType::ALL.iter().map(|(n, _)| *n).collect();
    Err(unsupported("mount type", v, field, &names))
}

fn share_mode(v: &str, field: Option<&str>) -> Result<ShareMode, OptionError> {
    match v.to_lowercase().as_str() {
        "shared" => Ok(ShareMode::Shared),
        "private" => Ok(ShareMode::Private),
        "locked" => Ok(ShareMode::Locked),
        _ => Err(unsupported(
            "sharing value",
            v,
            field,
            &["shared", "private", "locked"],
        )),
    }
}

fn relabel(v: &str, field: Option<&str>) -> Result<Relabel, OptionError> {
    match v {
        "shared" => Ok(Relabel::Shared),
        "private" => Ok(Relabel::Private),
        _ => Err(unsupported(
            "relabel value",
            v,
            field,
            &["shared", "private"],
        )),
    }
}

fn unsupported(what: &str, v: &str, field: Option<&str>, names: &[&str]) -> OptionError {
    let quoted = crate::parser::go_quote(v);
    let err = OptionError::new(format!("unsupported {what} {quoted}"), field);
    match suggest::closest(v, names) {
        Some(s) => err.hint(format!("did you mean {s}?")),
        None => err.hint(format!("one of: {}", names.join(", "))),
    }
}

fn number(v: &str, radix: u32, what: &str, field: Option<&str>) -> Result<u32, OptionError> {
    strconv::parse_uint(v, radix, 32)
        .ok()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| OptionError::new(format!("invalid value {v} for {what}"), field))
}

/// go-units' `RAMInBytes`: a decimal number, an optional space, then an optional binary unit
/// prefix (`k m g t p`, any case) optionally followed by `i` and/or `b`.
fn ram_in_bytes(s: &str) -> Option<i64> {
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(num_end);
    // Go's pattern is `\d+(\.\d+)*`: digits, then dot-separated digit groups.
    if num.split('.').any(|part| part.is_empty()) {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let shift = match chars.peek().map(char::to_ascii_lowercase) {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            chars.next();
            10 * (1 + "kmgtp".find(c).unwrap_or(0))
        }
        _ => 0,
    };
    if chars.peek().is_some_and(|c| matches!(c, 'i' | 'I')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| matches!(c, 'b' | 'B')) {
        chars.next();
    }
    if chars.next().is_some() {
        return None;
    }
    // Go converts the float with int64(), truncating toward zero.
    Some((value * (1u64 << shift) as f64) as i64)
}

fn validate(m: &mut Mount, ro_auto: bool) -> Result<(), OptionError> {
    let t = m.mount_type.as_str();
    if !matches!(
        m.mount_type,
        MountType::Secret | MountType::Ssh | MountType::Cache
    ) {
        for (what, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(OptionError::new(
                    format!("{what} not allowed for \"{t}\" type mounts"),
                    None,
                ));
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.mount_type, MountType::Cache | MountType::Tmpfs);
    }
    if m.mount_type == MountType::Secret {
        if m.from.is_some() {
            return Err(OptionError::new(
                "secret mount should not have a from",
                None,
            ));
        }
        if m.sharing.is_some() {
            return Err(OptionError::new(
                "secret mount should not define sharing",
                None,
            ));
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err(OptionError::new(
                "invalid secret mount. one of source, target required",
                None,
            ));
        }
        if m.source.is_some() && m.id.is_some() {
            return Err(OptionError::new("both source and id can't be set", None));
        }
    }
    if m.sharing.is_some() && m.mount_type != MountType::Cache {
        return Err(OptionError::new(
            format!("invalid cache sharing set for {t} mount"),
            None,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<Mount, String> {
        parse_mount(v, None).map_err(|e| e.message)
    }

    #[test]
    fn defaults_per_type() {
        let m = parse("target=/x").unwrap();
        assert_eq!((m.mount_type, m.read_only), (MountType::Bind, true));
        let m = parse("type=cache,target=/x").unwrap();
        assert_eq!((m.mount_type, m.read_only), (MountType::Cache, false));
        let m = parse("type=tmpfs,target=/foo/").unwrap();
        assert!(!m.read_only);
        let m = parse("type=secret,id=tok").unwrap();
        assert!(m.read_only);
        let m = parse("type=bind,rw,dst=/a,src=b").unwrap();
        assert!(!m.read_only);
        assert_eq!(m.source.as_deref(), Some("b"));
    }

    #[test]
    fn every_option() {
        let m = parse(
            "type=cache,id=c,sharing=LOCKED,mode=0755,uid=1,gid=2,from=base,source=/s,target=/t,ro=false",
        )
        .unwrap();
        assert_eq!(m.sharing, Some(ShareMode::Locked));
        assert_eq!((m.mode, m.uid, m.gid), (Some(0o755), Some(1), Some(2)));
        assert_eq!(m.id.as_deref(), Some("c"));
        let m = parse("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(m.size_limit, Some(64 << 20));
        let m = parse("type=secret,id=a,env=TOKEN,required").unwrap();
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        assert!(m.required);
        let m = parse("type=ssh,required=true").unwrap();
        assert!(m.required);
        let m = parse("type=bind,source=a,target=/b,relabel=private").unwrap();
        assert_eq!(m.relabel, Some(Relabel::Private));
    }

    #[test]
    fn buildkit_errors() {
        for (v, want) in [
            ("type=foo", "unsupported mount type \"foo\""),
            ("type=cache,sharing=x", "unsupported sharing value \"x\""),
            (
                "type=bind,mode=0700",
                "mode not allowed for \"bind\" type mounts",
            ),
            (
                "type=tmpfs,uid=1",
                "uid not allowed for \"tmpfs\" type mounts",
            ),
            ("type=cache,mode=9", "invalid value 9 for mode"),
            ("type=cache,gid=-1", "invalid value -1 for gid"),
            (
                "required,type=secret",
                "unexpected key 'required' for mount type 'bind'",
            ),
            (
                "type=cache,size=1m",
                "unexpected key 'size' for mount type 'cache'",
            ),
            ("type=tmpfs,size=lots", "invalid value for size: lots"),
            ("ro=maybe", "invalid value for ro: maybe"),
            ("foo", "invalid field 'foo' must be a key=value pair"),
            (
                "type=bind,tagret=/x",
                "unexpected key 'tagret' in 'tagret=/x'",
            ),
            (
                "type=secret",
                "invalid secret mount. one of source, target required",
            ),
            (
                "type=secret,id=a,from=b",
                "secret mount should not have a from",
            ),
            (
                "type=secret,id=a,sharing=shared",
                "secret mount should not define sharing",
            ),
            (
                "type=secret,id=a,source=b",
                "both source and id can't be set",
            ),
            (
                "type=bind,sharing=shared",
                "invalid cache sharing set for bind mount",
            ),
            (
                "type=cache,relabel=shared",
                "unexpected key 'relabel' for mount type 'cache'",
            ),
        ] {
            assert_eq!(parse(v).unwrap_err(), want, "{v}");
        }
        let e = parse_mount("type=bind,tagret=/x", None).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean target?"));
        assert_eq!(e.field.as_deref(), Some("tagret=/x"));
    }

    #[test]
    fn precheck_is_buildkits_parse_time_check() {
        assert_eq!(precheck_mount("type=bind,target=/x"), Ok(true));
        assert_eq!(precheck_mount("type=bind,target=$T"), Ok(false));
        assert_eq!(precheck_mount("type=bind,from=a$"), Ok(false));
        assert_eq!(
            precheck_mount("from=$STAGE").unwrap_err().message,
            "'from' doesn't support variable expansion, define alias stage instead"
        );
        assert!(
            precheck_mount("a\"b")
                .unwrap_err()
                .message
                .starts_with("failed to parse csv mounts: parse error")
        );
    }

    #[test]
    fn expander_applies_to_values() {
        let exp = |s: &str| Ok(s.replace("$T", "/cache"));
        let m = parse_mount("type=cache,target=$T", Some(&exp)).unwrap();
        assert_eq!(m.target.as_deref(), Some("/cache"));
        let fail = |_: &str| Err("boom".to_owned());
        assert_eq!(
            parse_mount("target=$X", Some(&fail)).unwrap_err().message,
            "boom"
        );
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(ram_in_bytes("32"), Some(32));
        assert_eq!(ram_in_bytes("1.5k"), Some(1536));
        assert_eq!(ram_in_bytes("2 GiB"), Some(2 << 30));
        assert_eq!(ram_in_bytes("1KB"), Some(1024));
        assert_eq!(ram_in_bytes("k"), None);
        assert_eq!(ram_in_bytes("1x"), None);
        assert_eq!(ram_in_bytes("1..2"), None);
    }
}
