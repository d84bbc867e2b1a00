//! A parsed HTTP request.

/// One whole request: request line, headers and the (decoded) body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) minor_version: u8,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
    pub(crate) keep_alive: bool,
}

impl Request {
    /// `GET`, `POST`, … as sent (methods are case-sensitive).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent: path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The target up to the first `?`.
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(p, _)| p)
    }

    /// What follows the first `?` of the target (not percent-decoded), if there is a `?`.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// The value of the first header field called `name` (ASCII case-insensitive), if it is
    /// UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The raw value of the first header field called `name` (ASCII case-insensitive).
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every header field in arrival order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Whether the client asked to keep the connection: HTTP/1.1 unless a `Connection` field
    /// lists `close`, HTTP/1.0 only if one lists `keep-alive`.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether a `Connection` field lists `keep-alive` (and none lists `close`), whatever the
    /// HTTP version: the client asked for a persistent connection in so many words.
    pub fn asked_keep_alive(&self) -> bool {
        wants_keep_alive(0, &self.headers)
    }
}

/// The keep-alive rule of [`Request::keep_alive`] over every `Connection` field.
pub(crate) fn wants_keep_alive(minor_version: u8, headers: &[(String, Vec<u8>)]) -> bool {
    let tokens = || {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(|&b| b == b','))
            .map(|t| t.trim_ascii())
    };
    if tokens().any(|t| t.eq_ignore_ascii_case(b"close")) {
        return false;
    }
    minor_version >= 1 || tokens().any(|t| t.eq_ignore_ascii_case(b"keep-alive"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(minor_version: u8, headers: &[(&str, &str)]) -> Request {
        let headers: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        Request {
            method: "GET".into(),
            target: "/a/b?x=1&y=%20?z".into(),
            minor_version,
            keep_alive: wants_keep_alive(minor_version, &headers),
            headers,
            body: Vec::new(),
        }
    }

    #[test]
    fn target_and_header_lookup() {
        let r = request(1, &[("Host", "h"), ("X-Two", "a"), ("x-two", "b")]);
        assert_eq!(r.path(), "/a/b");
        assert_eq!(r.query(), Some("x=1&y=%20?z"));
        assert_eq!(r.header("HOST"), Some("h"));
        assert_eq!(r.header("x-TWO"), Some("a"), "the first of repeated fields");
        assert_eq!(r.header("missing"), None);
        assert_eq!(r.headers().count(), 3);
        let mut r = r;
        r.target = "/plain".into();
        assert_eq!((r.path(), r.query()), ("/plain", None));
    }

    #[test]
    fn keep_alive_rules() {
        assert!(request(1, &[]).keep_alive());
        assert!(!request(1, &[("Connection", "close")]).keep_alive());
        assert!(!request(1, &[("connection", "Upgrade, Close")]).keep_alive());
        assert!(!request(0, &[]).keep_alive());
        assert!(request(0, &[("Connection", "Keep-Alive")]).keep_alive());
        assert!(request(0, &[("Connection", "TE"), ("Connection", " keep-alive ")]).keep_alive());
        assert!(!request(0, &[("Connection", "keep-alive, close")]).keep_alive());
        assert!(!request(1, &[]).asked_keep_alive());
        assert!(request(1, &[("Connection", "keep-alive")]).asked_keep_alive());
    }
}
