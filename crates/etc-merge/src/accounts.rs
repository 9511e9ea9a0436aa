//! `passwd`, `group`, `shadow` and `gshadow` are merged by entry, not by
//! file.
//!
//! - The node's file is the base: its lines stay in their order, and a line
//!   the merge does not change is written back byte for byte.
//! - An entry the admin did not change takes the new image's version; one
//!   the admin changed or added stays; one the admin deleted stays deleted.
//! - An entry the new image no longer has stays: its id may own files on
//!   `/var`, and reusing the id later would hand those files to someone
//!   else.
//! - The new image's new accounts are appended, with the ids of
//!   [`ids`](self::ids): a clash with an account of the node gives the new
//!   account another id, and the report lists the remap.
//! - Group members (and `gshadow` administrators) are merged as sets:
//!   a member the image added arrives, one the admin removed stays removed.
//! - `shadow` follows `passwd`: a new account brings its `shadow` entry,
//!   an account that stays deleted brings none. A node entry the admin
//!   never touched (byte for byte the old image's) takes the new image's;
//!   any other node entry is kept whole, so a password the admin set is
//!   never replaced. `gshadow` passwords likewise.

mod db;
mod ids;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;

use serde::{Deserialize, Serialize};

use self::db::{Db, Entry};
use self::ids::{Assigned, IdSpace};
use crate::MergeOptions;
use crate::error::{IdKind, MergeError};
use crate::report::{AccountChanges, AccountReport, Membership};
use crate::tree::{IdMaps, Tree};

/// The account files merged by entry, at the top of `/etc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountFile {
    /// `passwd`: users.
    Passwd,
    /// `group`: groups.
    Group,
    /// `shadow`: users' passwords.
    Shadow,
    /// `gshadow`: groups' passwords and administrators.
    Gshadow,
}

impl AccountFile {
    /// All four, in the order they are merged.
    pub const ALL: [AccountFile; 4] = [
        AccountFile::Passwd,
        AccountFile::Group,
        AccountFile::Shadow,
        AccountFile::Gshadow,
    ];

    /// The file name under `/etc`.
    pub fn name(self) -> &'static str {
        match self {
            AccountFile::Passwd => "passwd",
            AccountFile::Group => "group",
            AccountFile::Shadow => "shadow",
            AccountFile::Gshadow => "gshadow",
        }
    }

    /// The account file called `name`, if any.
    pub fn from_name(name: &OsStr) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|file| OsStr::new(file.name()) == name)
    }

    fn field_count(self) -> usize {
        match self {
            AccountFile::Passwd => 7,
            AccountFile::Shadow => 9,
            AccountFile::Group | AccountFile::Gshadow => 4,
        }
    }
}

/// The outcome of the account merge.
#[derive(Debug, Default)]
pub(crate) struct AccountMerge {
    /// The merged text of each file both the node and the new image have.
    pub texts: BTreeMap<AccountFile, Vec<u8>>,
    /// Old image ids to node ids.
    pub old_ids: IdMaps,
    /// New image ids to node ids.
    pub new_ids: IdMaps,
    pub report: AccountReport,
}

/// One account file in the three trees (the old one empty when missing).
#[derive(Debug)]
struct Three {
    old: Db,
    current: Option<Db>,
    new: Option<Db>,
}

impl Three {
    fn read(file: AccountFile, old: &Tree, current: &Tree, new: &Tree) -> Self {
        let parse = |tree: &Tree| tree.account_text(file).map(|text| Db::parse(file, text));
        Three {
            old: parse(old).unwrap_or_default(),
            current: parse(current),
            new: parse(new),
        }
    }

    fn both(&self) -> Option<(&Db, &Db)> {
        Some((self.current.as_ref()?, self.new.as_ref()?))
    }
}

/// Merges the four account files of the three trees.
pub(crate) fn merge_accounts(
    old: &Tree,
    current: &Tree,
    new: &Tree,
    opts: &MergeOptions,
) -> Result<AccountMerge, MergeError> {
    let [passwd, group, shadow, gshadow] =
        AccountFile::ALL.map(|file| Three::read(file, old, current, new));
    let (users, groups) = assign_ids(&passwd, &group, opts)?;
    let mut out = AccountMerge::default();

    if let Some((c, n)) = group.both() {
        let (map, remaps) = ids::new_to_node(c, n, &groups);
        out.new_ids.gids = map;
        out.old_ids.gids = ids::old_to_node(&group.old, c);
        out.report.groups.remaps = remaps;
    }
    if let Some((c, n)) = passwd.both() {
        let (map, remaps) = ids::new_to_node(c, n, &users);
        out.new_ids.uids = map;
        out.old_ids.uids = ids::old_to_node(&passwd.old, c);
        out.report.users.remaps = remaps;
    }

    if let Some((c, n)) = passwd.both() {
        let text = merge_users(
            &passwd.old,
            c,
            n,
            &users,
            &out.old_ids,
            &out.new_ids,
            &mut out.report.users,
        );
        out.texts.insert(AccountFile::Passwd, text);
    }
    if let Some((c, n)) = group.both() {
        let mut memberships = Memberships::default();
        let text = merge_groups(
            &group.old,
            c,
            n,
            &groups,
            &mut out.report.groups,
            &mut memberships,
        );
        out.report.members_added = memberships.added;
        out.report.members_removed = memberships.removed;
        out.texts.insert(AccountFile::Group, text);
    }
    if let Some((c, n)) = shadow.both() {
        let text = merge_shadow(&shadow.old, c, n, &users);
        out.texts.insert(AccountFile::Shadow, text);
    }
    if let Some((c, n)) = gshadow.both() {
        out.texts.insert(
            AccountFile::Gshadow,
            merge_gshadow(&gshadow.old, c, n, &groups),
        );
    }
    out.report.files = out.texts.keys().copied().collect();
    Ok(out)
}

/// Decides the node id of every account the new image adds (see
/// [`ids`](self::ids)).
fn assign_ids(
    passwd: &Three,
    group: &Three,
    opts: &MergeOptions,
) -> Result<(Assigned, Assigned), MergeError> {
    let empty = Db::default();
    let mut uspace = IdSpace::new(
        &passwd.old,
        passwd.current.as_ref().unwrap_or(&empty),
        opts.system_uids.clone(),
    );
    let mut gspace = IdSpace::new(
        &group.old,
        group.current.as_ref().unwrap_or(&empty),
        opts.system_gids.clone(),
    );
    let mut users = match passwd.both() {
        Some((c, n)) => ids::keep_free_ids(&passwd.old, c, n, &mut uspace),
        None => Assigned::default(),
    };
    let mut groups = match group.both() {
        Some((c, n)) => ids::keep_free_ids(&group.old, c, n, &mut gspace),
        None => Assigned::default(),
    };
    let user_kept: HashMap<Vec<u8>, u32> = users.added.iter().cloned().collect();
    let user_pending: Vec<Vec<u8>> = users.pending.iter().map(|(n, _)| n.clone()).collect();
    ids::allocate_pending(
        IdKind::Gid,
        &mut groups,
        &mut gspace,
        |name| user_kept.get(name).copied(),
        |name, id| !user_pending.iter().any(|u| u == name) || uspace.is_free(id),
    )?;
    let group_ids: HashMap<Vec<u8>, u32> = groups.added.iter().cloned().collect();
    ids::allocate_pending(
        IdKind::Uid,
        &mut users,
        &mut uspace,
        |name| group_ids.get(name).copied(),
        |_, _| true,
    )?;
    Ok((users, groups))
}

fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

fn map_field(entry: &mut Entry, index: usize, map: &HashMap<u32, u32>) {
    if let Some(id) = map.get(&entry.number(index)) {
        entry.set_number(index, *id);
    }
}

/// `passwd`: entry-level three-way merge, new users appended.
fn merge_users(
    old: &Db,
    current: &Db,
    new: &Db,
    assigned: &Assigned,
    old_ids: &IdMaps,
    new_ids: &IdMaps,
    report: &mut AccountChanges,
) -> Vec<u8> {
    let to_node = |entry: &Entry, ids: &IdMaps, uid: u32| {
        let mut entry = entry.clone();
        entry.set_number(2, uid);
        map_field(&mut entry, 3, &ids.gids);
        entry
    };
    let mut lines = Vec::new();
    for line in &current.lines {
        let Some(c) = &line.entry else {
            lines.push(line.raw.clone());
            continue;
        };
        let uid = c.number(2);
        let o = old.get(c.name()).map(|e| to_node(e, old_ids, uid));
        let n = new.get(c.name()).map(|e| to_node(e, new_ids, uid));
        match decide(c, o.as_ref(), n.as_ref(), report) {
            Some(taken) => lines.push(taken.to_line()),
            None => lines.push(line.raw.clone()),
        }
    }
    report.added = append_added(new, assigned, &mut lines, |entry, id| {
        to_node(entry, new_ids, id)
    });
    report.deleted_kept_deleted = deleted_by_admin(old, current, new);
    Db::render(&lines, current.trailing_newline || !report.added.is_empty())
}

/// The three-way rule for one entry the node has; `Some` when the new
/// image's entry replaces the node's.
fn decide(
    c: &Entry,
    o: Option<&Entry>,
    n: Option<&Entry>,
    report: &mut AccountChanges,
) -> Option<Entry> {
    let name = lossy(c.name());
    match (o, n) {
        (None, None) => report.kept_admin.push(name),
        (Some(_), None) => report.kept_dropped_by_image.push(name),
        (None, Some(n)) if n != c => report.conflicts.push(name),
        (None, Some(_)) => {}
        (Some(o), Some(n)) if c == o => {
            if n != c {
                report.updated_from_image.push(name);
                return Some(n.clone());
            }
        }
        (Some(o), Some(n)) if n == o => report.kept_admin.push(name),
        (Some(_), Some(n)) if n == c => {}
        (Some(_), Some(_)) => report.conflicts.push(name),
    }
    None
}

/// Appends the new image's added accounts (as `make` turns them into node
/// entries) and returns them for the report.
fn append_added(
    new: &Db,
    assigned: &Assigned,
    lines: &mut Vec<Vec<u8>>,
    make: impl Fn(&Entry, u32) -> Entry,
) -> Vec<crate::report::AddedAccount> {
    let mut added = Vec::new();
    for (name, id) in &assigned.added {
        let Some(entry) = new.get(name) else {
            continue;
        };
        lines.push(make(entry, *id).to_line());
        added.push(crate::report::AddedAccount {
            name: lossy(name),
            id: *id,
        });
    }
    added
}

/// Old image accounts the admin deleted and the new image still has.
fn deleted_by_admin(old: &Db, current: &Db, new: &Db) -> Vec<String> {
    old.entries()
        .filter(|o| !current.contains(o.name()) && new.contains(o.name()))
        .map(|o| lossy(o.name()))
        .collect()
}

#[derive(Debug, Default)]
struct Memberships {
    added: Vec<Membership>,
    removed: Vec<Membership>,
}

/// `group`: the node's fields, members merged as sets, new groups appended.
fn merge_groups(
    old: &Db,
    current: &Db,
    new: &Db,
    assigned: &Assigned,
    report: &mut AccountChanges,
    memberships: &mut Memberships,
) -> Vec<u8> {
    let mut lines = Vec::new();
    for line in &current.lines {
        let Some(c) = &line.entry else {
            lines.push(line.raw.clone());
            continue;
        };
        let name = lossy(c.name());
        let o = old.get(c.name());
        let Some(n) = new.get(c.name()) else {
            match o {
                Some(_) => report.kept_dropped_by_image.push(name),
                None => report.kept_admin.push(name),
            }
            lines.push(line.raw.clone());
            continue;
        };
        let mut merged = c.clone();
        let o_fields = o.map(|o| (o.fields.get(1), o.list(3)));
        if o_fields
            .as_ref()
            .is_some_and(|(pw, _)| *pw == c.fields.get(1))
        {
            if let (Some(field), Some(image)) = (merged.fields.get_mut(1), n.fields.get(1)) {
                field.clone_from(image);
            }
        }
        let base = o_fields.map(|(_, members)| members).unwrap_or_default();
        let members = merge_set(&base, &c.list(3), &n.list(3));
        record_members(&name, &c.list(3), &members, memberships);
        merged.set_list(3, &members);
        if o.is_some_and(|o| o.fields.get(1) != c.fields.get(1) || o.list(3) != c.list(3)) {
            report.kept_admin.push(name.clone());
        }
        if merged == *c {
            lines.push(line.raw.clone());
        } else {
            report.updated_from_image.push(name);
            lines.push(merged.to_line());
        }
    }
    report.added = append_added(new, assigned, &mut lines, |entry, id| {
        let mut entry = entry.clone();
        entry.set_number(2, id);
        entry
    });
    report.deleted_kept_deleted = deleted_by_admin(old, current, new);
    Db::render(&lines, current.trailing_newline || !report.added.is_empty())
}

fn record_members(group: &str, before: &[Vec<u8>], after: &[Vec<u8>], out: &mut Memberships) {
    for user in after.iter().filter(|u| !before.contains(u)) {
        out.added.push(Membership {
            group: group.to_owned(),
            user: lossy(user),
        });
    }
    for user in before.iter().filter(|u| !after.contains(u)) {
        out.removed.push(Membership {
            group: group.to_owned(),
            user: lossy(user),
        });
    }
}

/// Three-way merge of a set kept as a list: a member's presence follows
/// the node unless the node left it as the old image had it, in which case
/// it follows the new image. The node's order first, then the image's.
fn merge_set(old: &[Vec<u8>], current: &[Vec<u8>], new: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let keep = |x: &Vec<u8>| {
        let (in_o, in_c, in_n) = (old.contains(x), current.contains(x), new.contains(x));
        if in_c == in_o { in_n } else { in_c }
    };
    let mut out: Vec<Vec<u8>> = Vec::new();
    for x in current.iter().chain(new) {
        if keep(x) && !out.contains(x) {
            out.push(x.clone());
        }
    }
    out
}

/// `shadow`: an entry the admin never touched (still the old image's)
/// takes the new image's; every other entry of the node is kept as it is,
/// so a password the admin set is never replaced. Then the new image's
/// entries of the accounts it adds (unless the node already has one).
fn merge_shadow(old: &Db, current: &Db, new: &Db, assigned: &Assigned) -> Vec<u8> {
    let mut lines = Vec::new();
    for line in &current.lines {
        let untouched = line
            .entry
            .as_ref()
            .filter(|c| old.get(c.name()) == Some(*c))
            .and_then(|c| new.get(c.name()));
        lines.push(match untouched {
            Some(n) if line.entry.as_ref() != Some(n) => n.to_line(),
            _ => line.raw.clone(),
        });
    }
    let before = lines.len();
    for (name, _) in &assigned.added {
        if current.contains(name) {
            continue;
        }
        if let Some(entry) = new.get(name) {
            lines.push(entry.to_line());
        }
    }
    Db::render(&lines, current.trailing_newline || lines.len() > before)
}

/// `gshadow`: an entry the admin never touched takes the new image's; in
/// the others administrators and members are merged as sets and the
/// password stays the node's. Then the new groups' entries.
fn merge_gshadow(old: &Db, current: &Db, new: &Db, assigned: &Assigned) -> Vec<u8> {
    let mut lines = Vec::new();
    for line in &current.lines {
        let (Some(c), Some(n)) = (
            &line.entry,
            line.entry.as_ref().and_then(|c| new.get(c.name())),
        ) else {
            lines.push(line.raw.clone());
            continue;
        };
        let o = old.get(c.name());
        if o == Some(c) {
            // Never touched on the node: the new image's entry.
            lines.push(n.to_line());
            continue;
        }
        let mut merged = c.clone();
        for field in [2, 3] {
            let base = o.map(|o| o.list(field)).unwrap_or_default();
            merged.set_list(field, &merge_set(&base, &c.list(field), &n.list(field)));
        }
        lines.push(if merged == *c {
            line.raw.clone()
        } else {
            merged.to_line()
        });
    }
    let mut appended = false;
    for (name, _) in &assigned.added {
        if let (false, Some(entry)) = (current.contains(name), new.get(name)) {
            lines.push(entry.to_line());
            appended = true;
        }
    }
    Db::render(&lines, current.trailing_newline || appended)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn set_merge_follows_each_side() {
        // image adds c, admin adds d, admin removes a, image removes b
        let merged = merge_set(&v(&["a", "b"]), &v(&["b", "d"]), &v(&["a", "c"]));
        assert_eq!(merged, v(&["d", "c"]));
    }

    #[test]
    fn set_merge_without_base_is_a_union() {
        assert_eq!(merge_set(&[], &v(&["x"]), &v(&["y", "x"])), v(&["x", "y"]));
    }
}
