//! A real Kubernetes API server for integration tests (feature `testing`).
//!
//! [`TestCluster::start`] gives tests a real API server, the same idea as
//! controller-runtime's *envtest*: a real `etcd` and a real `kube-apiserver`,
//! no kubelet and no controllers. Objects are stored and validated for real,
//! server-side apply computes `managedFields` and field-ownership conflicts
//! for real, and CRDs get established and serve their custom resources.
//!
//! Where the server comes from, in order:
//! 1. `GITOPS_TEST_KUBECONFIG`: the path of a kubeconfig; its current context
//!    is used as is (kind, k3d, a real cluster). Nothing is started.
//! 2. The binaries `etcd` and `kube-apiserver` in `$GITOPS_ENVTEST_BIN`, else
//!    `$GITOPS_ENVTEST_DIR/bin`, else `~/.cache/gitops-envtest/v1.20.2/bin`
//!    (where `scripts/envtest.sh` puts them). Both are started on free
//!    loopback ports in a temporary directory, with certificates generated
//!    in-process.
//! 3. **Provisioned on first use**: when neither is there (and
//!    `GITOPS_ENVTEST_BIN` is not set), the harness runs the project's
//!    `scripts/envtest.sh` (embedded in this crate, see [`provision`]),
//!    which builds both binaries from Debian's source packages into the
//!    cache folder of 2. The first run takes several minutes (about 5 on two
//!    cores) and prints its progress on stderr; later runs find the cache.
//!    The script holds a lock, so test binaries running at the same time
//!    wait for one build instead of racing. `GITOPS_ENVTEST_PROVISION=0`
//!    turns this off.
//!
//! When no server can be had, [`TestCluster::start`] returns
//! [`HarnessError::Unavailable`] or [`HarnessError::Provision`];
//! [`shared_or_skip`] turns that into a skip (a `SKIPPED: ...` line on
//! stderr) on a developer machine, and into a panic when the `CI`
//! environment variable is set, so CI cannot pass without having run the
//! tests.
//!
//! Tests must not assume this particular server: create a fresh namespace
//! per test with [`TestCluster::create_namespace`] and never touch anything
//! else than what the test created.
//!
//! ```no_run
//! # async fn demo() {
//! let Some(cluster) = gitops_kube::testing::shared_or_skip().await else {
//!     return; // skipped: no API server on this machine
//! };
//! let ns = cluster.create_namespace("demo").await.unwrap();
//! let client = cluster.client();
//! # let _ = (ns, client);
//! # }
//! ```

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::sync::OnceCell;

/// The environment variable naming a kubeconfig to test against instead of
/// starting a local API server.
pub const KUBECONFIG_ENV: &str = "GITOPS_TEST_KUBECONFIG";
/// The environment variable naming the folder holding `etcd` and
/// `kube-apiserver`.
pub const BIN_ENV: &str = "GITOPS_ENVTEST_BIN";
/// The environment variable naming the envtest folder (binaries in its `bin`),
/// as honoured by `scripts/envtest.sh`.
pub const DIR_ENV: &str = "GITOPS_ENVTEST_DIR";
/// The Kubernetes version `scripts/envtest.sh` provides.
pub const ENVTEST_VERSION: &str = "v1.20.2";
/// The environment variable that turns provisioning on first use off (`0`).
pub const PROVISION_ENV: &str = "GITOPS_ENVTEST_PROVISION";

/// The provisioning script, `scripts/envtest.sh` of the repository (kept in
/// this crate so that the harness can run it wherever the crate is built).
pub const ENVTEST_SCRIPT: &str = include_str!("../scripts/envtest.sh");

/// How long to wait for `/readyz` before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The error returned by [`TestCluster::start`] and the harness helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// Neither a kubeconfig nor the envtest binaries are available.
    #[error(
        "no kube-apiserver: {reason}; run scripts/envtest.sh (or set {KUBECONFIG_ENV} to a kubeconfig)"
    )]
    Unavailable {
        /// What was looked for and not found.
        reason: String,
    },
    /// Provisioning the binaries with `scripts/envtest.sh` failed.
    #[error(
        "provisioning kube-apiserver + etcd with scripts/envtest.sh failed: {message} (its log is above on stderr; set {KUBECONFIG_ENV} to use another cluster)"
    )]
    Provision {
        /// What went wrong.
        message: String,
    },
    /// A file of the harness could not be written or read.
    #[error("test harness I/O on {path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate or key could not be generated.
    #[error("generating test certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A server process could not be started, or exited early.
    #[error("{process} failed: {message}\n--- last lines of its log ---\n{log_tail}")]
    Process {
        /// `etcd` or `kube-apiserver`.
        process: &'static str,
        /// What went wrong.
        message: String,
        /// The end of the process' log, to see why.
        log_tail: String,
    },
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// The client could not be built or a request failed.
    #[error("kube client: {0}")]
    Client(#[from] kube::Error),
    /// The server did not become ready in time.
    #[error("kube-apiserver not ready after {0:?}\n--- last lines of its log ---\n{1}")]
    NotReady(Duration, String),
}

impl HarnessError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// A running (or connected) Kubernetes API server for tests.
///
/// Dropping a started server kills `kube-apiserver` first, then `etcd`, then
/// removes its temporary directory. A watchdog process does the same if the
/// test process ends without dropping it (a `static` shared server, a panic
/// with `abort`, a `SIGKILL`).
pub struct TestCluster {
    config: Config,
    local: Option<LocalServer>,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("server", &self.config.cluster_url)
            .field("local", &self.local.is_some())
            .finish()
    }
}

struct LocalServer {
    // Field order matters only for documentation: `Drop for LocalServer`
    // stops the processes explicitly, and `dir` is removed after that.
    watchdog: Child,
    apiserver: Child,
    etcd: Child,
    dir: tempfile::TempDir,
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        // The watchdog first, so that it cannot act on reused process ids.
        for child in [&mut self.watchdog, &mut self.apiserver, &mut self.etcd] {
            let _ = child.kill();
            let _ = child.wait();
        }
        tracing::debug!(dir = %self.dir.path().display(), "test cluster stopped");
    }
}

impl TestCluster {
    /// Connects to `$GITOPS_TEST_KUBECONFIG`, or starts etcd + kube-apiserver.
    ///
    /// Takes about 4 s when it starts a server. See the [module docs](self).
    ///
    /// # Errors
    /// [`HarnessError::Unavailable`] when neither a kubeconfig nor the
    /// binaries are available; another variant when starting failed.
    pub async fn start() -> Result<TestCluster, HarnessError> {
        if let Some(path) = std::env::var_os(KUBECONFIG_ENV).filter(|p| !p.is_empty()) {
            return Self::connect(Path::new(&path)).await;
        }
        let bin = match find_binaries() {
            Ok(bin) => bin,
            Err(unavailable) if provisioning_allowed() => match provision(None).await {
                Ok(bin) => bin,
                Err(HarnessError::Provision { message }) => {
                    return Err(HarnessError::Provision {
                        message: format!("{message}; before that: {unavailable}"),
                    });
                }
                Err(other) => return Err(other),
            },
            Err(unavailable) => return Err(unavailable),
        };
        Self::start_local(&bin).await
    }

    /// Connects to the current context of the kubeconfig at `path`.
    ///
    /// # Errors
    /// When the kubeconfig cannot be read or the cluster does not answer.
    pub async fn connect(path: &Path) -> Result<TestCluster, HarnessError> {
        let kubeconfig = Kubeconfig::read_from(path)?;
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        let cluster = TestCluster {
            config,
            local: None,
        };
        cluster.client_checked()?.apiserver_version().await?;
        Ok(cluster)
    }

    /// Starts etcd + kube-apiserver from the folder `bin`.
    ///
    /// # Errors
    /// When a binary is missing, a process fails, or the server is not ready
    /// in time.
    pub async fn start_local(bin: &Path) -> Result<TestCluster, HarnessError> {
        let etcd_bin = bin.join("etcd");
        let apiserver_bin = bin.join("kube-apiserver");
        for b in [&etcd_bin, &apiserver_bin] {
            if !b.is_file() {
                return Err(HarnessError::Unavailable {
                    reason: format!("{} not found", b.display()),
                });
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("gitops-envtest-")
            .tempdir()
            .map_err(HarnessError::io(std::env::temp_dir()))?;
        let d = dir.path().to_path_buf();
        let write = |name: &str, text: &str| -> Result<PathBuf, HarnessError> {
            let p = d.join(name);
            std::fs::write(&p, text).map_err(HarnessError::io(&p))?;
            Ok(p)
        };

        // Certificates: a CA, a server certificate it signs, and a key pair
        // for service-account tokens (ECDSA P-256: kube-apiserver accepts
        // RSA or ECDSA there, and rcgen makes ECDSA keys without extra deps).
        let pki = Pki::generate()?;
        let ca_crt = write("ca.crt", &pki.ca_pem)?;
        let server_crt = write("server.crt", &pki.server_pem)?;
        let server_key = write("server.key", &pki.server_key_pem)?;
        let sa_key = write("sa.key", &pki.sa_key_pem)?;
        let sa_pub = write("sa.pub", &pki.sa_pub_pem)?;
        let token = random_hex(32);
        let tokens = write(
            "tokens.csv",
            &format!("{token},admin,admin,system:masters\n"),
        )?;

        let etcd_port = free_port(&d)?;
        let peer_port = free_port(&d)?;
        let secure_port = free_port(&d)?;

        let etcd_log = d.join("etcd.log");
        let etcd_data = d.join("etcd-data");
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut etcd = spawn(
            "etcd",
            Command::new(&etcd_bin)
                .arg("--data-dir")
                .arg(&etcd_data)
                .args(["--name", "gitops-envtest"])
                .args(["--listen-client-urls", &etcd_url])
                .args(["--advertise-client-urls", &etcd_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &format!("gitops-envtest={peer_url}")])
                .arg("--unsafe-no-fsync"),
            &etcd_log,
        )?;

        let apiserver_log = d.join("kube-apiserver.log");
        let spawned = spawn(
            "kube-apiserver",
            Command::new(&apiserver_bin)
                .arg(format!("--etcd-servers={etcd_url}"))
                .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
                .arg(format!("--secure-port={secure_port}"))
                .arg("--insecure-port=0")
                .arg(format!("--cert-dir={}", d.join("certs").display()))
                .arg(format!("--tls-cert-file={}", server_crt.display()))
                .arg(format!("--tls-private-key-file={}", server_key.display()))
                .arg(format!("--client-ca-file={}", ca_crt.display()))
                .arg(format!("--token-auth-file={}", tokens.display()))
                .arg("--authorization-mode=RBAC")
                .arg("--service-account-issuer=https://kubernetes.default.svc")
                .arg(format!("--service-account-key-file={}", sa_pub.display()))
                .arg(format!(
                    "--service-account-signing-key-file={}",
                    sa_key.display()
                ))
                .arg("--service-cluster-ip-range=10.0.0.0/24")
                .arg("--allow-privileged=true")
                .arg("--disable-admission-plugins=ServiceAccount"),
            &apiserver_log,
        );
        let mut apiserver = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = etcd.kill();
                let _ = etcd.wait();
                return Err(e);
            }
        };

        // The watchdog stops both servers and removes the folder when the
        // test process goes away without dropping us: its stdin is a pipe
        // only we hold, so it reads EOF when we exit, however we exit.
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(r#"cat >/dev/null; kill -9 "$1" 2>/dev/null; kill -9 "$2" 2>/dev/null; sleep 1; rm -rf "$3""#)
            .arg("gitops-envtest-watchdog")
            .arg(apiserver.id().to_string())
            .arg(etcd.id().to_string())
            .arg(&d)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let watchdog = match watchdog {
            Ok(w) => w,
            Err(e) => {
                for child in [&mut apiserver, &mut etcd] {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                return Err(HarnessError::io("sh")(e));
            }
        };
        let mut local = LocalServer {
            watchdog,
            apiserver,
            etcd,
            dir,
        };

        let kubeconfig_text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: https://127.0.0.1:{secure_port}\n    certificate-authority: {ca}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: envtest\n  context:\n    cluster: envtest\n    user: admin\n    namespace: default\ncurrent-context: envtest\n",
            ca = ca_crt.display(),
        );
        write("kubeconfig", &kubeconfig_text)?;
        let kubeconfig = Kubeconfig::from_yaml(&kubeconfig_text)?;
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        let client = Client::try_from(config.clone())?;

        wait_ready(&client, &mut local, &apiserver_log, &etcd_log).await?;
        tracing::info!(
            server = %config.cluster_url,
            dir = %d.display(),
            "test kube-apiserver ready"
        );
        Ok(TestCluster {
            config,
            local: Some(local),
        })
    }

    /// A new client for this server.
    ///
    /// A new one each call, bound to the calling tokio runtime: a shared
    /// server outlives the runtime of any one `#[tokio::test]`.
    ///
    /// # Panics
    /// Never in practice: the same configuration already built a client when
    /// the cluster was started or connected.
    pub fn client(&self) -> Client {
        #[allow(clippy::expect_used)] // the configuration was validated in start().
        self.client_checked()
            .expect("this configuration already built a client")
    }

    fn client_checked(&self) -> Result<Client, HarnessError> {
        Ok(Client::try_from(self.config.clone())?)
    }

    /// A new client for this server that records every HTTP request it
    /// sends (method, path and query) in the returned [`RequestLog`]: to
    /// count what an operation costs the API server.
    ///
    /// # Errors
    /// When the client cannot be built from this server's configuration.
    pub fn recording_client(&self) -> Result<(Client, RequestLog), HarnessError> {
        let log = RequestLog::default();
        let recorder = log.clone();
        let layer =
            tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
                recorder.push(RecordedRequest {
                    method: request.method().as_str().to_owned(),
                    path: request.uri().path().to_owned(),
                    query: request.uri().query().map(str::to_owned),
                    metadata_only: request
                        .headers()
                        .get(http::header::ACCEPT)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.contains("as=PartialObjectMetadata")),
                });
                request
            });
        let client = kube::client::ClientBuilder::try_from(self.config.clone())?
            .with_layer(&layer)
            .build();
        Ok((client, log))
    }

    /// The client configuration of this server.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether this server was started by the harness (as opposed to a
    /// cluster reached through `GITOPS_TEST_KUBECONFIG`).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// The kubeconfig file of a started server (for `kubectl --kubeconfig`
    /// while debugging); `None` for a connected cluster.
    pub fn kubeconfig_path(&self) -> Option<PathBuf> {
        self.local.as_ref().map(|l| l.dir.path().join("kubeconfig"))
    }

    /// Creates a namespace with a unique name starting with `prefix` and
    /// returns its name. Tests sharing one server each work in their own.
    ///
    /// # Errors
    /// When the API server refuses.
    pub async fn create_namespace(&self, prefix: &str) -> Result<String, HarnessError> {
        let name = unique_name(prefix);
        let api: Api<Namespace> = Api::all(self.client());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": { "gitops.test/harness": "true" }
            }
        }))
        .map_err(|e| HarnessError::Client(kube::Error::SerdeError(e)))?;
        api.create(&PostParams::default(), &ns).await?;
        Ok(name)
    }

    /// Deletes a namespace made by [`create_namespace`](Self::create_namespace)
    /// (useful against a long-lived cluster; a started server is thrown away
    /// anyway).
    ///
    /// # Errors
    /// When the API server refuses.
    pub async fn delete_namespace(&self, name: &str) -> Result<(), HarnessError> {
        let api: Api<Namespace> = Api::all(self.client());
        api.delete(name, &DeleteParams::background()).await?;
        Ok(())
    }
}

/// One HTTP request sent by a [`TestCluster::recording_client`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The HTTP method (`GET`, `PATCH`, ...).
    pub method: String,
    /// The path, such as `/api/v1/namespaces/demo/configmaps`.
    pub path: String,
    /// The query string, if any (`labelSelector=...`).
    pub query: Option<String>,
    /// Whether only the objects' metadata was asked for (`Accept:
    /// ...;as=PartialObjectMetadata...`): the server sends no spec, data or
    /// status.
    pub metadata_only: bool,
}

impl RecordedRequest {
    /// Whether the request may change something on the server (any method
    /// other than `GET`, `HEAD` and `OPTIONS`).
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }
}

impl std::fmt::Display for RecordedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        match &self.query {
            Some(q) => write!(f, "?{q}"),
            None => Ok(()),
        }
    }
}

/// The requests a [`TestCluster::recording_client`] sent, in order. Clones
/// share one log.
#[derive(Clone, Debug, Default)]
pub struct RequestLog(std::sync::Arc<std::sync::Mutex<Vec<RecordedRequest>>>);

impl RequestLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        // Every update is one push: a panic elsewhere leaves it consistent.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, request: RecordedRequest) {
        self.lock().push(request);
    }

    /// How many requests were recorded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no request was recorded.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// A copy of the requests recorded so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().clone()
    }

    /// The requests recorded so far, emptying the log.
    pub fn take(&self) -> Vec<RecordedRequest> {
        std::mem::take(&mut *self.lock())
    }
}

/// A name unique in this process and very likely across processes: `prefix`
/// (cut to 40 characters), then a counter and random hex, a valid DNS label.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut p: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let trimmed_len = p.trim_matches('-').len();
    if trimmed_len == 0 {
        p = "t".to_owned();
    } else {
        p = p.trim_matches('-').to_owned();
    }
    format!("{p}-{n}-{}", random_hex(6))
}

static SHARED: OnceCell<Result<TestCluster, HarnessError>> = OnceCell::const_new();

/// One server shared by every test of this test binary, started on first use.
///
/// # Errors
/// The error of the first start, for every caller.
pub async fn shared() -> Result<&'static TestCluster, &'static HarnessError> {
    SHARED.get_or_init(TestCluster::start).await.as_ref()
}

/// [`shared`], or `None` with a `SKIPPED: ...` line on stderr when no server is
/// available on this machine.
///
/// # Panics
/// When the `CI` environment variable is set and no server is available
/// (CI must run these tests), and when a server is available but failed to
/// start.
pub async fn shared_or_skip() -> Option<&'static TestCluster> {
    match shared().await {
        Ok(cluster) => Some(cluster),
        Err(e) => skip_or_panic(e),
    }
}

/// Turns a start failure into a skip (`None`) or a panic, as described on
/// [`shared_or_skip`].
///
/// # Panics
/// See [`shared_or_skip`].
pub fn skip_or_panic<T>(error: &HarnessError) -> Option<T> {
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    match error {
        HarnessError::Unavailable { .. } | HarnessError::Provision { .. } if !in_ci => {
            eprintln!("SKIPPED: {error}");
            None
        }
        HarnessError::Unavailable { .. } | HarnessError::Provision { .. } => {
            panic!("CI is set but {error}")
        }
        other => panic!("the test API server failed to start: {other}"),
    }
}

/// The folder holding the envtest binaries, from the environment or the
/// default cache.
///
/// # Errors
/// [`HarnessError::Unavailable`] when no folder holds both binaries.
pub fn find_binaries() -> Result<PathBuf, HarnessError> {
    let mut tried = Vec::new();
    let candidates = [
        std::env::var_os(BIN_ENV).map(PathBuf::from),
        std::env::var_os(DIR_ENV).map(|d| PathBuf::from(d).join("bin")),
        std::env::var_os("HOME").map(|h| {
            PathBuf::from(h)
                .join(".cache/gitops-envtest")
                .join(ENVTEST_VERSION)
                .join("bin")
        }),
    ];
    for dir in candidates.into_iter().flatten() {
        if dir.as_os_str().is_empty() {
            continue;
        }
        if dir.join("etcd").is_file() && dir.join("kube-apiserver").is_file() {
            return Ok(dir);
        }
        tried.push(dir.display().to_string());
    }
    Err(HarnessError::Unavailable {
        reason: format!(
            "{KUBECONFIG_ENV} is not set and no etcd + kube-apiserver in [{}]",
            tried.join(", ")
        ),
    })
}

/// Whether [`TestCluster::start`] may provision the binaries: not when
/// `GITOPS_ENVTEST_BIN` names a folder (the user chose one), nor when
/// `GITOPS_ENVTEST_PROVISION=0`.
fn provisioning_allowed() -> bool {
    std::env::var_os(BIN_ENV).is_none_or(|v| v.is_empty())
        && std::env::var_os(PROVISION_ENV).is_none_or(|v| v != "0")
}

/// Runs the provisioning script ([`ENVTEST_SCRIPT`], `scripts/envtest.sh`)
/// and returns the folder holding `etcd` and `kube-apiserver`.
///
/// `dest` is the envtest folder (binaries go to its `bin`); `None` is the
/// script's default: `$GITOPS_ENVTEST_DIR`, else
/// `~/.cache/gitops-envtest/v1.20.2`. Returns at once when the binaries are
/// there; otherwise builds them (minutes; progress on stderr) under a lock
/// that concurrent callers wait on.
///
/// # Errors
/// [`HarnessError::Provision`] when the script fails or its result does
/// not hold both binaries.
pub async fn provision(dest: Option<&Path>) -> Result<PathBuf, HarnessError> {
    let dest = dest.map(Path::to_path_buf);
    // Straight to the process' stderr: the test harness does not capture it,
    // so the person waiting sees why the first run takes minutes.
    let _ = writeln!(
        std::io::stderr(),
        "gitops-kube test harness: no kube-apiserver/etcd yet; provisioning them with \
         scripts/envtest.sh (the first run takes several minutes, then it is cached)"
    );
    let run = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(ENVTEST_SCRIPT)
            .arg("envtest.sh")
            .args(dest.iter())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        cmd.output()
    })
    .await;
    let output = match run {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            return Err(HarnessError::Provision {
                message: format!("cannot run bash: {e}"),
            });
        }
        Err(e) => {
            return Err(HarnessError::Provision {
                message: format!("the provisioning task failed: {e}"),
            });
        }
    };
    if !output.status.success() {
        return Err(HarnessError::Provision {
            message: format!("the script exited with {}", output.status),
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let bin = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(PathBuf::from)
        .unwrap_or_default();
    if !(bin.join("etcd").is_file() && bin.join("kube-apiserver").is_file()) {
        return Err(HarnessError::Provision {
            message: format!(
                "the script succeeded but {:?} does not hold etcd and kube-apiserver",
                bin.display().to_string()
            ),
        });
    }
    Ok(bin)
}

struct Pki {
    ca_pem: String,
    server_pem: String,
    server_key_pem: String,
    sa_key_pem: String,
    sa_pub_pem: String,
}

impl Pki {
    fn generate() -> Result<Pki, rcgen::Error> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "gitops-envtest-ca");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        server
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        server.use_authority_key_identifier_extension = true;
        server.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer)?;

        let sa_key = KeyPair::generate()?;
        Ok(Pki {
            ca_pem: ca_cert.pem(),
            server_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            sa_key_pem: sa_key.serialize_pem(),
            sa_pub_pem: sa_key.public_key_pem(),
        })
    }
}

/// A free loopback port: bind 127.0.0.1:0, read the port, let it go.
fn free_port(dir: &Path) -> Result<u16, HarnessError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(HarnessError::io(dir))?;
    let port = listener.local_addr().map_err(HarnessError::io(dir))?.port();
    Ok(port)
}

fn spawn(process: &'static str, cmd: &mut Command, log: &Path) -> Result<Child, HarnessError> {
    let out = std::fs::File::create(log).map_err(HarnessError::io(log))?;
    let err = out.try_clone().map_err(HarnessError::io(log))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| HarnessError::Process {
            process,
            message: format!("cannot start: {e}"),
            log_tail: String::new(),
        })
}

async fn wait_ready(
    client: &Client,
    local: &mut LocalServer,
    apiserver_log: &Path,
    etcd_log: &Path,
) -> Result<(), HarnessError> {
    let started = Instant::now();
    loop {
        for (process, child, log) in [
            ("etcd", &mut local.etcd, etcd_log),
            ("kube-apiserver", &mut local.apiserver, apiserver_log),
        ] {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(HarnessError::Process {
                    process,
                    message: format!("exited early with {status}"),
                    log_tail: log_tail(log),
                });
            }
        }
        let request = http::Request::get("/readyz").body(Vec::new());
        if let Ok(request) = request
            && let Ok(text) = client.request_text(request).await
            && text.trim() == "ok"
        {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(HarnessError::NotReady(
                READY_TIMEOUT,
                log_tail(apiserver_log),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Random hex from the standard library's randomly keyed hasher (tokens and
/// names for tests: unguessable enough on a loopback server).
fn random_hex(len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut i: u64 = 0;
    while out.len() < len {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        h.write_u32(std::process::id());
        let _ = write!(out, "{:016x}", h.finish());
        i += 1;
    }
    out.truncate(len);
    out
}
