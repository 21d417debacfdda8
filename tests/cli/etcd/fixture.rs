//! Real etcd servers for the tests: one member or a 3-member cluster, on 127.0.0.1 with
//! free ports and a temp data dir, optionally with TLS (certificates made here with the
//! openssl CLI) and with auth enabled (through etcdctl).
//!
//! Each etcd runs under a small `sh` guardian whose stdin is a pipe from this process:
//! when the test process ends, however it ends, the pipe closes, the guardian's `read`
//! returns and it SIGKILLs its etcd and removes the data dir. Dropping an [`Etcd`] does
//! the same at once. No etcd outlives the tests.
//!
//! When `etcd` (or `etcdctl`, `openssl`) is missing, a test is skipped with one
//! "SKIPPED:" line, except under `CI=true`, where a missing tool fails the test: CI
//! installs them (`.ci/run`), and a green run must mean the etcd backend was tested.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a member may take to answer its health check after it started.
const START_LIMIT: Duration = Duration::from_secs(15);

/// The guardian: start etcd in the background, say its PID, wait for our stdin to
/// close, then kill it and remove its data.
const GUARDIAN: &str = r#"
data=$1; shift
etcd "$@" </dev/null >>"$data.log" 2>&1 &
pid=$!
echo "$pid"
read -r _ || true
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$data"
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Members of the cluster (1 or 3).
    pub members: usize,
    /// Serve clients over TLS with client certificates required.
    pub tls: bool,
    /// etcd's `--auth-token-ttl`: how long an unused auth token lives (default 300 s).
    pub auth_token_ttl: Option<u32>,
}

pub struct Member {
    pub name: String,
    pub client_port: u16,
    /// etcd's own PID (not the guardian's).
    pub pid: u32,
    guardian: Child,
    guardian_stdin: Option<ChildStdin>,
    log: PathBuf,
    alive: bool,
}

/// Certificates made for one TLS server: CA, server and client (PEM files).
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

pub struct Etcd {
    pub members: Vec<Member>,
    pub certs: Option<Certs>,
    /// root's password once auth is on (etcdctl needs it from then on).
    root_password: Option<String>,
    dir: tempfile::TempDir,
}

/// Whether a tool is on PATH; under CI=true a missing one fails the test.
fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "CI=true but `{tool}` is not installed: .ci/run must install it (etcd-server, etcd-client, openssl)"
        );
        eprintln!("SKIPPED: `{tool}` is not installed (apt-get install etcd-server etcd-client)");
    }
    found
}

/// A port nobody listens on now. Another process may take it before etcd binds it;
/// [`Etcd::start`] then retries with new ports.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl Etcd {
    /// One plain member, or `None` (test skipped) where etcd is not installed.
    pub fn single() -> Option<Etcd> {
        Etcd::start(Options {
            members: 1,
            tls: false,
            ..Options::default()
        })
    }

    pub fn start(opts: Options) -> Option<Etcd> {
        if !have("etcd") || !have("etcdctl") || (opts.tls && !have("openssl")) {
            return None;
        }
        // A port taken between free_port() and etcd's bind fails the start: try again.
        let mut last = String::new();
        for _ in 0..3 {
            match Etcd::try_start(opts) {
                Ok(etcd) => return Some(etcd),
                Err(e) => last = e,
            }
        }
        panic!("etcd did not start: {last}");
    }

    fn try_start(opts: Options) -> Result<Etcd, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = opts.tls.then(|| make_certs(dir.path()));
        let scheme = if opts.tls { "https" } else { "http" };
        let n = opts.members.max(1);
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let cluster: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        // One token for the whole cluster, new for each cluster (ports differ).
        let token = format!("lockrun-test-{}", ports[0].0);
        let mut etcd = Etcd {
            members: Vec::new(),
            certs,
            root_password: None,
            dir,
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("m{i}");
            let data = etcd.dir.path().join(format!("{name}.data"));
            let client_url = format!("{scheme}://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let mut args: Vec<String> = vec![
                format!("--name={name}"),
                format!("--data-dir={}", data.display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster={}", cluster.join(",")),
                "--initial-cluster-state=new".into(),
                format!("--initial-cluster-token={token}"),
            ];
            if let Some(ttl) = opts.auth_token_ttl {
                args.push(format!("--auth-token-ttl={ttl}"));
            }
            if let Some(c) = &etcd.certs {
                args.push(format!("--cert-file={}", c.server_cert.display()));
                args.push(format!("--key-file={}", c.server_key.display()));
                args.push(format!("--trusted-ca-file={}", c.ca.display()));
                args.push("--client-cert-auth=true".into());
            }
            let mut guardian = Command::new("sh")
                .arg("-c")
                .arg(GUARDIAN)
                .arg("sh")
                .arg(&data)
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("spawning sh: {e}"))?;
            let mut first = String::new();
            BufReader::new(guardian.stdout.take().expect("guardian stdout"))
                .read_line(&mut first)
                .map_err(|e| format!("reading etcd's PID: {e}"))?;
            let pid: u32 = first
                .trim()
                .parse()
                .map_err(|_| format!("guardian said {first:?}, not a PID"))?;
            etcd.members.push(Member {
                name,
                client_port: *client,
                pid,
                guardian_stdin: guardian.stdin.take(),
                guardian,
                log: data.with_extension("data.log"),
                alive: true,
            });
        }
        for i in 0..n {
            etcd.wait_healthy(i)?;
        }
        Ok(etcd)
    }

    /// Waits until member `i` answers `/health` with true.
    fn wait_healthy(&self, i: usize) -> Result<(), String> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < START_LIMIT {
            if !pid_alive(self.members[i].pid) {
                return Err(format!("member {i} exited: {}", self.log_tail(i)));
            }
            match self.health(i) {
                Ok(true) => return Ok(()),
                Ok(false) => last = "health: false".into(),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "member {i} not healthy after {START_LIMIT:?} ({last}): {}",
            self.log_tail(i)
        ))
    }

    fn health(&self, i: usize) -> Result<bool, String> {
        if self.certs.is_some() {
            // TLS: ask etcdctl rather than speak TLS here.
            let out = self.etcdctl_at(&[i], &["endpoint", "health"]);
            return Ok(out.status.success());
        }
        let port = self.members[i].client_port;
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut body = String::new();
        s.read_to_string(&mut body).map_err(|e| e.to_string())?;
        Ok(body.contains("\"health\":\"true\""))
    }

    fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(&self.members[i].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// The last lines of every member's log, for a failure message.
    pub fn logs(&self) -> String {
        (0..self.members.len())
            .map(|i| {
                format!(
                    "--- {} (PID {}):\n{}",
                    self.members[i].name,
                    self.members[i].pid,
                    self.log_tail(i)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `host:port` of every member (alive or not), comma-separated.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The `--backend` URL for lockrun: `etcd://…` or `etcds://…`.
    pub fn url(&self) -> String {
        let scheme = if self.certs.is_some() {
            "etcds"
        } else {
            "etcd"
        };
        format!("{scheme}://{}", self.endpoints())
    }

    /// Runs etcdctl against the members given (by index), as root once auth is on.
    pub fn etcdctl_at(&self, members: &[usize], args: &[&str]) -> Output {
        let scheme = if self.certs.is_some() {
            "https"
        } else {
            "http"
        };
        let endpoints: Vec<String> = members
            .iter()
            .map(|&i| format!("{scheme}://127.0.0.1:{}", self.members[i].client_port))
            .collect();
        let mut cmd = Command::new("etcdctl");
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", endpoints.join(",")))
            .arg("--dial-timeout=2s")
            .arg("--command-timeout=5s");
        if let Some(c) = &self.certs {
            cmd.arg(format!("--cacert={}", c.ca.display()))
                .arg(format!("--cert={}", c.client_cert.display()))
                .arg(format!("--key={}", c.client_key.display()));
        }
        if let Some(pw) = &self.root_password {
            cmd.arg(format!("--user=root:{pw}"));
        }
        let child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn etcdctl");
        crate::testenv::wait_output(child, Duration::from_secs(20))
    }

    /// Runs etcdctl against every live member; panics when it fails.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let live: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].alive)
            .collect();
        let out = self.etcdctl_at(&live, args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Turns auth on: user root, and `user` with read-write access to keys under
    /// `prefix` only.
    pub fn enable_auth(&mut self, user: &str, password: &str, prefix: &str) {
        let root_pw = "root-secret";
        self.etcdctl(&[
            "user",
            "add",
            "root",
            &format!("--new-user-password={root_pw}"),
        ]);
        self.etcdctl(&[
            "user",
            "add",
            user,
            &format!("--new-user-password={password}"),
        ]);
        self.etcdctl(&["role", "add", "lockrun"]);
        self.etcdctl(&[
            "role",
            "grant-permission",
            "lockrun",
            "--prefix=true",
            "readwrite",
            prefix,
        ]);
        self.etcdctl(&["user", "grant-role", user, "lockrun"]);
        self.etcdctl(&["auth", "enable"]);
        self.root_password = Some(root_pw.into());
    }

    /// The index of the member that leads the cluster now.
    pub fn leader(&self) -> usize {
        let text = self.etcdctl(&["endpoint", "status", "-w", "json"]);
        let statuses: serde_json::Value =
            serde_json::from_str(&text).expect("endpoint status JSON");
        let statuses = statuses.as_array().expect("an array");
        let leader = &statuses[0]["Status"]["leader"];
        for s in statuses {
            if &s["Status"]["header"]["member_id"] == leader {
                let endpoint = s["Endpoint"].as_str().unwrap_or_default();
                if let Some(i) = self
                    .members
                    .iter()
                    .position(|m| endpoint.ends_with(&format!(":{}", m.client_port)))
                {
                    return i;
                }
            }
        }
        panic!("no leader among {text}");
    }

    /// The `--backend` URL listing member `first` first (clients try members in order).
    pub fn url_starting_with(&self, first: usize) -> String {
        let scheme = if self.certs.is_some() {
            "etcds"
        } else {
            "etcd"
        };
        let mut order: Vec<usize> = vec![first];
        order.extend((0..self.members.len()).filter(|&i| i != first));
        let hosts: Vec<String> = order
            .iter()
            .map(|&i| format!("127.0.0.1:{}", self.members[i].client_port))
            .collect();
        format!("{scheme}://{}", hosts.join(","))
    }

    /// SIGKILLs member `i`.
    pub fn kill(&mut self, i: usize) {
        signal(self.members[i].pid, rustix::process::Signal::KILL);
        self.members[i].alive = false;
    }

    /// SIGSTOPs member `i` (it keeps its sockets but answers nothing).
    pub fn pause(&self, i: usize) {
        signal(self.members[i].pid, rustix::process::Signal::STOP);
    }

    pub fn resume(&self, i: usize) {
        signal(self.members[i].pid, rustix::process::Signal::CONT);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for m in &mut self.members {
            // Closing the guardian's stdin makes it kill etcd and remove the data.
            drop(m.guardian_stdin.take());
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = m.guardian.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = m.guardian.kill();
            let _ = m.guardian.wait();
        }
    }
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).expect("pid fits i32"))
        .expect("non-zero pid");
    let _ = rustix::process::kill_process(pid, sig);
}

fn pid_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    rustix::process::test_kill_process(pid).is_ok()
        && !std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
}

/// A CA, a server certificate for IP 127.0.0.1 and a client certificate, made with the
/// openssl CLI (P-256 keys, valid 2 days).
fn make_certs(dir: &Path) -> Certs {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).expect("mkdir tls");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&tls)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=lockrun-test-ca",
    ]);
    run(&ca);
    std::fs::write(
        tls.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n",
    )
    .expect("write server.ext");
    std::fs::write(
        tls.join("client.ext"),
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n",
    )
    .expect("write client.ext");
    for (who, cn) in [("server", "127.0.0.1"), ("client", "lockrun-client")] {
        let key = format!("{who}.key");
        let csr = format!("{who}.csr");
        let crt = format!("{who}.crt");
        let ext = format!("{who}.ext");
        let subj = format!("/CN={cn}");
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        run(&req);
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &crt,
            "-extfile",
            &ext,
        ]);
    }
    Certs {
        ca: tls.join("ca.crt"),
        server_cert: tls.join("server.crt"),
        server_key: tls.join("server.key"),
        client_cert: tls.join("client.crt"),
        client_key: tls.join("client.key"),
    }
}
