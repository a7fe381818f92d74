//! Just enough HTTP/1.1 for a keep-alive GET: the request written out by hand, and a parser that
//! says where a response ends (Content-Length or chunked; anything else is an error, never a
//! guess).

/// Where to send the requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host as written in the URL (name or address; `[v6]` without the brackets).
    pub host: String,
    pub port: u16,
    /// The `Host` header: host, and `:port` when the URL had one.
    pub authority: String,
    /// Path and query; `/` when the URL had none.
    pub path: String,
}

/// `http://host[:port][/path]`. HTTPS is not spoken.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs are supported (no TLS)"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url}: expected http://host[:port]/path"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| format!("{url}: unclosed '['"))?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(format!("{url}: junk after ']'")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| format!("{url}: bad port {p:?}"))?,
        None => 80,
    };
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    Ok(Target { host: host.to_string(), port, authority: authority.to_string(), path })
}

/// The bytes of one GET, sent as is for every request. `headers` are `Name: value` lines.
pub fn request_bytes(t: &Target, headers: &[String]) -> Result<Vec<u8>, String> {
    let mut r = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", t.path, t.authority);
    for h in headers {
        let (name, value) = h.split_once(':').ok_or_else(|| format!("header {h:?}: expected 'Name: value'"))?;
        if name.is_empty() || name.trim() != name || h.contains(['\r', '\n']) {
            return Err(format!("header {h:?}: expected 'Name: value'"));
        }
        r.push_str(&format!("{name}: {}\r\n", value.trim()));
    }
    r.push_str("\r\n");
    Ok(r.into_bytes())
}

/// A complete response at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The server will close the connection after it (`Connection: close`, or HTTP/1.0 without
    /// keep-alive).
    pub close: bool,
    /// Bytes of the buffer it takes (interim 1xx responses before it included).
    pub len: usize,
}

/// Longest head accepted (status line and headers).
const MAX_HEAD: usize = 64 << 10;
/// Longest chunk-size line accepted.
const MAX_CHUNK_LINE: usize = 1024;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The response at the start of `buf` (an answer to a GET): `Ok(None)` while it is incomplete,
/// `Err` when it cannot be delimited or is not HTTP/1.x.
pub fn parse_response(buf: &[u8]) -> Result<Option<Response>, String> {
    let mut start = 0;
    loop {
        let Some(head_len) = find(&buf[start..], b"\r\n\r\n") else {
            if buf.len() - start > MAX_HEAD {
                return Err("response head over 64 KiB".into());
            }
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&buf[start..start + head_len]);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if version != "HTTP/1.1" && version != "HTTP/1.0" {
            return Err(format!("not an HTTP/1.x status line: {status_line:?}"));
        }
        let status = parts
            .next()
            .filter(|s| s.len() == 3)
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..=999).contains(s))
            .ok_or_else(|| format!("bad status line: {status_line:?}"))?;
        let mut close = version == "HTTP/1.0";
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        for line in lines {
            let (name, value) = line.split_once(':').ok_or_else(|| format!("bad header line: {line:?}"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let n = value.parse::<usize>().map_err(|_| format!("bad Content-Length: {value:?}"))?;
                if content_length.is_some_and(|m| m != n) {
                    return Err("two different Content-Length headers".into());
                }
                content_length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                let last = value.rsplit(',').next().unwrap_or_default().trim();
                if !last.eq_ignore_ascii_case("chunked") {
                    return Err(format!("Transfer-Encoding {value:?} is not supported (only chunked)"));
                }
                chunked = true;
            } else if name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") && version == "HTTP/1.0" {
                        close = false;
                    }
                }
            }
        }
        let body = start + head_len + 4;
        match status {
            101 => return Err("101 Switching Protocols: not an answer to a GET".into()),
            100..=199 => {
                // Interim response: the final one follows.
                start = body;
                continue;
            }
            204 | 304 => return Ok(Some(Response { status, close, len: body })),
            _ => {}
        }
        let end = if chunked {
            chunked_len(&buf[body..])?.map(|n| body + n)
        } else if let Some(n) = content_length {
            let end = body.checked_add(n).ok_or("Content-Length overflows")?;
            (buf.len() >= end).then_some(end)
        } else {
            return Err(format!(
                "response {status} has neither Content-Length nor chunked Transfer-Encoding \
                 (a body ended by closing the connection is not supported)"
            ));
        };
        return Ok(end.map(|len| Response { status, close, len }));
    }
}

/// Length of the chunked body at the start of `b` (chunks, the last chunk, trailers, the final
/// empty line): `Ok(None)` while incomplete.
fn chunked_len(b: &[u8]) -> Result<Option<usize>, String> {
    let mut pos = 0usize;
    loop {
        let Some(eol) = find(&b[pos..], b"\r\n") else {
            if b.len() - pos > MAX_CHUNK_LINE {
                return Err("chunk-size line too long".into());
            }
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&b[pos..pos + eol]);
        let digits = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(digits, 16)
            .ok()
            .filter(|_| !digits.is_empty() && !digits.starts_with('+'))
            .ok_or_else(|| format!("bad chunk size: {line:?}"))?;
        pos += eol + 2;
        if size == 0 {
            // Trailer lines, then the empty line that ends the message.
            loop {
                let Some(eol) = find(&b[pos..], b"\r\n") else {
                    if b.len() - pos > MAX_HEAD {
                        return Err("trailers over 64 KiB".into());
                    }
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        let data_end = pos.checked_add(size).ok_or("chunk size overflows")?;
        if b.len() < data_end + 2 {
            return Ok(None);
        }
        if &b[data_end..data_end + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        pos = data_end + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Result<Option<Response>, String> {
        parse_response(s.as_bytes())
    }

    #[test]
    fn url_forms() {
        let t = parse_url("http://127.0.0.1:18082/bench/data.json").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str(), t.path.as_str()),
            ("127.0.0.1", 18082, "127.0.0.1:18082", "/bench/data.json")
        );
        let t = parse_url("http://localhost").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("localhost", 80, "/"));
        let t = parse_url("http://h:1?q=1").unwrap();
        assert_eq!(t.path, "/?q=1");
        let t = parse_url("http://[::1]:8080/x").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.authority.as_str()), ("::1", 8080, "[::1]:8080"));
        assert!(parse_url("https://h/").unwrap_err().contains("only http://"));
        assert!(parse_url("http://h:99999/").is_err());
        assert!(parse_url("http:///x").is_err());
    }

    #[test]
    fn request_is_a_keep_alive_get() {
        let t = parse_url("http://127.0.0.1:1/a?b").unwrap();
        let r = request_bytes(&t, &["Authorization:  Bearer x.y ".into()]).unwrap();
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "GET /a?b HTTP/1.1\r\nHost: 127.0.0.1:1\r\nAuthorization: Bearer x.y\r\n\r\n"
        );
        assert!(request_bytes(&t, &["no colon".into()]).is_err());
        assert!(request_bytes(&t, &["X: a\r\nY: b".into()]).is_err());
    }

    #[test]
    fn content_length_incomplete_then_complete() {
        let full = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 5\r\n\r\nhello";
        for cut in 0..full.len() {
            assert_eq!(parsed(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(parsed(full), Ok(Some(Response { status: 200, close: false, len: full.len() })));
        // A following response's bytes are not part of it.
        let two = format!("{full}HTTP/1.1 200 OK\r\n");
        assert_eq!(parsed(&two).unwrap().unwrap().len, full.len());
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let full = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(parsed(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(parsed(full), Ok(Some(Response { status: 200, close: false, len: full.len() })));
        let bare = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(parsed(bare).unwrap().unwrap().len, bare.len());
    }

    #[test]
    fn chunked_errors() {
        assert!(parsed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
        assert!(parsed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n").is_err());
        assert!(parsed("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").is_err());
    }

    #[test]
    fn status_and_close() {
        let r = parsed("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert_eq!((r.status, r.close), (404, true));
        let r = parsed("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(r.close);
        let r = parsed("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(!r.close);
        let r = parsed("HTTP/1.1 204 No Content\r\n\r\n").unwrap().unwrap();
        assert_eq!((r.status, r.len), (204, 27));
    }

    #[test]
    fn interim_responses_are_skipped() {
        let full = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(parsed(full), Ok(Some(Response { status: 201, close: false, len: full.len() })));
        assert_eq!(parsed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 20"), Ok(None));
    }

    #[test]
    fn undelimited_or_foreign_responses_fail_clearly() {
        let e = parsed("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody").unwrap_err();
        assert!(e.contains("neither Content-Length nor chunked"), "{e}");
        assert!(parsed("HTTP/2 200\r\n\r\n").is_err());
        assert!(parsed("HTTP/1.1 2000 OK\r\n\r\n").is_err());
        assert!(parsed("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parsed("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_err());
        assert!(parsed("HTTP/1.1 200 OK\r\nno-colon\r\n\r\n").is_err());
        assert!(parsed("HTTP/1.1 101 Switching Protocols\r\n\r\n").is_err());
        assert!(parse_response(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }
}
