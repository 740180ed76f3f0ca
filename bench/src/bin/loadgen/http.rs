//! Just enough HTTP/1.1 response parsing for a keep-alive client that never pipelines: find the
//! end of the headers, the status and `Content-Length`, and whether the server closes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use anyhow::{Context, Result, bail};

#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Header bytes plus body bytes: where the next response would start.
    pub total_len: usize,
    /// `Connection: close` (or HTTP/1.0): reconnect before the next request.
    pub close: bool,
}

/// `Ok(None)` while the response is incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<Head>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .get(9..12)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut close = status_line.starts_with("HTTP/1.0");
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // None of the three servers chunks a small fixed body; say so if one starts to.
            bail!("chunked responses are not supported");
        }
    }
    // A response without a length (e.g. 204) has no body.
    let total_len = end + 4 + length.unwrap_or(0);
    Ok((buf.len() >= total_len).then_some(Head {
        status,
        total_len,
        close,
    }))
}

/// One request on a fresh connection; returns the status and the raw response, for setup
/// (capturing response bodies, creating records) and sanity checks.
pub fn one_shot(addr: SocketAddr, request: &[u8]) -> Result<(u16, String)> {
    let mut stream =
        TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    stream.write_all(request)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(head) = parse(&buf)? {
            let text = String::from_utf8_lossy(&buf[..head.total_len]).into_owned();
            return Ok((head.status, text));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed before a full response");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keep_alive_and_close() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(
            parse(r).unwrap(),
            Some(Head {
                status: 200,
                total_len: r.len(),
                close: false
            })
        );
        assert_eq!(parse(&r[..r.len() - 1]).unwrap(), None);
        let c = b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert!(parse(c).unwrap().unwrap().close);
        let n = b"HTTP/1.1 204 No Content\r\nLocation: x\r\n\r\n";
        assert_eq!(parse(n).unwrap().unwrap().total_len, n.len());
    }
}
