//! Which id each account gets on the node.
//!
//! The node's ids are authoritative: its persistent data (`/var`, guest
//! disks, the writable layer) is owned by them. So an account that exists
//! on the node keeps its node id whatever the new image numbers it, and a
//! new image account keeps the image's id only when that id is free on the
//! node. When it is not (an account the admin added holds it), the new
//! account gets the highest free id of the system range: images allocate
//! system ids upwards from the bottom of the range (Debian's `adduser
//! --system`), so the top is where the next image is least likely to
//! collide again. A new user and a new group of the same name get the same
//! number when one is free for both.

use std::collections::{BTreeSet, HashMap};
use std::ops::RangeInclusive;

use super::db::Db;
use crate::error::{IdKind, MergeError};
use crate::report::{IdRemap, RemapReason};

/// The ids in use on the node, and the range new system ids come from.
#[derive(Debug)]
pub(crate) struct IdSpace {
    used: BTreeSet<u32>,
    range: RangeInclusive<u32>,
}

impl IdSpace {
    /// Ids in use: every id of the node's file, and the old image's ids of
    /// the accounts the admin deleted (files may still be owned by them).
    pub fn new(old: &Db, current: &Db, range: RangeInclusive<u32>) -> Self {
        let mut used: BTreeSet<u32> = current.entries().map(|e| e.number(2)).collect();
        used.extend(
            old.entries()
                .filter(|e| !current.contains(e.name()))
                .map(|e| e.number(2)),
        );
        IdSpace { used, range }
    }

    pub fn is_free(&self, id: u32) -> bool {
        !self.used.contains(&id)
    }

    pub fn take(&mut self, id: u32) {
        self.used.insert(id);
    }

    /// The highest free id of the system range that also passes `also`.
    pub fn highest_free(&self, also: impl Fn(u32) -> bool) -> Option<u32> {
        self.range
            .clone()
            .rev()
            .find(|id| self.is_free(*id) && also(*id))
    }

    pub fn range(&self) -> &RangeInclusive<u32> {
        &self.range
    }
}

/// The ids decided for one kind of account (users or groups).
#[derive(Debug, Default)]
pub(crate) struct Assigned {
    /// Names the new image adds, in its order, with their node ids.
    pub added: Vec<(Vec<u8>, u32)>,
    /// New image names whose image id was taken on the node (allocation pending).
    pub pending: Vec<(Vec<u8>, u32)>,
}

impl Assigned {
    pub fn node_id(&self, name: &[u8]) -> Option<u32> {
        self.added
            .iter()
            .find(|(n, _)| n.as_slice() == name)
            .map(|(_, id)| *id)
    }
}

/// The names the new image adds (in neither the old image nor the node);
/// those whose image id is free keep it, the others are left pending.
pub(crate) fn keep_free_ids(old: &Db, current: &Db, new: &Db, space: &mut IdSpace) -> Assigned {
    let mut assigned = Assigned::default();
    for entry in new.entries() {
        let name = entry.name();
        if current.contains(name) || old.contains(name) {
            continue;
        }
        let id = entry.number(2);
        if space.is_free(id) {
            space.take(id);
            assigned.added.push((name.to_vec(), id));
        } else {
            assigned.pending.push((name.to_vec(), id));
        }
    }
    assigned
}

/// Gives every pending name an id: `prefer(name)` when it is free, else
/// the highest free id passing `also(name, id)`, else the highest free id.
pub(crate) fn allocate_pending(
    kind: IdKind,
    assigned: &mut Assigned,
    space: &mut IdSpace,
    prefer: impl Fn(&[u8]) -> Option<u32>,
    also: impl Fn(&[u8], u32) -> bool,
) -> Result<(), MergeError> {
    for (name, image_id) in std::mem::take(&mut assigned.pending) {
        let preferred = prefer(&name).filter(|id| space.is_free(*id));
        let id = preferred
            .or_else(|| space.highest_free(|id| also(&name, id)))
            .or_else(|| space.highest_free(|_| true));
        let Some(id) = id else {
            return Err(MergeError::NoFreeId {
                kind,
                name: String::from_utf8_lossy(&name).into_owned(),
                image_id,
                min: *space.range().start(),
                max: *space.range().end(),
            });
        };
        space.take(id);
        assigned.added.push((name, id));
    }
    Ok(())
}

/// The translations from the new image's ids into the node's, for every
/// new image account that exists on the node after the merge, and the
/// remaps to report (the non-identical ones).
pub(crate) fn new_to_node(
    current: &Db,
    new: &Db,
    assigned: &Assigned,
) -> (HashMap<u32, u32>, Vec<IdRemap>) {
    let mut map = HashMap::new();
    let mut remaps = Vec::new();
    for entry in new.entries() {
        let name = entry.name();
        let image_id = entry.number(2);
        let (node_id, reason) = match current.get(name) {
            Some(on_node) => (on_node.number(2), RemapReason::Drift),
            None => match assigned.node_id(name) {
                Some(id) => (id, RemapReason::IdTaken),
                None => continue,
            },
        };
        if map.contains_key(&image_id) {
            continue;
        }
        map.insert(image_id, node_id);
        if node_id != image_id {
            remaps.push(IdRemap {
                name: String::from_utf8_lossy(name).into_owned(),
                image_id,
                node_id,
                reason,
            });
        }
    }
    map.retain(|image, node| image != node);
    (map, remaps)
}

/// The translations from the old image's ids into the node's, for the old
/// image accounts the node still has (an earlier update may have remapped
/// them).
pub(crate) fn old_to_node(old: &Db, current: &Db) -> HashMap<u32, u32> {
    let mut map = HashMap::new();
    for entry in old.entries() {
        if let Some(on_node) = current.get(entry.name()) {
            map.entry(entry.number(2)).or_insert(on_node.number(2));
        }
    }
    map.retain(|old, node| old != node);
    map
}
