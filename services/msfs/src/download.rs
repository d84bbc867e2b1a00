//! Downloads (storage-file.md §8.5): the request target checked component by component, the
//! file opened, and the response head chosen (200, 206, 304, 404, 416…). The body is streamed
//! by the server from the opened file.
//!
//! The target is `/<any>/<NNN>/<NNN>/<name>`, the first component ignored as the original
//! ignores it (normally `g0`); a query string is ignored. Refused with 400, before any file
//! system access: `..`, `%` (no percent-decoding is done, so `%2e%2e` is refused too),
//! backslashes, control bytes, empty components. Anything else that is not the layout msfs
//! writes (directories of exactly three digits up to 255, a name of ASCII letters, digits,
//! `_`, `-` and `.` not starting with `.`) is 404, like a missing file; so is a directory.
//! Symbolic links inside BaseDir are not followed (403).
//!
//! Content type as the original: `image/<ext>` with the extension's case kept for jpg, jpeg,
//! png and gif (any of the original's eight spellings); other extensions get
//! `application/octet-stream` (the original said `multipart/form-data`).
//!
//! Conditional requests: `ETag` (`"<size hex>-<mtime seconds hex>-<mtime nanoseconds hex>"`)
//! with `If-None-Match`, else `Last-Modified` with `If-Modified-Since` → 304. A single
//! `Range: bytes=a-b`, `a-` or `-n` → 206 with `Content-Range`, or 416 when it starts past
//! the end; several ranges, or an `If-Range` that does not match, get the whole file.

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tt_http::{Request, Response, Status};

/// A download ready to be streamed: the response head, the file and the part to send.
#[derive(Debug)]
pub struct Prepared {
    pub response: Response,
    pub file: File,
    pub offset: u64,
    pub len: u64,
}

/// Why a target is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Traversal or encoding tricks (400).
    Unsafe,
    /// Not msfs's layout, or no such file (404).
    NotFound,
    /// A symbolic link (403).
    Link,
}

impl Refusal {
    pub fn response(self) -> Response {
        let status = match self {
            Refusal::Unsafe => Status::BAD_REQUEST,
            Refusal::NotFound => Status::NOT_FOUND,
            Refusal::Link => Status::FORBIDDEN,
        };
        Response::new(status).header("Content-Type", "text/html;charset=utf-8")
    }
}

/// Longest file name served (stored names are at most 29 + 1 + 4 + 1 + 4 + 1 + 15 bytes).
const MAX_NAME: usize = 64;

/// The file a request target names, relative to BaseDir: `NNN/NNN/name`.
pub fn relative_path(target: &str) -> Result<PathBuf, Refusal> {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let unsafe_byte = |b: &u8| *b == b'%' || *b == b'\\' || b.is_ascii_control() || *b >= 0x80;
    if path.contains("..") || path.as_bytes().iter().any(unsafe_byte) {
        return Err(Refusal::Unsafe);
    }
    let rest = path.strip_prefix('/').ok_or(Refusal::Unsafe)?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Refusal::Unsafe);
    }
    let [_, first, second, name] = parts.as_slice() else {
        return Err(Refusal::NotFound);
    };
    let dir_ok = |d: &str| d.len() == 3 && d.parse::<u16>().is_ok_and(|n| n <= 255);
    let name_ok = name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !dir_ok(first) || !dir_ok(second) || !name_ok {
        return Err(Refusal::NotFound);
    }
    Ok(Path::new(first).join(second).join(name))
}

/// Opens the file `rel` under `base`, not following symbolic links on the way.
pub fn open(base: &Path, rel: &Path) -> Result<(File, Metadata), Refusal> {
    let mut at = base.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Err(Refusal::Link),
            Ok(_) => {}
            Err(_) => return Err(Refusal::NotFound),
        }
    }
    let file = File::open(&at).map_err(|_| Refusal::NotFound)?;
    let meta = file.metadata().map_err(|_| Refusal::NotFound)?;
    if !meta.is_file() {
        return Err(Refusal::NotFound);
    }
    Ok((file, meta))
}

/// The response to a `GET` or `HEAD` of `req` under `base`: a download to stream, or a
/// complete response (refusals, 416).
pub fn prepare(base: &Path, req: &Request) -> Result<Prepared, Response> {
    let rel = relative_path(req.target()).map_err(Refusal::response)?;
    let (file, meta) = open(base, &rel).map_err(Refusal::response)?;
    let size = meta.len();
    let mtime = meta.mtime();
    let etag = format!("\"{size:x}-{mtime:x}-{:x}\"", meta.mtime_nsec());
    let last_modified = http_date(mtime);
    let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or_default();
    let head = |status| {
        Response::new(status)
            .header("Content-Type", content_type(ext))
            .header("Accept-Ranges", "bytes")
            .header("ETag", etag.clone())
            .header("Last-Modified", last_modified.clone())
    };
    if not_modified(req, &etag, mtime) {
        return Ok(Prepared {
            response: head(Status::NOT_MODIFIED),
            file,
            offset: 0,
            len: size,
        });
    }
    let whole = Prepared {
        response: head(Status::OK),
        file,
        offset: 0,
        len: size,
    };
    let Some(spec) = req.header("Range") else {
        return Ok(whole);
    };
    if let Some(tag) = req.header("If-Range")
        && tag.trim() != etag
        && tag.trim() != last_modified
    {
        return Ok(whole);
    }
    match byte_range(spec, size) {
        RangeAnswer::Whole => Ok(whole),
        RangeAnswer::Unsatisfiable => Err(Response::new(Status::RANGE_NOT_SATISFIABLE)
            .header("Content-Type", "text/html;charset=utf-8")
            .header("Content-Range", format!("bytes */{size}"))),
        RangeAnswer::Part(first, last) => Ok(Prepared {
            response: head(Status::PARTIAL_CONTENT)
                .header("Content-Range", format!("bytes {first}-{last}/{size}")),
            offset: first,
            len: last - first + 1,
            ..whole
        }),
    }
}

/// The original's content type of an extension (case kept), else `application/octet-stream`.
pub fn content_type(ext: &str) -> String {
    match ext {
        "jpg" | "JPG" | "jpeg" | "JPEG" | "png" | "PNG" | "gif" | "GIF" => format!("image/{ext}"),
        _ => "application/octet-stream".to_string(),
    }
}

/// `If-None-Match` decides when present, else `If-Modified-Since`.
fn not_modified(req: &Request, etag: &str, mtime: i64) -> bool {
    if let Some(tags) = req.header("If-None-Match") {
        let bare = etag.trim_start_matches("W/");
        return tags
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == bare);
    }
    req.header("If-Modified-Since")
        .and_then(parse_http_date)
        .is_some_and(|since| mtime <= since)
}

#[derive(Debug, PartialEq, Eq)]
enum RangeAnswer {
    Whole,
    Unsatisfiable,
    /// First and last byte, inclusive.
    Part(u64, u64),
}

/// One `bytes=` range of a file of `size` bytes; anything not understood gets the whole file.
fn byte_range(spec: &str, size: u64) -> RangeAnswer {
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    if set.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((a, b)) = set.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim().is_empty(), num(a), num(b)) {
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Part(size - n.min(size), size - 1)
            }
        }
        (false, Some(first), last) if b.trim().is_empty() || last.is_some() => {
            if last.is_some_and(|l| l < first) {
                return RangeAnswer::Whole;
            }
            if first >= size {
                return RangeAnswer::Unsatisfiable;
            }
            RangeAnswer::Part(first, last.map_or(size - 1, |l| l.min(size - 1)))
        }
        _ => RangeAnswer::Whole,
    }
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) of Unix seconds.
pub fn http_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Unix seconds of an IMF-fixdate; other date formats are not understood.
fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_ascii_whitespace().collect();
    let [_, d, mon, y, hms, "GMT"] = parts.as_slice() else {
        return None;
    };
    let m = MONTHS.iter().position(|x| x == mon)? as i64 + 1;
    let (d, y): (i64, i64) = (d.parse().ok()?, y.parse().ok()?);
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, s] = t.as_slice() else {
        return None;
    };
    Some(days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let ok = relative_path("/g0/000/012/1426151231123456_140234567890_1x2.png?t=1");
        assert_eq!(
            ok.unwrap(),
            PathBuf::from("000/012/1426151231123456_140234567890_1x2.png")
        );
        assert!(relative_path("/x/255/000/a.jpg").is_ok());
        for bad in [
            "/g0/000/000/../a.png",
            "/g0/000/%2e%2e/a.png",
            "/g0/000/000/a%00.png",
            "g0/000/000/a.png",
            "/g0//000/000/a.png",
            "/g0/000/000/a\\b.png",
            "/g0/000/000/a\u{1}.png",
            "/../../etc/passwd",
        ] {
            assert_eq!(relative_path(bad), Err(Refusal::Unsafe), "{bad}");
        }
        for missing in [
            "/g0/000/a.png",
            "/g0/256/000/a.png",
            "/g0/00/000/a.png",
            "/g0/000/000/.hidden",
            "/g0/000/000/a b.png",
            "/favicon.ico",
            "/g0/000/000/a.png/x",
        ] {
            assert_eq!(relative_path(missing), Err(Refusal::NotFound), "{missing}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-9", 100), RangeAnswer::Part(0, 9));
        assert_eq!(byte_range("bytes=90-", 100), RangeAnswer::Part(90, 99));
        assert_eq!(byte_range("bytes=90-200", 100), RangeAnswer::Part(90, 99));
        assert_eq!(byte_range("bytes=-10", 100), RangeAnswer::Part(90, 99));
        assert_eq!(byte_range("bytes=-200", 100), RangeAnswer::Part(0, 99));
        assert_eq!(byte_range("bytes=100-", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(byte_range("bytes=-0", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(byte_range("bytes=0-1,3-4", 100), RangeAnswer::Whole);
        assert_eq!(byte_range("bytes=5-1", 100), RangeAnswer::Whole);
        assert_eq!(byte_range("items=0-1", 100), RangeAnswer::Whole);
        assert_eq!(byte_range("bytes=x-1", 100), RangeAnswer::Whole);
    }

    #[test]
    fn dates_and_types() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        for secs in [0, 951_782_400, 1_764_566_018, 4_107_542_399] {
            assert_eq!(parse_http_date(&http_date(secs)), Some(secs));
        }
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(content_type("JPG"), "image/JPG");
        assert_eq!(content_type("png"), "image/png");
        assert_eq!(content_type("Png"), "application/octet-stream");
        assert_eq!(content_type("txt"), "application/octet-stream");
    }
}
