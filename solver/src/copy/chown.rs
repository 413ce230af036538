//! `--chown=user[:group]`: numbers as they are, names looked up in the destination's
//! `/etc/passwd` and `/etc/group`.
//!
//! The rules are BuildKit's (`llb.WithUser` and the file op's `readUser`): `root` is 0
//! without a lookup; a user given alone, by number, also gives the group (`1000` is
//! 1000:1000); a user given alone, by name, gives the group of its passwd entry; a user name
//! the image does not have is 0:0, and a group name it does not have leaves the gid the user
//! gave. (kiln once refused unknown names as the classic builder did; BuildKit decides, and
//! `WORKDIR` after `USER someone-not-in-the-image` builds there.)

use std::fs;
use std::path::Path;

use super::error::CopyError;
use super::source::{self, SourceTree};

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";

/// Resolves a `--chown` value to (uid, gid), reading names from `rootfs` (the stage's
/// filesystem the files are copied into).
pub fn resolve_chown(spec: &str, rootfs: Option<&Path>) -> Result<(u32, u32), CopyError> {
    let invalid = |reason| CopyError::InvalidChown {
        spec: spec.to_owned(),
        reason,
    };
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group).filter(|g| !g.is_empty())),
        None => (spec, None),
    };
    if user.is_empty() {
        return Err(invalid("the user is empty"));
    }
    let (uid, mut gid) = match numeric_id(user) {
        Some(id) => (id, id),
        None => lookup(rootfs, PASSWD, user)?
            .map_or((0, 0), |entry| (field_id(&entry, 2), field_id(&entry, 3))),
    };
    if let Some(group) = group {
        match numeric_id(group) {
            Some(id) => gid = id,
            None => {
                if let Some(entry) = lookup(rootfs, GROUP, group)? {
                    gid = field_id(&entry, 2);
                }
            }
        }
    }
    Ok((uid, gid))
}

/// The uid and gid a RUN step runs as for `USER spec`, as BuildKit's executor finds them
/// (`oci.GetUser`, then moby/sys/user's `GetExecUser`) — stricter than `--chown`: numbers
/// `uid:gid` as they are; a user by name must be in /etc/passwd (the first entry wins) and
/// gives its group; a uid that is not in it runs with gid 0; a group by name must be in
/// /etc/group, a gid need not be.
pub(crate) fn exec_user(rootfs: Option<&Path>, spec: &str) -> Result<(u32, u32), CopyError> {
    if spec.is_empty() {
        return Ok((0, 0));
    }
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    if let (Some(uid), Some(gid)) = (numeric_id(user), group.and_then(numeric_id)) {
        return Ok((uid, gid));
    }
    let uid_arg = exec_id(user);
    let entry = entries(rootfs, PASSWD)?.find(|fields| match uid_arg {
        Some(uid) => fields.get(2).and_then(|f| f.trim().parse().ok()) == Some(uid),
        None => fields.first().is_some_and(|n| n == user),
    });
    let (uid, mut gid) = match (entry, uid_arg) {
        (Some(entry), _) => (field_id(&entry, 2), field_id(&entry, 3)),
        (None, Some(uid)) => (uid, 0),
        (None, None) => {
            return Err(CopyError::UnknownRunUser {
                kind: "user",
                name: user.to_owned(),
                file: "passwd",
            });
        }
    };
    if let Some(group) = group.filter(|g| !g.is_empty()) {
        let gid_arg = exec_id(group);
        let found = entries(rootfs, GROUP)?.find(|fields| match gid_arg {
            Some(gid) => fields.get(2).and_then(|f| f.trim().parse().ok()) == Some(gid),
            None => fields.first().is_some_and(|n| n == group),
        });
        gid = match (found, gid_arg) {
            (Some(entry), _) => field_id(&entry, 2),
            (None, Some(gid)) => gid,
            (None, None) => {
                return Err(CopyError::UnknownRunUser {
                    kind: "group",
                    name: group.to_owned(),
                    file: "group",
                });
            }
        };
    }
    Ok((uid, gid))
}

/// `GetExecUser`'s numbers: Go's `Atoi`, within the ids it accepts (0 to 2^31 - 1).
fn exec_id(text: &str) -> Option<u32> {
    let n: i64 = text.parse().ok()?;
    u32::try_from(n).ok().filter(|&id| id <= i32::MAX as u32)
}

/// BuildKit's `parseUID`: `root`, or a decimal that fits in 32 bits.
fn numeric_id(text: &str) -> Option<u32> {
    if text == "root" {
        return Some(0);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The colon-separated fields of the first line of `file` whose name is `name`, or `None`
/// when the file or the name is missing (both are "not found" to BuildKit).
fn lookup(rootfs: Option<&Path>, file: &str, name: &str) -> Result<Option<Vec<String>>, CopyError> {
    Ok(entries(rootfs, file)?.find(|fields| fields.first().is_some_and(|n| n == name)))
}

/// The passwd entry of `uid` in `rootfs` (the first, as runc reads it), if any.
pub(crate) fn passwd_by_uid(
    rootfs: Option<&Path>,
    uid: u32,
) -> Result<Option<Vec<String>>, CopyError> {
    Ok(entries(rootfs, PASSWD)?
        .find(|fields| fields.get(2).and_then(|f| f.trim().parse().ok()) == Some(uid)))
}

/// The supplementary groups BuildKit gives `USER spec`: with no explicit group, the gids of the
/// groups whose member list names the user's passwd entry (found by name, or by uid for a
/// number; root's for an empty spec), in file order; none when a group is given.
pub(crate) fn supplementary_gids(rootfs: Option<&Path>, spec: &str) -> Result<Vec<u32>, CopyError> {
    if spec.contains(':') {
        return Ok(Vec::new());
    }
    let user = if spec.is_empty() { "0" } else { spec };
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd_by_uid(rootfs, uid)?,
        Err(_) => lookup(rootfs, PASSWD, user)?,
    };
    let Some(name) = entry.and_then(|fields| fields.first().cloned()) else {
        return Ok(Vec::new());
    };
    Ok(entries(rootfs, GROUP)?
        .filter(|g| {
            g.get(3)
                .is_some_and(|members| members.split(',').any(|m| m.trim() == name))
        })
        .filter_map(|g| g.get(2)?.trim().parse().ok())
        .collect())
}

/// The entries of a passwd-style `file` of `rootfs`, each split into its fields; none when
/// there is no filesystem or no such file.
fn entries(
    rootfs: Option<&Path>,
    file: &str,
) -> Result<std::vec::IntoIter<Vec<String>>, CopyError> {
    let Some(rootfs) = rootfs else {
        return Ok(Vec::new().into_iter());
    };
    // Symlinks in the image (/etc -> ...) are followed inside it, never on the host.
    let tree = SourceTree {
        root: rootfs,
        ignore: None,
        ignore_has_exceptions: false,
        is_context: false,
    };
    let Some(found) = source::lookup(&tree, file)? else {
        return Ok(Vec::new().into_iter());
    };
    if !found.meta.is_file() {
        return Ok(Vec::new().into_iter());
    }
    let text = fs::read(&found.abs).map_err(CopyError::io("read", &found.abs))?;
    let text = String::from_utf8_lossy(&text);
    let fields: Vec<Vec<String>> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    Ok(fields.into_iter())
}

/// A numeric field; runc's parser (which BuildKit uses) reads a bad number as 0.
fn field_id(fields: &[String], index: usize) -> u32 {
    fields
        .get(index)
        .and_then(|f| f.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::test_support::Scratch;

    #[test]
    fn numbers_need_no_filesystem() {
        assert_eq!(resolve_chown("1000", None).unwrap(), (1000, 1000));
        assert_eq!(resolve_chown("1000:50", None).unwrap(), (1000, 50));
        assert_eq!(resolve_chown("root", None).unwrap(), (0, 0));
        assert_eq!(resolve_chown("root:root", None).unwrap(), (0, 0));
        assert_eq!(resolve_chown("7:", None).unwrap(), (7, 7));
    }

    #[test]
    fn names_come_from_the_destination() {
        let scratch = Scratch::new("chown-names");
        scratch.file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1001:1002::/home/app:/bin/sh\n",
        );
        scratch.file("etc/group", "root:x:0:\nstaff:x:50:app\n");
        let root = Some(scratch.path());
        assert_eq!(resolve_chown("app", root).unwrap(), (1001, 1002));
        assert_eq!(resolve_chown("app:staff", root).unwrap(), (1001, 50));
        assert_eq!(resolve_chown("0:staff", root).unwrap(), (0, 50));
        assert_eq!(resolve_chown("app:7", root).unwrap(), (1001, 7));

        // Names the image lacks are BuildKit's zero: the user 0:0, the group left as it was.
        assert_eq!(resolve_chown("nobody", root).unwrap(), (0, 0));
        assert_eq!(resolve_chown("nobody:staff", root).unwrap(), (0, 50));
        assert_eq!(resolve_chown("app:wheel", root).unwrap(), (1001, 1002));
        assert_eq!(resolve_chown("7:wheel", root).unwrap(), (7, 7));
    }

    #[test]
    fn run_users_are_found_as_buildkit_finds_them() {
        let scratch = Scratch::new("exec-user");
        scratch.file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        );
        scratch.file("etc/group", "root:x:0:\nstaff:x:50:app\n");
        let root = Some(scratch.path());
        assert_eq!(exec_user(root, "").unwrap(), (0, 0));
        assert_eq!(exec_user(root, "app").unwrap(), (1000, 1001));
        assert_eq!(exec_user(root, "1000").unwrap(), (1000, 1001));
        // A uid the image does not know runs with gid 0, not its own number.
        assert_eq!(exec_user(root, "10").unwrap(), (10, 0));
        assert_eq!(exec_user(root, "10:staff").unwrap(), (10, 50));
        assert_eq!(exec_user(root, "app:7").unwrap(), (1000, 7));
        assert_eq!(exec_user(None, "5:6").unwrap(), (5, 6));
        assert_eq!(
            exec_user(root, "ghost").unwrap_err().to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert_eq!(
            exec_user(root, "app:wheel").unwrap_err().to_string(),
            "unable to find group wheel: no matching entries in group file"
        );
        // No passwd at all: a name cannot be found, root included.
        assert!(exec_user(None, "root").is_err());
    }

    #[test]
    fn supplementary_groups_list_the_user_by_name() {
        let scratch = Scratch::new("chown-sgids");
        scratch.file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        );
        scratch.file(
            "etc/group",
            "root:x:0:\napp:x:1000:\nstaff:x:50:app\nwheel:x:10:root, app\n",
        );
        let root = Some(scratch.path());
        assert_eq!(supplementary_gids(root, "app").unwrap(), [50, 10]);
        assert_eq!(supplementary_gids(root, "1000").unwrap(), [50, 10]);
        assert_eq!(supplementary_gids(root, "").unwrap(), [10]);
        assert!(supplementary_gids(root, "app:app").unwrap().is_empty());
        assert!(supplementary_gids(root, "4242").unwrap().is_empty());
        assert!(supplementary_gids(None, "app").unwrap().is_empty());
    }

    #[test]
    fn names_without_a_filesystem_are_root() {
        assert_eq!(resolve_chown("app", None).unwrap(), (0, 0));
        assert!(matches!(
            resolve_chown(":1", None).unwrap_err(),
            CopyError::InvalidChown { .. }
        ));
    }

    #[test]
    fn etc_symlinks_stay_inside_the_image() {
        let scratch = Scratch::new("chown-symlink");
        scratch.file("real/passwd", "app:x:5:6::/:/bin/sh\n");
        scratch.dir("etc");
        scratch.symlink("etc/passwd", "/real/passwd");
        assert_eq!(resolve_chown("app", Some(scratch.path())).unwrap(), (5, 6));
    }
}
