//! The parsed kickstart: every command and section, in file order, with
//! where each came from.

use serde::Serialize;

use crate::addon::RegisterAddon;
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Item {
    Command(Command),
    Script(Script),
    Packages(Packages),
    Certificate(Certificate),
    /// `%addon org_hvnode_register`, understood.
    Register(RegisterAddon),
    /// Other `%addon` sections and `%anaconda`, kept verbatim.
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

    pub fn register_addon(&self) -> Option<(&Loc, &RegisterAddon)> {
        self.items.iter().rev().find_map(|i| match &i.value {
            Item::Register(r) => Some((&i.loc, r)),
            _ => None,
        })
    }
}
