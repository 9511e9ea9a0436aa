//! Just enough ISO 9660 to find a file's bytes in an image: the primary
//! volume descriptor, directory records, Rock Ridge names (`NM`). Reads
//! only; `iso_custom` writes the bytes it finds here.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// The logical block size of every ISO this project makes (and of nearly
/// every ISO).
pub const BLOCK: u64 = 2048;
/// Where the volume descriptors start (block 16).
const DESCRIPTORS: u64 = 16;
/// Offset and length of the primary volume descriptor's application use
/// area, where `implantisomd5` keeps its checksum.
const APPLICATION_USE: (usize, usize) = (883, 512);

/// Why a file could not be found in an ISO.
#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("reading the ISO at byte {offset}: {source}")]
    Io { offset: u64, source: std::io::Error },
    #[error("not an ISO 9660 image: {0}")]
    NotIso(String),
    #[error("the ISO has no {0}")]
    NotFound(String),
}

/// Where a file's bytes are: one contiguous extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Byte offset in the image.
    pub offset: u64,
    pub len: u64,
}

/// An ISO image opened for reading.
#[derive(Debug)]
pub struct Iso<'f> {
    file: &'f File,
    pvd: Vec<u8>,
    root: Record,
}

#[derive(Debug, Clone)]
struct Record {
    extent: Extent,
    dir: bool,
    multi_extent: bool,
    /// The Rock Ridge name, else the ISO 9660 one.
    name: String,
}

fn u32_le(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

/// Parses the directory record at the start of `b` (its length byte
/// included); `None` when it is not one.
fn record(b: &[u8]) -> Option<Record> {
    let len = usize::from(*b.first()?);
    if len < 34 || len > b.len() {
        return None;
    }
    let r = &b[..len];
    let id_len = usize::from(r[32]);
    if 33 + id_len > len {
        return None;
    }
    let id = &r[33..33 + id_len];
    let flags = r[25];
    let mut name = match id {
        [0] => ".".to_string(),
        [1] => "..".to_string(),
        _ => {
            let s = String::from_utf8_lossy(id);
            let s = s.split(';').next().unwrap_or_default();
            s.strip_suffix('.').unwrap_or(s).to_string()
        }
    };
    // The system use area: after the identifier and its padding byte.
    let mut su = 33 + id_len + usize::from(id_len % 2 == 0);
    let mut rr_name = String::new();
    while su + 4 <= len {
        let (sig, entry_len) = (&r[su..su + 2], usize::from(r[su + 2]));
        if entry_len < 4 || su + entry_len > len {
            break;
        }
        if sig == b"NM" && entry_len >= 5 {
            let flags = r[su + 4];
            // CURRENT and PARENT carry no name.
            if flags & 0b110 == 0 {
                rr_name.push_str(&String::from_utf8_lossy(&r[su + 5..su + entry_len]));
            }
        }
        su += entry_len;
    }
    if !rr_name.is_empty() {
        name = rr_name;
    }
    Some(Record {
        extent: Extent {
            offset: u32_le(r, 2) * BLOCK,
            len: u32_le(r, 10),
        },
        dir: flags & 0x02 != 0,
        multi_extent: flags & 0x80 != 0,
        name,
    })
}

impl<'f> Iso<'f> {
    /// Reads the primary volume descriptor of the image `file`.
    pub fn open(file: &'f File) -> Result<Iso<'f>, IsoError> {
        for n in DESCRIPTORS..DESCRIPTORS + 32 {
            let mut d = vec![0u8; BLOCK as usize];
            read_exact_at(file, &mut d, n * BLOCK)?;
            if &d[1..6] != b"CD001" {
                return Err(IsoError::NotIso(format!(
                    "block {n} is not a volume descriptor (no CD001)"
                )));
            }
            match d[0] {
                1 => {
                    let block_size = u16::from_le_bytes([d[128], d[129]]);
                    if u64::from(block_size) != BLOCK {
                        return Err(IsoError::NotIso(format!(
                            "its logical block size is {block_size}, not {BLOCK}"
                        )));
                    }
                    let root = record(&d[156..190]).filter(|r| r.dir).ok_or_else(|| {
                        IsoError::NotIso("the root directory record does not read".into())
                    })?;
                    return Ok(Iso { file, pvd: d, root });
                }
                255 => break,
                _ => {}
            }
        }
        Err(IsoError::NotIso("no primary volume descriptor".into()))
    }

    /// Whether `implantisomd5` put a checksum into the image (`checkisomd5`
    /// and dracut's `rd.live.check` read it).
    pub fn has_implanted_md5(&self) -> bool {
        let (at, len) = APPLICATION_USE;
        let area = &self.pvd[at..at + len];
        area.windows(12).any(|w| w == b"ISO MD5SUM =")
    }

    /// The records of the directory `dir`.
    fn list(&self, dir: &Record) -> Result<Vec<Record>, IsoError> {
        if dir.extent.len > 16 << 20 {
            return Err(IsoError::NotIso(format!(
                "a directory of {} bytes",
                dir.extent.len
            )));
        }
        let mut data = vec![0u8; dir.extent.len as usize];
        read_exact_at(self.file, &mut data, dir.extent.offset)?;
        let mut out = Vec::new();
        let mut at = 0usize;
        while at < data.len() {
            // Records do not cross blocks: a zero length byte means the
            // rest of this block is padding.
            if data[at] == 0 {
                at = (at / BLOCK as usize + 1) * BLOCK as usize;
                continue;
            }
            let len = usize::from(data[at]);
            match record(&data[at..]) {
                Some(r) => out.push(r),
                None => {
                    return Err(IsoError::NotIso(format!(
                        "a directory record at byte {} does not read",
                        dir.extent.offset + at as u64
                    )));
                }
            }
            at += len;
        }
        Ok(out)
    }

    /// The extent of the regular file at `path` (`boot/grub/custom.cfg`).
    pub fn find(&self, path: &str) -> Result<Extent, IsoError> {
        let mut dir = self.root.clone();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let found = self
                .list(&dir)?
                .into_iter()
                .filter(|r| r.name != "." && r.name != "..")
                .find(|r| r.name == *part || (r.name.eq_ignore_ascii_case(part)))
                .filter(|r| r.dir != last)
                .ok_or_else(|| IsoError::NotFound(path.to_string()))?;
            if last && found.multi_extent {
                return Err(IsoError::NotIso(format!(
                    "{path} is stored in several extents"
                )));
            }
            dir = found;
        }
        Ok(dir.extent)
    }
}

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> Result<(), IsoError> {
    file.read_exact_at(buf, offset)
        .map_err(|source| IsoError::Io { offset, source })
}
