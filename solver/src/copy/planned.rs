//! A layer planned in memory and streamed into its tar in one pass.
//!
//! A COPY decides every entry of its layer (path, owner, mode, time, extended attributes)
//! before a byte of content has to move; only regular files carry content, and that content
//! is already on disk, in the build context or a stage's filesystem. So the plan keeps each
//! file as the path it will be read from and writes the tar straight from there: one read of
//! each source, no staging copy, no staging inodes to create and delete (on ext4, deleting
//! 100,000 staging files made the next COPY wait on the inode allocator).
//!
//! The tar is the one a diff directory with the same entries gives ([`crate::layer::write_layer`]):
//! the same walk order (depth first, names sorted bytewise), the same headers
//! ([`crate::layer::TarStream`] encodes both), the first name of a hard-link group carrying the
//! content, a 0:0 character device written as a whiteout, sockets left out. The copy tests
//! build every case both ways and compare the tars byte for byte.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::dest::Kind;
use super::error::CopyError;
use super::meta::{Attrs, Times};
use super::upper::{NewEntry, Upper};
use crate::layer::{
    Content, EntryKind, LayerError, LayerInfo, LayerOptions, Special, TarStream, entry_header,
    special, whiteout_header,
};

/// The entries of a layer, in memory. See the module documentation.
///
/// It keeps a directory's times as a filesystem would: adding or removing an entry makes the
/// directory's mtime now, and attributes given for the end of a copy
/// ([`Upper::dir_attrs_later`]) are applied by [`Upper::finish`] — so a file op whose second
/// action writes into a directory the first one made gets what a diff directory gets.
#[derive(Debug)]
pub struct PlannedLayer {
    /// The layer's root, a directory (never an entry itself).
    root: Node,
    /// The next hard-link group's number.
    next_link: u64,
    /// Directory attributes for the end of the current copy, in order.
    later: Vec<(PathBuf, Attrs)>,
}

impl Default for PlannedLayer {
    fn default() -> Self {
        Self {
            root: Node {
                uid: 0,
                gid: 0,
                mode: 0o755,
                mtime: 0,
                xattrs: Vec::new(),
                body: Body::Dir(BTreeMap::new()),
            },
            next_link: 0,
            later: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    uid: u32,
    gid: u32,
    /// Permission and set-id/sticky bits.
    mode: u32,
    /// Whole seconds: a layer keeps no more.
    mtime: i64,
    /// Sorted by name, overlay bookkeeping and host labels left out.
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    Dir(BTreeMap<OsString, Node>),
    File {
        data: Data,
        size: u64,
        /// The hard-link group it belongs to.
        link: Option<u64>,
    },
    Symlink(PathBuf),
    /// A device, FIFO or socket: its `st_mode` and `st_rdev`.
    Special {
        mode: u32,
        rdev: u64,
    },
}

#[derive(Debug, Clone)]
enum Data {
    /// Read from this file when the tar is written.
    Path(PathBuf),
    /// These bytes (a heredoc).
    Bytes(std::sync::Arc<[u8]>),
}

impl PlannedLayer {
    /// An empty layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the layer tar to `out` (entries as [`crate::layer::write_layer`] writes a diff
    /// directory holding them), reading each file's content from where it was planned.
    pub fn write_layer<W: Write>(
        &self,
        out: W,
        opts: &LayerOptions,
    ) -> Result<LayerInfo, LayerError> {
        let mut writer = PlanWriter {
            tar: TarStream::new(out, opts)?,
            links: HashMap::new(),
            epoch: opts.source_date_epoch,
        };
        if let Body::Dir(children) = &self.root.body {
            writer.dir(children, &mut Vec::new())?;
        }
        writer.tar.finish()
    }

    fn get(&self, rel: &Path) -> Option<&Node> {
        let mut node = &self.root;
        for name in names(rel) {
            match &node.body {
                Body::Dir(children) => node = children.get(name)?,
                _ => return None,
            }
        }
        Some(node)
    }

    fn get_mut(&mut self, rel: &Path) -> Option<&mut Node> {
        let mut node = &mut self.root;
        for name in names(rel) {
            match &mut node.body {
                Body::Dir(children) => node = children.get_mut(name)?,
                _ => return None,
            }
        }
        Some(node)
    }

    /// The directory holding `rel` (its mtime made now, as the change about to be made to
    /// it would make it), its entries, and `rel`'s name.
    fn parent_mut(
        &mut self,
        rel: &Path,
    ) -> Result<(&mut BTreeMap<OsString, Node>, OsString), CopyError> {
        let names = names(rel);
        let Some((last, parents)) = names.split_last() else {
            return Err(missing("open", rel));
        };
        let mut node = &mut self.root;
        for name in parents {
            match &mut node.body {
                Body::Dir(children) => match children.get_mut(*name) {
                    Some(child) => node = child,
                    None => return Err(missing("open", rel)),
                },
                _ => return Err(missing("open", rel)),
            }
        }
        node.mtime = Times::now().mtime.0;
        match &mut node.body {
            Body::Dir(children) => Ok((children, (*last).to_owned())),
            _ => Err(missing("open", rel)),
        }
    }

    /// Adds `node` at `rel`, where nothing is yet.
    fn insert_new(&mut self, rel: &Path, node: Node) -> Result<(), CopyError> {
        let (dir, name) = self.parent_mut(rel)?;
        if dir.contains_key(&name) {
            return Err(CopyError::io("create", rel)(
                io::ErrorKind::AlreadyExists.into(),
            ));
        }
        dir.insert(name, node);
        Ok(())
    }
}

impl Upper for PlannedLayer {
    fn kind(&self, rel: &Path) -> Result<Option<Kind>, CopyError> {
        Ok(self.get(rel).map(|node| match &node.body {
            Body::Dir(_) => Kind::Dir,
            Body::Symlink(_) => Kind::Symlink,
            Body::File { .. } | Body::Special { .. } => Kind::Other,
        }))
    }

    fn read_link(&self, rel: &Path) -> Result<PathBuf, CopyError> {
        match self.get(rel).map(|node| &node.body) {
            Some(Body::Symlink(target)) => Ok(target.clone()),
            _ => Err(CopyError::io("readlink", rel)(
                io::ErrorKind::InvalidInput.into(),
            )),
        }
    }

    fn create_dir(
        &mut self,
        rel: &Path,
        owner_mode: Option<(u32, u32, u32)>,
    ) -> Result<(), CopyError> {
        let (uid, gid, mode) = owner_mode.unwrap_or((0, 0, 0o755));
        let node = Node {
            uid,
            gid,
            mode,
            mtime: Times::now().mtime.0,
            xattrs: Vec::new(),
            body: Body::Dir(BTreeMap::new()),
        };
        self.insert_new(rel, node)
    }

    fn dir_attrs_later(&mut self, rel: &Path, attrs: Attrs) {
        self.later.push((rel.to_owned(), attrs));
    }

    fn dir_xattrs_from(&mut self, rel: &Path, src: &Path) {
        let xattrs = xattrs_of(src);
        if let Some(node) = self.get_mut(rel) {
            node.xattrs = xattrs;
        }
    }

    fn add(
        &mut self,
        rel: &Path,
        entry: NewEntry<'_>,
        attrs: &Attrs,
        xattrs_from: Option<&Path>,
    ) -> Result<(), CopyError> {
        let (body, mode) = match entry {
            NewEntry::File { src, size } => (
                Body::File {
                    data: Data::Path(src.to_owned()),
                    size,
                    link: None,
                },
                attrs.mode,
            ),
            NewEntry::Bytes(bytes) => (
                Body::File {
                    data: Data::Bytes(bytes.into()),
                    size: bytes.len() as u64,
                    link: None,
                },
                attrs.mode,
            ),
            // A symlink's own mode is never changed: 0777, as the kernel makes it.
            NewEntry::Symlink(target) => (Body::Symlink(target.to_owned()), 0o777),
            NewEntry::Special { mode, rdev } => (Body::Special { mode, rdev }, attrs.mode),
        };
        let node = Node {
            uid: attrs.uid,
            gid: attrs.gid,
            mode,
            mtime: attrs.times.mtime.0,
            xattrs: xattrs_from.map(xattrs_of).unwrap_or_default(),
            body,
        };
        self.insert_new(rel, node)
    }

    fn add_hardlink(&mut self, rel: &Path, first: &Path) -> Result<(), CopyError> {
        let next = self.next_link;
        let Some(node) = self.get_mut(first) else {
            return Err(missing("link", first));
        };
        let Body::File { link, .. } = &mut node.body else {
            return Err(CopyError::io("link", first)(
                io::ErrorKind::InvalidInput.into(),
            ));
        };
        let new_group = link.is_none();
        if new_group {
            *link = Some(next);
        }
        let linked = node.clone();
        if new_group {
            self.next_link += 1;
        }
        self.insert_new(rel, linked)
    }

    fn remove(&mut self, rel: &Path) -> Result<(), CopyError> {
        let (dir, name) = self.parent_mut(rel)?;
        match dir.get(&name).map(|n| &n.body) {
            Some(Body::Dir(_)) => Err(CopyError::io("remove", rel)(
                io::ErrorKind::IsADirectory.into(),
            )),
            Some(_) => {
                dir.remove(&name);
                Ok(())
            }
            None => Err(missing("remove", rel)),
        }
    }

    fn finish(&mut self) -> Result<(), CopyError> {
        for (rel, attrs) in std::mem::take(&mut self.later) {
            if let Some(node) = self.get_mut(&rel) {
                node.uid = attrs.uid;
                node.gid = attrs.gid;
                node.mode = attrs.mode;
                node.mtime = attrs.times.mtime.0;
            }
        }
        Ok(())
    }

    fn host_dir(&self) -> Option<&Path> {
        None
    }
}

/// The names of `rel`'s components (`.`, `..` and the root have no place in a resolved path).
fn names(rel: &Path) -> Vec<&OsStr> {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect()
}

fn missing(op: &'static str, rel: &Path) -> CopyError {
    CopyError::io(op, rel)(io::ErrorKind::NotFound.into())
}

/// The extended attributes a copy of `src` carries (what cannot be read is skipped, as a
/// copy to disk skips what it cannot set).
fn xattrs_of(src: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    crate::layer::xattr::read_all(src).unwrap_or_default()
}

/// Walks the plan in tar order.
struct PlanWriter<W: Write> {
    tar: TarStream<W>,
    /// Hard-link group → the path that carries its content.
    links: HashMap<u64, Vec<u8>>,
    epoch: Option<i64>,
}

impl<W: Write> PlanWriter<W> {
    fn dir(
        &mut self,
        children: &BTreeMap<OsString, Node>,
        path: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        for (name, node) in children {
            let len = path.len();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name.as_bytes());
            self.node(node, path)?;
            if let Body::Dir(grandchildren) = &node.body {
                self.dir(grandchildren, path)?;
            }
            path.truncate(len);
        }
        Ok(())
    }

    fn node(&mut self, node: &Node, path: &[u8]) -> Result<(), LayerError> {
        let special = match node.body {
            Body::Special { mode, rdev } => Some(special(mode, rdev)),
            _ => None,
        };
        match special {
            Some(Special::Omitted) => return Ok(()),
            Some(Special::Whiteout) => {
                return self.tar.entry(&whiteout_header(path), Content::None);
            }
            _ => {}
        }
        let mut header = entry_header(
            path,
            node.mode,
            (node.uid, node.gid),
            node.mtime,
            self.epoch,
        );
        let mut content = Content::None;
        match &node.body {
            Body::File {
                link: Some(group), ..
            } if self.links.contains_key(group) => {
                header.kind = EntryKind::Hardlink;
                header.link = self.links.get(group).cloned();
                return self.tar.entry(&header, Content::None);
            }
            Body::Dir(_) => {
                header.kind = EntryKind::Directory;
                header.path.push(b'/');
            }
            Body::File { data, size, link } => {
                if let Some(group) = link {
                    self.links.insert(*group, path.to_vec());
                }
                header.size = *size;
                content = match data {
                    Data::Path(src) => Content::File(src),
                    Data::Bytes(bytes) => Content::Bytes(bytes),
                };
            }
            Body::Symlink(target) => {
                header.kind = EntryKind::Symlink;
                header.link = Some(target.as_os_str().as_bytes().to_vec());
            }
            Body::Special { .. } => {
                if let Some(Special::Node { kind, device }) = special {
                    header.kind = kind;
                    header.device = device;
                }
            }
        }
        header.xattrs.clone_from(&node.xattrs);
        self.tar.entry(&header, content)
    }
}
