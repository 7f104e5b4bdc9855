//! Real servers for tests, on loopback only: a throwaway CA and server certificate made with the
//! `openssl` CLI, nginx (Debian's `nginx-light`) serving a directory over HTTPS, and a private
//! network + mount namespace in which nginx can take port 443 and host names of our choosing
//! resolve to 127.0.0.1 (appc names carry no port, so discovery always asks port 443).
//!
//! ```ignore
//! let tls = TestCa::new(dir, &["localhost", "example.test"]).unwrap();
//! let nginx = Nginx::start(NginxConfig::new(docroot).tls(&tls)).unwrap();
//! // https://localhost:{nginx.port()}/… with SSL_CERT_FILE={tls.ca_cert}
//! ```
//!
//! Each constructor returns `Err(reason)` when a tool or privilege is missing, so a test can
//! print "skipped: <reason>" and return.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Whether `tool` is on PATH (or in /usr/sbin, where nginx lives).
pub fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .any(|dir| dir.join(tool).is_file())
}

fn tool_path(tool: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = Path::new(dir).join(tool);
        if path.is_file() {
            return path;
        }
    }
    PathBuf::from(tool)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A CA made for one test, and a server certificate it signed for some host names (and
/// 127.0.0.1).
pub struct TestCa {
    /// The CA certificate (PEM): give it to rkt as `SSL_CERT_FILE`.
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path, hosts: &[&str]) -> Result<TestCa, String> {
        if !have("openssl") {
            return Err("openssl is not installed".into());
        }
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let p = |name: &str| dir.join(name);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.pem"))
            .args(["-days", "2", "-subj", "/CN=rkt test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]))?;
        run(Command::new("openssl")
            .arg("req")
            .args(ec)
            .arg("-keyout")
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr"))
            .args([
                "-subj",
                &format!("/CN={}", hosts.first().unwrap_or(&"localhost")),
            ]))?;
        let mut san: Vec<String> = hosts.iter().map(|h| format!("DNS:{h}")).collect();
        san.push("IP:127.0.0.1".into());
        fs::write(
            p("server.ext"),
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n\
                 extendedKeyUsage=serverAuth\n",
                san.join(",")
            ),
        )
        .map_err(|e| e.to_string())?;
        run(Command::new("openssl")
            .args(["x509", "-req", "-in"])
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .args(["-CAcreateserial", "-days", "2", "-out"])
            .arg(p("server.pem"))
            .arg("-extfile")
            .arg(p("server.ext")))?;
        Ok(TestCa {
            ca_cert: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
        })
    }
}

/// A private network and mount namespace (needs root): only `lo`, up, and an `/etc/hosts`
/// that maps the given names to 127.0.0.1. Processes join it through [`Netns::command`]; it
/// ends with the value.
pub struct Netns {
    holder: Child,
    _hosts: tempfile::NamedTempFile,
}

impl Netns {
    pub fn new(names: &[&str]) -> Result<Netns, String> {
        for tool in ["unshare", "nsenter", "ip", "mount"] {
            if !have(tool) {
                return Err(format!("{tool} is not installed"));
            }
        }
        let own = fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
        let mut holder = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "sleep",
                "600",
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let ns = format!("/proc/{}/ns/net", holder.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = holder.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = holder.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(format!(
                    "cannot make a network namespace ({status}): {}",
                    err.trim()
                ));
            }
            if fs::read_link(&ns).is_ok_and(|n| n != own) {
                break;
            }
            if Instant::now() > deadline {
                let _ = holder.kill();
                return Err("unshare did not make a network namespace in 5 s".into());
            }
            sleep(Duration::from_millis(10));
        }
        let mut hosts = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        let mut text = String::from("127.0.0.1 localhost\n::1 localhost\n");
        for name in names {
            text.push_str(&format!("127.0.0.1 {name}\n"));
        }
        std::io::Write::write_all(&mut hosts, text.as_bytes()).map_err(|e| e.to_string())?;
        let netns = Netns {
            holder,
            _hosts: hosts,
        };
        run(netns.command("ip").args(["link", "set", "lo", "up"]))?;
        run(netns
            .command("mount")
            .arg("--bind")
            .arg(netns._hosts.path())
            .arg("/etc/hosts"))?;
        Ok(netns)
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["--net", "--mount", "--"])
            .arg(program);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// How to run nginx.
pub struct NginxConfig<'a> {
    root: PathBuf,
    tls: Option<&'a TestCa>,
    netns: Option<&'a Netns>,
    max_age: Option<u32>,
    extra: String,
}

impl<'a> NginxConfig<'a> {
    /// Serves `root`: `/x` is `root/x/index.html` if it exists, else the file `root/x`.
    pub fn new(root: &Path) -> Self {
        NginxConfig {
            root: root.to_owned(),
            tls: None,
            netns: None,
            max_age: None,
            extra: String::new(),
        }
    }

    /// HTTPS with this certificate (plain HTTP otherwise).
    pub fn tls(mut self, tls: &'a TestCa) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Runs inside `netns` on port 443 (443 or 80 without TLS) instead of a free port.
    pub fn netns(mut self, netns: &'a Netns) -> Self {
        self.netns = Some(netns);
        self
    }

    /// `Cache-Control: max-age=SECONDS` on `.aci` files.
    pub fn max_age(mut self, seconds: u32) -> Self {
        self.max_age = Some(seconds);
        self
    }

    /// More directives for the `server` block.
    pub fn extra(mut self, directives: &str) -> Self {
        self.extra.push_str(directives);
        self
    }
}

/// A running nginx, stopped when dropped. Its access log has one line per request:
/// `METHOD URI?QUERY STATUS BYTES` (the URI as the client sent it).
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Nginx {
    pub fn start(config: NginxConfig<'_>) -> Result<Nginx, String> {
        if !have("nginx") {
            return Err("nginx is not installed (Debian package nginx-light)".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = match (config.netns, config.tls) {
            (Some(_), Some(_)) => 443,
            (Some(_), None) => 80,
            (None, _) => free_port()?,
        };
        let d = dir.path().display();
        let ssl = match config.tls {
            Some(tls) => format!(
                "ssl_certificate {};\n        ssl_certificate_key {};",
                tls.server_cert.display(),
                tls.server_key.display()
            ),
            None => String::new(),
        };
        let listen = if config.tls.is_some() {
            format!("127.0.0.1:{port} ssl")
        } else {
            format!("127.0.0.1:{port}")
        };
        let expires = config
            .max_age
            .map(|s| format!("location ~ \\.aci$ {{ expires {s}s; }}"))
            .unwrap_or_default();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format plain '$request_method $request_uri $status $body_bytes_sent';
    access_log {d}/access.log plain;
    default_type application/octet-stream;
    types {{ text/html html; }}
    server {{
        listen {listen};
        server_name _;
        {ssl}
        root {root};
        location / {{ try_files $uri/index.html $uri =404; }}
        {expires}
        {extra}
    }}
}}
"#,
            root = config.root.display(),
            extra = config.extra,
        );
        let conf_path = dir.path().join("nginx.conf");
        fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let nginx = tool_path("nginx");
        let mut cmd = match config.netns {
            Some(netns) => netns.command(&nginx),
            None => Command::new(&nginx),
        };
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().map_err(|e| format!("starting nginx: {e}"))?;
        let mut server = Nginx { child, dir, port };
        server.wait_ready()?;
        Ok(server)
    }

    /// nginx writes its pid file after it has bound its sockets.
    fn wait_ready(&mut self) -> Result<(), String> {
        let pid = self.dir.path().join("nginx.pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pid.exists() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("nginx exited ({status}): {}", self.error_log()));
            }
            if Instant::now() > deadline {
                return Err(format!("nginx did not start in 10 s: {}", self.error_log()));
            }
            sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://localhost:PORT` (or `http://`).
    pub fn base_url(&self, tls: bool) -> String {
        format!(
            "{}://localhost:{}",
            if tls { "https" } else { "http" },
            self.port
        )
    }

    /// The access log, one request a line (`METHOD URI?QUERY STATUS BYTES`).
    pub fn access_log(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The access log lines for requests of the path `path` (any query).
    pub fn requests_for(&self, path: &str) -> Vec<String> {
        self.access_log()
            .into_iter()
            .filter(|line| {
                let uri = line.split(' ').nth(1).unwrap_or_default();
                uri.split('?').next() == Some(path)
            })
            .collect()
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now (bound and released; tests tolerate the small race).
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}
