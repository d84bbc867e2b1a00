//! Uploads: the multipart body parsed as the original parses it (storage-file.md §8.4), and
//! the JSON bodies of its answers, byte for byte.
//!
//! The original's byte searches with case-sensitive markers are kept: `Content-Disposition:`
//! (error 2), `filename="…"` in that part's header (3; over 255 bytes: 11), an extension after
//! the last `.` (none: 10, 16 bytes or more: 9), `boundary=` in the request's `Content-Type`
//! (4), the boundary in the body (5), `Content-Type:` after it (6), the empty line after that
//! (7), the boundary again (8); the data ends 4 bytes before it (`\r\n--`). Differences, all
//! refusals of what the original mishandled:
//! - `filename=` is looked for in the part's header only, not in the data after it, and must
//!   be quoted with a closing quote (the original read past the buffer);
//! - the extension must be ASCII letters and digits (it becomes part of a stored file name
//!   and of a URL): anything else is error 10, like a name without one;
//! - the boundary stops at a `;` and loses surrounding quotes (RFC 2046 allows both);
//! - a layout whose data would end before it starts is error 8 (the original computed a
//!   negative size and answered a fake success).

use std::ops::Range;

/// `error_msg` of every format error (2…11).
const FORMAT_ERROR: &str = "格式错误";
/// Longest accepted file name (the original refuses 256 bytes or more).
const MAX_FILENAME: usize = 255;
/// Longest accepted extension (the original refuses 16 bytes or more).
const MAX_EXT: usize = 15;

/// A parsed upload: what the stored name ends with and where the file data is in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// `_<W>x<H>.<ext>` with a size hint in the uploaded name, else `.<ext>`.
    pub suffix: String,
    pub data: Range<usize>,
}

/// The original's error codes of a malformed upload (2…11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatError(pub u32);

/// Parses a multipart body whose request had `content_type`.
pub fn parse(content_type: Option<&[u8]>, body: &[u8]) -> Result<Upload, FormatError> {
    let disposition = find(body, b"Content-Disposition:", 0).ok_or(FormatError(2))?;
    let header_end = find(body, b"\r\n\r\n", disposition).unwrap_or(body.len());
    let header = &body[disposition..header_end];
    let name_at = find(header, b"filename=", 0).ok_or(FormatError(3))?;
    let quoted = &header[name_at + b"filename=".len()..];
    let name = quoted
        .strip_prefix(b"\"")
        .and_then(|rest| rest.iter().position(|&b| b == b'"').map(|end| &rest[..end]))
        .ok_or(FormatError(3))?;
    if name.len() > MAX_FILENAME {
        return Err(FormatError(11));
    }
    let dot = name
        .iter()
        .rposition(|&b| b == b'.')
        .ok_or(FormatError(10))?;
    let ext = &name[dot + 1..];
    if ext.len() > MAX_EXT {
        return Err(FormatError(9));
    }
    if ext.is_empty() || !ext.iter().all(u8::is_ascii_alphanumeric) {
        return Err(FormatError(10));
    }
    let ext = String::from_utf8_lossy(ext);
    let suffix = match size_hint(name, dot) {
        Some((w, h)) => format!("_{w}x{h}.{ext}"),
        None => format!(".{ext}"),
    };
    let boundary = content_type.and_then(boundary).ok_or(FormatError(4))?;
    let first = find(body, boundary, 0).ok_or(FormatError(5))?;
    let part_type = find(body, b"Content-Type:", first + boundary.len()).ok_or(FormatError(6))?;
    let start = find(body, b"\r\n\r\n", part_type).ok_or(FormatError(7))? + 4;
    let next = find(body, boundary, start).ok_or(FormatError(8))?;
    if next < start + 4 {
        return Err(FormatError(8));
    }
    Ok(Upload {
        suffix,
        data: start..next - 4,
    })
}

/// The size hint of a file name whose last `.` is at `dot`: the last `_`, the first `x`
/// after it; width and height (the texts around the `x`, up to the `.`) of 0 to 4 bytes
/// each, read as C's `atoi` reads them.
fn size_hint(name: &[u8], dot: usize) -> Option<(i32, i32)> {
    let underscore = name.iter().rposition(|&b| b == b'_')?;
    let x = underscore + 1 + name[underscore + 1..].iter().position(|&b| b == b'x')?;
    if x > dot {
        return None;
    }
    let (width, height) = (&name[underscore + 1..x], &name[x + 1..dot]);
    if width.len() > 4 || height.len() > 4 {
        return None;
    }
    Some((atoi(width), atoi(height)))
}

/// C's `atoi` on at most four bytes: leading blanks, a sign, digits, then anything.
fn atoi(text: &[u8]) -> i32 {
    let text = text.trim_ascii_start();
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let n = digits
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i32, |n, &b| n * 10 + i32::from(b - b'0'));
    if negative { -n } else { n }
}

/// The boundary of a `Content-Type` value: what follows `boundary=`, up to a `;`, without
/// surrounding quotes; `None` if absent or empty.
fn boundary(content_type: &[u8]) -> Option<&[u8]> {
    let at = find(content_type, b"boundary=", 0)? + b"boundary=".len();
    let value = &content_type[at..];
    let value = value
        .split(|&b| b == b';')
        .next()
        .unwrap_or(value)
        .trim_ascii();
    let value = value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(value);
    (!value.is_empty()).then_some(value)
}

/// The first `needle` in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

/// The success body: `path` is `g0/NNN/NNN/name`, `host` the request's `Host`.
pub fn ok_body(path: &str, host: &str) -> String {
    format!(
        "{{\"error_code\":0,\"error_msg\": \"成功\",\"path\":\"{path}\",\"url\":\"http://{host}/{path}\"}}"
    )
}

/// The body of error `code` with the original's `error_msg` for format errors, or `msg`.
pub fn error_body(code: u32, msg: &str) -> String {
    format!("{{\"error_code\":{code},\"error_msg\": \"{msg}\",\"path\":\"\",\"url\":\"\"}}")
}

/// The body of a format error (2…11).
pub fn format_error_body(e: FormatError) -> String {
    error_body(e.0, FORMAT_ERROR)
}

/// The original's body for a body over the size limit (error 1; it has no `path`).
pub fn too_large_body() -> String {
    "{\"error_code\":1,\"error_msg\": \"上传文件过大\",\"url\":\"\"}".to_string()
}

/// Error 12 (not in the original): the file could not be stored (disk full, I/O error, the
/// directory range used up).
pub fn store_failed_body() -> String {
    error_body(12, "存储失败")
}

/// Error 13 (not in the original): too many upload bytes in memory; try again later.
pub fn busy_body() -> String {
    error_body(13, "服务器繁忙")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &[u8] = b"multipart/form-data; boundary=XyZ";

    fn body(disposition: &str, data: &[u8]) -> Vec<u8> {
        let mut b = format!(
            "--XyZ\r\nContent-Disposition: {disposition}\r\nContent-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n--XyZ--\r\n");
        b
    }

    fn suffix_of(name: &str) -> Result<String, FormatError> {
        let b = body(
            &format!("form-data; name=\"file\"; filename=\"{name}\""),
            b"d",
        );
        parse(Some(CT), &b).map(|u| u.suffix)
    }

    #[test]
    fn data_range_and_suffixes() {
        let data = b"\x89PNG\r\n--not-a-boundary\r\n";
        let b = body("form-data; name=\"f\"; filename=\"a.png\"", data);
        let u = parse(Some(CT), &b).unwrap();
        assert_eq!(&b[u.data.clone()], data);
        assert_eq!(u.suffix, ".png");
        assert_eq!(suffix_of("pic_120x160.jpg").unwrap(), "_120x160.jpg");
        assert_eq!(suffix_of("a_b_12x7.PNG").unwrap(), "_12x7.PNG");
        assert_eq!(suffix_of("a_x.gif").unwrap(), "_0x0.gif");
        assert_eq!(
            suffix_of("a_12345x1.png").unwrap(),
            ".png",
            "width over 4 bytes"
        );
        assert_eq!(
            suffix_of("a_1x2.tar.gz").unwrap(),
            ".gz",
            "height over 4 bytes"
        );
        assert_eq!(suffix_of("plain.jpeg").unwrap(), ".jpeg");
        let quoted = b"multipart/form-data; boundary=\"XyZ\"; charset=x";
        let b = body("form-data; filename=\"a.png\"", b"z");
        assert_eq!(&b[parse(Some(quoted), &b).unwrap().data], b"z");
    }

    #[test]
    fn the_original_error_codes() {
        let no_cd = b"--XyZ\r\nContent-Type: image/png\r\n\r\nd\r\n--XyZ--\r\n";
        assert_eq!(parse(Some(CT), no_cd), Err(FormatError(2)));
        let no_name = body("form-data; name=\"file\"", b"d");
        assert_eq!(parse(Some(CT), &no_name), Err(FormatError(3)));
        let unquoted = body("form-data; filename=a.png", b"d");
        assert_eq!(parse(Some(CT), &unquoted), Err(FormatError(3)));
        let ok = body("form-data; filename=\"a.png\"", b"d");
        assert_eq!(parse(None, &ok), Err(FormatError(4)));
        assert_eq!(
            parse(Some(b"multipart/form-data"), &ok),
            Err(FormatError(4))
        );
        assert_eq!(
            parse(Some(b"multipart/form-data; boundary=Other"), &ok),
            Err(FormatError(5))
        );
        let no_type = b"--XyZ\r\nContent-Disposition: form-data; filename=\"a.png\"\r\n\r\nd";
        assert_eq!(parse(Some(CT), no_type), Err(FormatError(6)));
        let no_end =
            b"--XyZ\r\nContent-Disposition: form-data; filename=\"a.png\"\r\nContent-Type: x";
        assert_eq!(parse(Some(CT), no_end), Err(FormatError(7)));
        let mut cut = ok.clone();
        cut.truncate(cut.len() - 9);
        assert_eq!(parse(Some(CT), &cut), Err(FormatError(8)));
        assert_eq!(
            suffix_of(&format!("a.{}", "p".repeat(16))),
            Err(FormatError(9))
        );
        assert_eq!(suffix_of("noext"), Err(FormatError(10)));
        assert_eq!(suffix_of("a.p/ng"), Err(FormatError(10)));
        assert_eq!(suffix_of("a."), Err(FormatError(10)));
        assert_eq!(
            suffix_of(&format!("{}.png", "n".repeat(252))),
            Err(FormatError(11))
        );
        assert!(suffix_of(&format!("{}.png", "n".repeat(251))).is_ok());
    }

    #[test]
    fn the_original_bodies() {
        assert_eq!(
            ok_body("g0/000/000/1_2.png", "h:8700"),
            "{\"error_code\":0,\"error_msg\": \"成功\",\"path\":\"g0/000/000/1_2.png\",\
             \"url\":\"http://h:8700/g0/000/000/1_2.png\"}"
        );
        assert_eq!(
            format_error_body(FormatError(3)),
            "{\"error_code\":3,\"error_msg\": \"格式错误\",\"path\":\"\",\"url\":\"\"}"
        );
        assert_eq!(
            too_large_body(),
            "{\"error_code\":1,\"error_msg\": \"上传文件过大\",\"url\":\"\"}"
        );
        assert_eq!(atoi(b" -12"), -12);
        assert_eq!(atoi(b"7a"), 7);
    }
}
