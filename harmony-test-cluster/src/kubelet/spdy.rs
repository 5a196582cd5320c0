//! `/portForward/{ns}/{pod}` over SPDY/3.1 (protocol `portforward.k8s.io`): what
//! `kubectl port-forward` speaks to a kubelet, through the API server (which unwraps kubectl's
//! WebSocket tunnel, or passes its SPDY upgrade on). For every local connection kubectl opens two
//! streams, an error stream and a data stream, with the headers `streamType`, `port` and
//! `requestID`; the kubelet answers each, connects the data stream to the pod's port, and writes
//! on the error stream why it could not.
//!
//! Only what a port-forward uses of SPDY is here: SYN_STREAM, SYN_REPLY, DATA, RST_STREAM,
//! PING and GOAWAY frames, and header blocks compressed with zlib and SPDY's dictionary (read
//! with the dictionary; written as stored blocks, which need none).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::Kubelet;
use super::http::Body;

const PROTOCOL: &str = "portforward.k8s.io";
const FLAG_FIN: u8 = 0x01;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;

/// Whether the request asks for SPDY/3.1.
pub(crate) fn requested(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|u| u.to_str().ok())
        .is_some_and(|u| u.eq_ignore_ascii_case("SPDY/3.1"))
}

/// Upgrades the connection and serves the port-forward's streams.
pub(crate) fn serve(kubelet: &Arc<Kubelet>, req: http::Request<Incoming>, namespace: &str, pod: &str) -> Response<Body> {
    let offered = req
        .headers()
        .get_all("X-Stream-Protocol-Version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == PROTOCOL);
    if !offered {
        return super::http::text(
            StatusCode::FORBIDDEN,
            format!("unable to upgrade: the client offers no protocol this kubelet speaks ({PROTOCOL})"),
        );
    }
    let (kubelet, namespace, pod) = (kubelet.clone(), namespace.to_owned(), pod.to_owned());
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else { return };
        let target = move |port: u16| kubelet.port_target(&namespace, &pod, port);
        let _ = run(TokioIo::new(upgraded), target).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", PROTOCOL)
        .body(Full::new(Bytes::new()).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

/// One frame as it is read.
#[derive(Debug)]
enum Frame {
    Control { kind: u16, data: Vec<u8> },
    Data { stream: u32, flags: u8, data: Vec<u8> },
}

async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Frame> {
    let mut head = [0u8; 8];
    reader.read_exact(&mut head).await?;
    let flags = head[4];
    let length = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    let mut data = vec![0u8; length];
    reader.read_exact(&mut data).await?;
    if head[0] & 0x80 != 0 {
        Ok(Frame::Control {
            kind: u16::from_be_bytes([head[2], head[3]]),
            data,
        })
    } else {
        Ok(Frame::Data {
            stream: u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff,
            flags,
            data,
        })
    }
}

fn control(kind: u16, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80, 3];
    frame.extend_from_slice(&kind.to_be_bytes());
    frame.push(flags);
    frame.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(data);
    frame
}

fn data_frame(stream: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut frame = (stream & 0x7fff_ffff).to_be_bytes().to_vec();
    frame.push(flags);
    frame.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(data);
    frame
}

/// SPDY/3's header compression dictionary: length-prefixed words, then a run of common values.
fn dictionary() -> Vec<u8> {
    const WORDS: [&str; 65] = [
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &str = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505\
        203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized\
        403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable\
        Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT\
        chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,\
        text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    let mut out = Vec::with_capacity(1423);
    for word in WORDS {
        out.extend_from_slice(&(word.len() as u32).to_be_bytes());
        out.extend_from_slice(word.as_bytes());
    }
    out.extend_from_slice(TAIL.as_bytes());
    out
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// The peer's header blocks: one zlib stream over the connection, with SPDY's dictionary.
struct HeaderReader {
    inflater: Box<miniz_oxide::inflate::core::DecompressorOxide>,
    /// The dictionary, then everything inflated so far (the window the stream refers back to).
    history: Vec<u8>,
    /// The zlib header's bytes still to skip (2, then 4 for the dictionary's id).
    header: Vec<u8>,
    dictionary_id: u32,
}

impl HeaderReader {
    fn new() -> HeaderReader {
        let dictionary = dictionary();
        HeaderReader {
            inflater: Box::default(),
            dictionary_id: adler32(&dictionary),
            history: dictionary,
            header: Vec::new(),
        }
    }

    /// The header block a frame carries.
    fn read(&mut self, mut compressed: &[u8]) -> Result<Vec<(String, String)>, String> {
        use miniz_oxide::inflate::TINFLStatus;
        use miniz_oxide::inflate::core::inflate_flags::{TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF};
        // The stream's zlib header, which names the dictionary: checked, then skipped.
        while self.header.len() < 6 && !compressed.is_empty() {
            self.header.push(compressed[0]);
            compressed = &compressed[1..];
            if self.header.len() == 2 && self.header[1] & 0x20 == 0 {
                return Err("the header block's zlib stream names no dictionary".into());
            }
            if self.header.len() == 6 {
                let id = u32::from_be_bytes([self.header[2], self.header[3], self.header[4], self.header[5]]);
                if id != self.dictionary_id {
                    return Err(format!("the header block uses dictionary {id:08x}, not SPDY/3's"));
                }
            }
        }
        let start = self.history.len();
        let flags = TINFL_FLAG_HAS_MORE_INPUT | TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        loop {
            let position = self.history.len();
            self.history.resize(position + 16 * 1024, 0);
            let (status, read, written) =
                miniz_oxide::inflate::core::decompress(&mut self.inflater, compressed, &mut self.history, position, flags);
            self.history.truncate(position + written);
            compressed = &compressed[read..];
            match status {
                TINFLStatus::HasMoreOutput => continue,
                TINFLStatus::NeedsMoreInput | TINFLStatus::Done if compressed.is_empty() => break,
                TINFLStatus::NeedsMoreInput | TINFLStatus::Done => {}
                other => return Err(format!("the header block does not inflate: {other:?}")),
            }
        }
        parse_headers(&self.history[start..])
    }
}

fn parse_headers(block: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut at = 0;
    let mut next = |n: usize| -> Result<&[u8], String> {
        let slice = block.get(at..at + n).ok_or("a header block ends early")?;
        at += n;
        Ok(slice)
    };
    let number = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let count = number(next(4)?);
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let n = number(next(4)?);
        let name = String::from_utf8_lossy(next(n)?).to_lowercase();
        let n = number(next(4)?);
        let value = String::from_utf8_lossy(next(n)?).into_owned();
        headers.push((name, value));
    }
    Ok(headers)
}

/// Our header blocks: a zlib stream of stored blocks (no dictionary needed to read them).
struct HeaderWriter {
    started: bool,
}

impl HeaderWriter {
    fn write(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut block = (headers.len() as u32).to_be_bytes().to_vec();
        for (name, value) in headers {
            for s in [name, value] {
                block.extend_from_slice(&(s.len() as u32).to_be_bytes());
                block.extend_from_slice(s.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(block.len() + 7);
        if !self.started {
            // zlib: deflate, 32 KiB window, no dictionary.
            out.extend_from_slice(&[0x78, 0x01]);
            self.started = true;
        }
        let length = block.len() as u16;
        out.push(0x00);
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(&(!length).to_le_bytes());
        out.extend_from_slice(&block);
        // An empty stored block ends the frame's part of the stream, as a sync flush does: a
        // reader that looks for the next block header finds it here, not in the next frame.
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
        out
    }
}

/// A forwarded request: its error and data streams, as they arrive.
#[derive(Debug, Default)]
struct Pair {
    port: u16,
    error: Option<u32>,
    data: Option<u32>,
}

/// Serves one SPDY connection until the peer goes.
async fn run<S, F>(io: S, target: F) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(u16) -> Result<SocketAddr, String> + Send + Sync + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(io);
    let (out, mut outgoing) = mpsc::channel::<Vec<u8>>(64);
    let write = tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut headers_in = HeaderReader::new();
    let mut headers_out = HeaderWriter { started: false };
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    // What goes to the pod, by data stream.
    let mut to_pod: HashMap<u32, tokio::net::tcp::OwnedWriteHalf> = HashMap::new();
    let mut tasks = Vec::new();
    loop {
        let frame = match read_frame(&mut reader).await {
            Ok(frame) => frame,
            Err(_) => break,
        };
        match frame {
            Frame::Control {
                kind: SYN_STREAM, data, ..
            } if data.len() >= 10 => {
                let stream = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) & 0x7fff_ffff;
                let headers = match headers_in.read(&data[10..]) {
                    Ok(h) => h,
                    Err(_) => break,
                };
                let reply = headers_out.write(&[]);
                let mut body = stream.to_be_bytes().to_vec();
                body.extend_from_slice(&reply);
                let _ = out.send(control(SYN_REPLY, 0, &body)).await;
                let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
                let request = get("requestid").unwrap_or_default();
                let pair = pairs.entry(request.clone()).or_default();
                if let Some(port) = get("port").and_then(|p| p.parse().ok()) {
                    pair.port = port;
                }
                match get("streamtype").as_deref() {
                    Some("error") => pair.error = Some(stream),
                    Some("data") => pair.data = Some(stream),
                    _ => {
                        let _ = out
                            .send(control(RST_STREAM, 0, &[stream.to_be_bytes(), 1u32.to_be_bytes()].concat()))
                            .await;
                    }
                }
                if let (Some(error), Some(data)) = (pair.error, pair.data) {
                    let port = pair.port;
                    pairs.remove(&request);
                    match connect(&target, port).await {
                        Ok(stream) => {
                            let (mut from_pod, into_pod) = stream.into_split();
                            to_pod.insert(data, into_pod);
                            let out = out.clone();
                            tasks.push(tokio::spawn(async move {
                                let mut buf = vec![0u8; 32 * 1024];
                                loop {
                                    match from_pod.read(&mut buf).await {
                                        Ok(0) | Err(_) => break,
                                        Ok(n) => {
                                            if out.send(data_frame(data, 0, &buf[..n])).await.is_err() {
                                                return;
                                            }
                                        }
                                    }
                                }
                                let _ = out.send(data_frame(data, FLAG_FIN, &[])).await;
                                let _ = out.send(data_frame(error, FLAG_FIN, &[])).await;
                            }));
                        }
                        Err(why) => {
                            let message = format!("error forwarding port {port} to pod: {why}");
                            let _ = out.send(data_frame(error, 0, message.as_bytes())).await;
                            let _ = out.send(data_frame(error, FLAG_FIN, &[])).await;
                            let _ = out.send(data_frame(data, FLAG_FIN, &[])).await;
                        }
                    }
                }
            }
            Frame::Control { kind: PING, data, .. } => {
                let _ = out.send(control(PING, 0, &data)).await;
            }
            Frame::Control {
                kind: RST_STREAM, data, ..
            } if data.len() >= 4 => {
                let stream = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) & 0x7fff_ffff;
                to_pod.remove(&stream);
            }
            Frame::Control { kind: GOAWAY, .. } => break,
            Frame::Control { .. } => {}
            Frame::Data { stream, flags, data } => {
                if let Some(into_pod) = to_pod.get_mut(&stream) {
                    if !data.is_empty() && into_pod.write_all(&data).await.is_err() {
                        to_pod.remove(&stream);
                    } else if flags & FLAG_FIN != 0 {
                        let _ = into_pod.shutdown().await;
                    }
                }
            }
        }
    }
    drop(to_pod);
    for task in tasks {
        task.abort();
    }
    drop(out);
    let _ = write.await;
    Ok(())
}

async fn connect<F: Fn(u16) -> Result<SocketAddr, String>>(target: &F, port: u16) -> Result<tokio::net::TcpStream, String> {
    let addr = target(port)?;
    tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("failed to connect to localhost:{port} inside the pod: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_spdy_3s() {
        let dictionary = dictionary();
        assert_eq!(dictionary.len(), 1423);
        // The id a SPDY/3 peer's zlib header names.
        assert_eq!(adler32(&dictionary), 0xe3c6_a7c2);
    }

    /// Two SYN_STREAM header blocks as a SPDY/3 peer compresses them (one zlib stream with the
    /// dictionary, a sync flush after each), read back in order.
    #[test]
    fn a_peers_header_blocks_inflate_with_the_dictionary() {
        let error = [
            0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0x25, 0x3a, 0x70, 0x3a, 0x2b, 0x29, 0x4a, 0x4d, 0xcc, 0x85, 0x16, 0x25, 0xac, 0xa9,
            0xa0, 0x80, 0x86, 0x14, 0xcb, 0x45, 0xe0, 0x1c, 0x60, 0x61, 0x60, 0x61, 0x00, 0xa4, 0x39, 0x8b, 0x20, 0xd1, 0x98, 0x09, 0x4a,
            0xde, 0x8c, 0x06, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
        ];
        let data = [0xc2, 0xaa, 0x19, 0x54, 0x0e, 0x25, 0x12, 0xd6, 0x0b, 0x00, 0x00, 0x00, 0xff, 0xff];
        let mut reader = HeaderReader::new();
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
        assert_eq!(
            reader.read(&error).unwrap(),
            pairs(&[("streamtype", "error"), ("port", "8080"), ("requestid", "0")])
        );
        assert_eq!(
            reader.read(&data).unwrap(),
            pairs(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")])
        );
    }

    #[test]
    fn header_blocks_read_back_what_was_written() {
        let mut writer = HeaderWriter { started: false };
        let first = writer.write(&[("streamtype", "data"), ("port", "8080")]);
        // Stored blocks: the reader's zlib header check wants a dictionary, so check the
        // block itself.
        assert_eq!(&first[..2], &[0x78, 0x01]);
        let block = &first[7..first.len() - 5];
        assert_eq!(
            parse_headers(block).unwrap(),
            [("streamtype".to_owned(), "data".to_owned()), ("port".to_owned(), "8080".to_owned())]
        );
    }
}
