//! Reading and writing the colon-separated account databases, byte for
//! byte: a line that is not a well-formed entry (a comment, a NIS `+`/`-`
//! line, a malformed line) is kept as it is, and an entry the merge does
//! not change is written back exactly as it was read.

use std::collections::HashMap;

use super::AccountFile;

/// One line of an account file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// The line as read, without its newline.
    pub raw: Vec<u8>,
    /// Its fields, when it is a well-formed entry.
    pub entry: Option<Entry>,
}

/// A well-formed entry: its fields, the first being the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub fields: Vec<Vec<u8>>,
}

impl Entry {
    pub fn name(&self) -> &[u8] {
        self.fields.first().map(Vec::as_slice).unwrap_or_default()
    }

    /// A numeric field (uid, gid); well-formed entries have them numeric.
    pub fn number(&self, index: usize) -> u32 {
        self.fields
            .get(index)
            .and_then(|field| parse_id(field))
            .unwrap_or_default()
    }

    pub fn set_number(&mut self, index: usize, value: u32) {
        if let Some(field) = self.fields.get_mut(index) {
            *field = value.to_string().into_bytes();
        }
    }

    /// A comma-separated list field (group members, gshadow admins).
    pub fn list(&self, index: usize) -> Vec<Vec<u8>> {
        match self.fields.get(index) {
            Some(field) if !field.is_empty() => {
                field.split(|b| *b == b',').map(<[u8]>::to_vec).collect()
            }
            _ => Vec::new(),
        }
    }

    pub fn set_list(&mut self, index: usize, items: &[Vec<u8>]) {
        if let Some(field) = self.fields.get_mut(index) {
            *field = items.join(&b","[..]);
        }
    }

    pub fn to_line(&self) -> Vec<u8> {
        self.fields.join(&b":"[..])
    }
}

/// A parsed account file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Db {
    pub lines: Vec<Line>,
    pub trailing_newline: bool,
    index: HashMap<Vec<u8>, usize>,
}

impl Db {
    pub fn parse(file: AccountFile, text: &[u8]) -> Db {
        let trailing_newline = text.ends_with(b"\n");
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        let mut db = Db {
            trailing_newline,
            ..Db::default()
        };
        if text.is_empty() {
            return db;
        }
        for raw in body.split(|b| *b == b'\n') {
            let entry = parse_entry(file, raw);
            if let Some(entry) = &entry {
                db.index
                    .entry(entry.name().to_vec())
                    .or_insert(db.lines.len());
            }
            db.lines.push(Line {
                raw: raw.to_vec(),
                entry,
            });
        }
        db
    }

    /// The first entry named `name`.
    pub fn get(&self, name: &[u8]) -> Option<&Entry> {
        let line = self.lines.get(*self.index.get(name)?)?;
        line.entry.as_ref()
    }

    pub fn contains(&self, name: &[u8]) -> bool {
        self.index.contains_key(name)
    }

    /// The entries, first of each name only, in file order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.lines.iter().enumerate().filter_map(|(i, line)| {
            let entry = line.entry.as_ref()?;
            (self.index.get(entry.name()) == Some(&i)).then_some(entry)
        })
    }

    /// The file's text: the lines joined, with a final newline when the
    /// original had one or lines were appended.
    pub fn render(lines: &[Vec<u8>], trailing_newline: bool) -> Vec<u8> {
        let mut text = lines.join(&b"\n"[..]);
        if trailing_newline && !lines.is_empty() {
            text.push(b'\n');
        }
        text
    }
}

fn parse_entry(file: AccountFile, raw: &[u8]) -> Option<Entry> {
    let fields: Vec<Vec<u8>> = raw.split(|b| *b == b':').map(<[u8]>::to_vec).collect();
    if fields.len() != file.field_count() {
        return None;
    }
    let name = fields.first()?;
    if name.is_empty() || matches!(name[0], b'+' | b'-' | b'#') {
        return None;
    }
    let numeric: &[usize] = match file {
        AccountFile::Passwd => &[2, 3],
        AccountFile::Group => &[2],
        AccountFile::Shadow | AccountFile::Gshadow => &[],
    };
    if numeric
        .iter()
        .any(|i| fields.get(*i).and_then(|f| parse_id(f)).is_none())
    {
        return None;
    }
    Some(Entry { fields })
}

fn parse_id(field: &[u8]) -> Option<u32> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_opaque_lines() {
        let text = b"root:x:0:0:root:/root:/bin/bash\n+::::::\n# note\nbad line\n";
        let db = Db::parse(AccountFile::Passwd, text);
        assert_eq!(db.lines.len(), 4);
        assert!(db.lines[0].entry.is_some());
        assert!(db.lines[1..].iter().all(|l| l.entry.is_none()));
        let lines: Vec<Vec<u8>> = db.lines.iter().map(|l| l.raw.clone()).collect();
        assert_eq!(Db::render(&lines, db.trailing_newline), text);
        assert_eq!(db.get(b"root").map(|e| e.number(2)), Some(0));
    }

    #[test]
    fn first_of_duplicate_names_wins() {
        let db = Db::parse(AccountFile::Group, b"a:x:1:\na:x:2:u\n");
        assert_eq!(db.get(b"a").map(|e| e.number(2)), Some(1));
        assert_eq!(db.entries().count(), 1);
    }

    #[test]
    fn lists_split_on_commas() {
        let db = Db::parse(AccountFile::Group, b"kvm:x:104:a,b\nempty:x:5:\n");
        assert_eq!(
            db.get(b"kvm").map(|e| e.list(3)),
            Some(vec![b"a".to_vec(), b"b".to_vec()])
        );
        assert_eq!(db.get(b"empty").map(|e| e.list(3)), Some(vec![]));
    }
}
