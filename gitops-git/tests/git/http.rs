//! fetch_mirror over smart HTTP: `git http-backend` behind a minimal CGI
//! server on 127.0.0.1 that the test starts and stops itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gitops_git::{FetchOptions, GitSource, fetch_mirror};

use crate::fixture::Repo;

/// A CGI gateway to `git http-backend`, one request per connection,
/// stopped (and joined) on drop; it also stops by itself after 60 s.
struct HttpBackend {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl HttpBackend {
    fn start(root: &Path) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let root = root.to_path_buf();
        let (stop2, requests2) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        requests2.fetch_add(1, Ordering::SeqCst);
                        let _ = serve(stream, &root);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            stop,
            requests,
            thread: Some(thread),
        }
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, root: &PathBuf) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("GET").to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    }
    let mut cgi = Command::new("git");
    cgi.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(ct) = header("content-type") {
        cgi.env("CONTENT_TYPE", ct);
    }
    if let Some(p) = header("git-protocol") {
        cgi.env("GIT_PROTOCOL", p);
    }
    if let Some(e) = header("content-encoding") {
        cgi.env("HTTP_CONTENT_ENCODING", e);
    }
    let mut child = cgi.spawn()?;
    let mut stdin = child.stdin.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output()?;
    let _ = writer.join();
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2)));
    let (head, payload) = match split {
        Some((p, n)) => (
            String::from_utf8_lossy(&raw[..p]).into_owned(),
            &raw[p + n..],
        ),
        None => (String::new(), &raw[..]),
    };
    let mut status = "200 OK".to_owned();
    let mut response = Vec::new();
    let mut extra = String::new();
    for h in head.lines() {
        match h.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_owned(),
            Some(_) => {
                extra.push_str(h.trim_end());
                extra.push_str("\r\n");
            }
            None => {}
        }
    }
    write!(
        response,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )?;
    response.extend_from_slice(payload);
    let mut stream = reader.into_inner();
    stream.write_all(&response)?;
    stream.flush()
}

#[test]
fn clones_and_fetches_over_smart_http_on_loopback() {
    let mut repo = Repo::new();
    repo.write("envs/prod/app.yaml", "v: 1\n");
    repo.commit("v1");
    repo.write("envs/prod/app.yaml", "v: 2\n");
    let c2 = repo.commit("v2");
    let server = HttpBackend::start(repo.dir.path().parent().unwrap());
    let name = repo
        .dir
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let url = format!("http://127.0.0.1:{}/{name}/.git", server.port);
    let mirrors = tempfile::tempdir().unwrap();
    let mirror = mirrors.path().join("env.git");

    let outcome =
        fetch_mirror(&url, &mirror, "main", &FetchOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(outcome.commit, c2);
    assert!(outcome.objects > 0);
    let source = GitSource::open(&mirror).unwrap();
    let rev = source.resolve_blocking("main").unwrap();
    let snap = source.snapshot_blocking(&rev, None).unwrap();
    assert_eq!(&*snap.get("envs/prod/app.yaml").unwrap().data, b"v: 2\n");

    repo.write("envs/prod/app.yaml", "v: 3\n");
    let c3 = repo.commit("v3");
    let update =
        fetch_mirror(&url, &mirror, "main", &FetchOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(update.commit, c3);
    assert!(server.requests.load(Ordering::SeqCst) >= 4);
    drop(server);
}

/// `https://` works with no TLS set-up by the program: the HTTPS client is
/// built (rustls with the one provider our crates compile in) and the fetch
/// fails only because nothing listens, with an error, never a panic.
#[test]
fn https_needs_no_tls_setup_and_a_closed_port_is_an_error() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mirrors = tempfile::tempdir().unwrap();
    let url = format!("https://127.0.0.1:{port}/env.git");
    let err = fetch_mirror(
        &url,
        mirrors.path().join("env.git"),
        "main",
        &FetchOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    let mut chain = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        chain.push_str(&format!(" / {c}"));
        cause = c.source();
    }
    assert!(
        matches!(err, gitops_core::SourceError::Unavailable { .. }),
        "{chain}"
    );
    assert!(chain.contains(&url), "{chain}");
    assert!(
        chain.to_lowercase().contains("connect") || chain.to_lowercase().contains("refused"),
        "the client was built and tried to connect: {chain}"
    );
}
