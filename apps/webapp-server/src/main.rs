//! The webapp's HTTP server, std only: `GET /` answers with the `GREETING`
//! environment variable, `GET /healthz` and `GET /ready` with `ok`, any other
//! path with 404. It listens on `PORT` (8080 when unset), serves each
//! connection on its own thread with short timeouts, and prints one line per
//! request on stdout. It reads no other variable (the database password it
//! is given is never touched, so never printed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long a client may take to send its request, or to read the answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head (request line and headers) read.
const MAX_HEAD: u64 = 16 * 1024;
const DEFAULT_PORT: u16 = 8080;
const DEFAULT_GREETING: &str = "Hello from harmony";

fn main() -> ExitCode {
    let port = match std::env::var("PORT") {
        Err(_) => DEFAULT_PORT,
        Ok(p) => match p.trim().parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                eprintln!(
                    "error: PORT=`{p}` is not a TCP port\nhelp: set PORT to a number from 0 to 65535, or unset it for {DEFAULT_PORT}"
                );
                return ExitCode::from(2);
            }
        },
    };
    let greeting: Arc<str> = std::env::var("GREETING").unwrap_or_else(|_| DEFAULT_GREETING.into()).into();
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on port {port}: {e}\nhelp: pick a free port with PORT=<n>");
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("webapp listening on {addr}"),
        Err(_) => println!("webapp listening on port {port}"),
    }
    serve(listener, greeting, TIMEOUT);
    ExitCode::SUCCESS
}

/// Accept connections forever, each served on its own thread.
fn serve(listener: TcpListener, greeting: Arc<str>, timeout: Duration) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let greeting = Arc::clone(&greeting);
                std::thread::spawn(move || handle(stream, &greeting, timeout));
            }
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
}

/// A response: status code, reason phrase, body.
type Response = (u16, &'static str, String);

/// Route a request.
fn respond(method: &str, path: &str, greeting: &str) -> Response {
    let known = matches!(path, "/" | "/healthz" | "/ready");
    match (method, path) {
        ("GET" | "HEAD", "/") => (200, "OK", greeting.to_owned()),
        ("GET" | "HEAD", "/healthz" | "/ready") => (200, "OK", "ok".to_owned()),
        _ if known => (405, "Method Not Allowed", "method not allowed".to_owned()),
        _ => (404, "Not Found", "not found".to_owned()),
    }
}

/// Read the request line and headers; `None` when the client sent nothing
/// (it closed, or timed out) and there is no one to answer.
fn read_request(stream: &TcpStream) -> Option<Result<(String, String), &'static str>> {
    let mut reader = BufReader::new(stream.take(MAX_HEAD));
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) | Err(_) => return None,
        Ok(_) => {}
    }
    let mut parts = line.split_whitespace();
    let request = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(version), None) if version.starts_with("HTTP/") => {
            // The path only: a query string is neither routed nor logged.
            let path = target.split(['?', '#']).next().unwrap_or_default();
            Ok((method.to_owned(), path.to_owned()))
        }
        _ => Err("malformed request line"),
    };
    // Skip the headers, up to the blank line that ends them.
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) => return Some(request.and(Err("incomplete request head"))),
            Ok(_) if header == "\r\n" || header == "\n" => return Some(request),
            Ok(_) => {}
            Err(_) => return Some(request.and(Err("incomplete request head"))),
        }
    }
}

fn handle(mut stream: TcpStream, greeting: &str, timeout: Duration) {
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let peer = stream.peer_addr().map_or_else(|_| "-".to_owned(), |a| a.to_string());
    let Some(request) = read_request(&stream) else { return };
    let (method, path, (code, reason, body)) = match request {
        Ok((method, path)) => {
            let response = respond(&method, &path, greeting);
            (method, path, response)
        }
        Err(why) => ("-".to_owned(), "-".to_owned(), (400, "Bad Request", why.to_owned())),
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut response = head.into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    let _ = stream.write_all(&response).and_then(|()| stream.flush());
    // Client-sent text is escaped, so a request cannot forge log lines.
    println!("{peer} {} {} {code}", method.escape_debug(), path.escape_debug());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(respond("GET", "/", "hi"), (200, "OK", "hi".into()));
        assert_eq!(respond("GET", "/healthz", "hi"), (200, "OK", "ok".into()));
        assert_eq!(respond("GET", "/ready", "hi"), (200, "OK", "ok".into()));
        assert_eq!(respond("GET", "/nope", "hi").0, 404);
        assert_eq!(respond("POST", "/", "hi").0, 405);
        assert_eq!(respond("DELETE", "/elsewhere", "hi").0, 404);
    }

    fn server(timeout: Duration) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(listener, "Hello, tests".into(), timeout));
        addr
    }

    fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn answers_over_tcp() {
        let addr = server(Duration::from_secs(5));
        let ok = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("\r\n\r\nok"), "{ok:?}");
        assert!(ok.contains("Content-Length: 2\r\n"));
        let ready = exchange(addr, b"GET /ready?probe=1 HTTP/1.0\r\n\r\n");
        assert!(ready.starts_with("HTTP/1.1 200 OK\r\n") && ready.ends_with("ok"), "{ready:?}");
        let root = exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(root.ends_with("\r\n\r\nHello, tests"), "{root:?}");
        let head = exchange(addr, b"HEAD / HTTP/1.1\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"), "{head:?}");
        let missing = exchange(addr, b"GET /missing HTTP/1.1\r\n\r\n");
        assert!(missing.starts_with("HTTP/1.1 404 Not Found\r\n"), "{missing:?}");
        let garbage = exchange(addr, b"hello\r\n\r\n");
        assert!(garbage.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{garbage:?}");
    }

    #[test]
    fn an_idle_client_is_dropped_and_does_not_block_others() {
        let addr = server(Duration::from_millis(200));
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Another client is served while the idle one holds its connection.
        let ok = exchange(addr, b"GET /healthz HTTP/1.1\r\n\r\n");
        assert!(ok.ends_with("ok"), "{ok:?}");
        // The idle one is closed after the timeout, with nothing sent.
        let mut rest = Vec::new();
        assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0);
    }
}
