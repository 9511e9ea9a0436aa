//! The parsed kickstart: every command and section, in file order, with
//! where each came from.

use serde::Serialize;

use crate::commands::Command;
use crate::diag::Loc;
use crate::sections::{Certificate, Packages, RawSection, Script};

/// A value and where it was written. Two `Located` values are equal when
/// their values are: the location says where, not what.
#[derive(Debug, Clone, Serialize)]
pub struct Located<T> {
    pub loc: Loc,
    #[serde(flatten)]
    pub value: T,
}

impl<T: PartialEq> PartialEq for Located<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Located<T> {}

/// One top-level item of a kickstart.
// A kickstart has tens of items: boxing commands would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Item {
    Command(Command),
    Script(Script),
    Packages(Packages),
    Certificate(Certificate),
    /// `%addon` sections and `%anaconda`, kept verbatim (hvnode's own
    /// `org_hvnode_register` addon is read by [`crate::node`]).
    Raw(RawSection),
}

/// A whole kickstart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Kickstart {
    pub items: Vec<Located<Item>>,
}

impl Kickstart {
    pub fn commands(&self) -> impl Iterator<Item = (&Loc, &Command)> {
        self.items.iter().filter_map(|i| match &i.value {
            Item::Command(c) => Some((&i.loc, c)),
            _ => None,
        })
    }

    pub fn scripts(&self) -> impl Iterator<Item = (&Loc, &Script)> {
        self.items.iter().filter_map(|i| match &i.value {
            Item::Script(s) => Some((&i.loc, s)),
            _ => None,
        })
    }

    pub fn packages(&self) -> impl Iterator<Item = (&Loc, &Packages)> {
        self.items.iter().filter_map(|i| match &i.value {
            Item::Packages(p) => Some((&i.loc, p)),
            _ => None,
        })
    }

    /// The `%addon NAME` sections with that name.
    pub fn addons<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a Loc, &'a RawSection)> + 'a {
        self.items.iter().filter_map(move |i| match &i.value {
            Item::Raw(r) if r.addon_name() == Some(name) => Some((&i.loc, r)),
            _ => None,
        })
    }
}
