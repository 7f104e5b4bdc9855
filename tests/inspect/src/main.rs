//! `inspect`: the helper binary inside rkt's test images, in the spirit of the original rkt's
//! `inspect` image. Each flag reports one thing an app sees, as `key=value` lines on stdout, so
//! that tests assert what the app really got rather than what rkt claims it set up.
//! Built as a static binary: test images contain nothing else.
#![deny(unsafe_code)]

mod http;
mod probes;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use std::{env, fs, thread};

const HELP: &str = "\
usage: inspect [FLAG]...   (flags run in order; --exit-code is applied last)
  --print-env              every environment variable, as env:NAME=VALUE
  --print-user             uid, gid, euid, egid and supplementary groups
  --print-caps             capability sets from /proc/self/status (hex)
  --print-cwd              the working directory
  --print-hostname         the hostname
  --print-mounts           mount points from /proc/self/mountinfo
  --print-pid              this process's PID
  --print-pid1-cmdline     the command line of PID 1 in this PID namespace
  --print-netns            the network namespace (readlink /proc/self/ns/net)
  --print-net-devs         network interfaces from /proc/net/dev, as net_devs=lo,eth0
  --print-addrs            local IPv4 addresses from /proc/net/fib_trie, as addrs=127.0.0.1,…
  --print-ns               every namespace: ns:net=…, ns:ipc=…, ns:uts=…, ns:pid=…, ns:mnt=…
  --print-memory-limit     memory.max of this process's cgroup (v2; v1: memory.limit_in_bytes)
  --print-cpu-quota        the CPU quota of this process's cgroup, as cpu_quota=QUOTA/PERIOD (µs)
  --print-args             the command line, as arg:N=VALUE
  --try-chroot             chroot to /: chroot=ok or chroot=errno:N (for seccomp tests)
  --try-get-mempolicy      call get_mempolicy (unprivileged; in the default seccomp filter):
                           get_mempolicy=ok or get_mempolicy=errno:N
  --try-write PATH         write PATH: write:PATH=ok or write:PATH=errno:N (read-only roots)
  --try-write-text PATH TEXT  the same, writing TEXT (a kernel tunable's value)
  --try-rewrite PATH       write PATH's own contents back: rewrite:PATH=ok or errno:N
  --try-mkdir-cgroup       make a child of this process's cgroup (cgroup v1 name=systemd, or
                           v2): cgroup_mkdir=ok or errno:N (removed again if made)
  --try-socket KIND        open a raw socket, KIND inet (ICMP) or packet (every protocol):
                           socket:KIND=ok or errno:N
  --try-mknod-block PATH   make a block device node (loop0) at PATH: mknod:PATH=ok or errno:N
                           (removed again if made)
  --try-kill PID SIGNAL    kill(2): kill:PID:SIGNAL=ok or errno:N (SIGNAL a number)
  --try-sigio-owner PID SIGNAL  make PID the owner of a pipe's SIGIO, SIGNAL its signal, and
                           write to it: sigio_owner:PID:SIGNAL=ok or errno:N (of F_SETOWN)
  --try-pidfd-open PID     pidfd_open(2): pidfd_open:PID=ok or errno:N
  --watch-unix-sockets TEXT SECONDS  print watching=TEXT, then for SECONDS try to reach each
                           unix socket whose address contains TEXT as it appears
                           (/proc/net/unix; connect to a stream socket, send a datagram to
                           others): unix_seen=ADDR, unix_reach:ADDR=ok or errno:N
  --print-msg TEXT         TEXT
  --read-file PATH         the contents of PATH
  --write-file PATH TEXT   write TEXT to PATH
  --serve-tcp PORT TEXT SECONDS  listen on 0.0.0.0:PORT (prints serving=PORT), answer each
                           connection with TEXT and a newline, stop after SECONDS
  --sleep SECONDS          sleep
  --notify-ready-after MS  sleep MS milliseconds, then send READY=1 to $NOTIFY_SOCKET:
                           notify=sent, or notify=error:… (no socket, or it failed)
  --answer-listen-fd TEXT  the sockets passed (listen_fds=, listen_fdnames=, listen_pid_ok=),
                           then one connection accepted on fd 3 (TCP) and answered TEXT
  --http-get LABEL URL     GET URL: http:LABEL:status=, :content-type=, :body= (one line)
  --http-post LABEL URL FORM  the same for a POST of an urlencoded FORM
                           (a URL starting with / is relative to $AC_METADATA_URL)
  --mds-sign-verify TEXT   sign TEXT with the metadata service, verify it, and verify it for
                           other content: mds:sign_status=, mds:signature=, mds:verify_status=, …
  --exit-code N            exit with N
  --help                   this text";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let mut out = std::io::stdout().lock();
    let mut exit_code: u8 = 0;
    let mut i = 0;
    let next = |i: &mut usize, flag: &str| -> Result<String, String> {
        *i += 1;
        args.get(*i)
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value"))
    };
    while i < args.len() {
        let flag = args[i].clone();
        let result: Result<(), String> = match flag.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                return ExitCode::SUCCESS;
            }
            "--print-env" => {
                let mut vars: Vec<_> = env::vars_os().collect();
                vars.sort();
                for (k, v) in vars {
                    let _ = writeln!(out, "env:{}={}", k.to_string_lossy(), v.to_string_lossy());
                }
                Ok(())
            }
            "--print-user" => print_status_fields(
                &mut out,
                &[("Uid", "uid"), ("Gid", "gid"), ("Groups", "groups")],
            ),
            "--print-caps" => print_status_fields(
                &mut out,
                &[
                    ("CapInh", "cap_inheritable"),
                    ("CapPrm", "cap_permitted"),
                    ("CapEff", "cap_effective"),
                    ("CapBnd", "cap_bounding"),
                    ("CapAmb", "cap_ambient"),
                    ("NoNewPrivs", "no_new_privs"),
                    ("Seccomp", "seccomp"),
                ],
            ),
            "--print-cwd" => env::current_dir()
                .map(|d| {
                    let _ = writeln!(out, "cwd={}", d.display());
                })
                .map_err(|e| format!("cwd: {e}")),
            "--print-hostname" => read_trimmed("/proc/sys/kernel/hostname").map(|h| {
                let _ = writeln!(out, "hostname={h}");
            }),
            "--print-mounts" => fs::read_to_string("/proc/self/mountinfo")
                .map(|info| {
                    for line in info.lines() {
                        let f: Vec<&str> = line.split(' ').collect();
                        let sep = f.iter().position(|&x| x == "-").unwrap_or(f.len());
                        let fstype = f.get(sep + 1).unwrap_or(&"?");
                        let _ = writeln!(
                            out,
                            "mount={} {} {}",
                            f.get(4).unwrap_or(&"?"),
                            fstype,
                            f.get(5).unwrap_or(&"?")
                        );
                    }
                })
                .map_err(|e| format!("mountinfo: {e}")),
            "--print-pid" => {
                let _ = writeln!(out, "pid={}", std::process::id());
                Ok(())
            }
            "--print-pid1-cmdline" => fs::read("/proc/1/cmdline")
                .map(|c| {
                    let text: Vec<String> = c
                        .split(|&b| b == 0)
                        .filter(|p| !p.is_empty())
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect();
                    let _ = writeln!(out, "pid1_cmdline={}", text.join(" "));
                })
                .map_err(|e| format!("/proc/1/cmdline: {e}")),
            "--print-netns" => fs::read_link("/proc/self/ns/net")
                .map(|l| {
                    let _ = writeln!(out, "netns={}", l.display());
                })
                .map_err(|e| format!("/proc/self/ns/net: {e}")),
            "--print-net-devs" => fs::read_to_string("/proc/net/dev")
                .map(|dev| {
                    // Two header lines, then `  name: counters…`.
                    let names: Vec<&str> = dev
                        .lines()
                        .skip(2)
                        .filter_map(|l| Some(l.split_once(':')?.0.trim()))
                        .collect();
                    let _ = writeln!(out, "net_devs={}", names.join(","));
                })
                .map_err(|e| format!("/proc/net/dev: {e}")),
            "--print-addrs" => fs::read_to_string("/proc/net/fib_trie")
                .map(|trie| {
                    // `|-- 10.0.0.2` then `/32 host LOCAL`: an address of this host.
                    let lines: Vec<&str> = trie.lines().collect();
                    let mut addrs: Vec<&str> = lines
                        .windows(2)
                        .filter(|w| w[1].trim() == "/32 host LOCAL")
                        .filter_map(|w| w[0].trim().strip_prefix("|-- "))
                        .collect();
                    addrs.sort();
                    addrs.dedup();
                    let _ = writeln!(out, "addrs={}", addrs.join(","));
                })
                .map_err(|e| format!("/proc/net/fib_trie: {e}")),
            "--print-ns" => {
                for ns in ["net", "ipc", "uts", "pid", "mnt"] {
                    let link = fs::read_link(format!("/proc/self/ns/{ns}"))
                        .map(|l| l.display().to_string())
                        .unwrap_or_else(|e| format!("?({e})"));
                    let _ = writeln!(out, "ns:{ns}={link}");
                }
                Ok(())
            }
            "--print-memory-limit" => memory_limit().map(|m| {
                let _ = writeln!(out, "memory_max={m}");
            }),
            "--print-cpu-quota" => cpu_quota().map(|q| {
                let _ = writeln!(out, "cpu_quota={q}");
            }),
            "--print-args" => {
                for (n, arg) in env::args().enumerate() {
                    let _ = writeln!(out, "arg:{n}={arg}");
                }
                Ok(())
            }
            "--try-chroot" => {
                let _ = writeln!(out, "chroot={}", outcome(std::os::unix::fs::chroot("/")));
                Ok(())
            }
            "--try-get-mempolicy" => {
                let result = get_mempolicy();
                let _ = writeln!(out, "get_mempolicy={}", outcome(result));
                Ok(())
            }
            "--try-write" => next(&mut i, &flag).map(|p| {
                let _ = writeln!(out, "write:{p}={}", outcome(fs::write(&p, "x")));
            }),
            "--try-write-text" => next(&mut i, &flag).and_then(|p| {
                let text = next(&mut i, &flag)?;
                let _ = writeln!(out, "write:{p}={}", outcome(fs::write(&p, text)));
                Ok(())
            }),
            "--try-rewrite" => next(&mut i, &flag).map(|p| {
                let result = fs::read(&p).and_then(|c| fs::write(&p, c));
                let _ = writeln!(out, "rewrite:{p}={}", outcome(result));
            }),
            "--try-mkdir-cgroup" => own_cgroup_dir().map(|dir| {
                let child = format!("{dir}/inspect-probe");
                let made = fs::create_dir(&child);
                if made.is_ok() {
                    let _ = fs::remove_dir(&child);
                }
                let _ = writeln!(out, "cgroup_dir={dir}");
                let _ = writeln!(out, "cgroup_mkdir={}", outcome(made));
            }),
            "--try-socket" => next(&mut i, &flag).and_then(|kind| {
                let result = probes::raw_socket(&kind)?;
                let _ = writeln!(out, "socket:{kind}={}", outcome(result));
                Ok(())
            }),
            "--try-mknod-block" => next(&mut i, &flag).map(|p| {
                let result = probes::mknod_block(&p);
                if result.is_ok() {
                    let _ = fs::remove_file(&p);
                }
                let _ = writeln!(out, "mknod:{p}={}", outcome(result));
            }),
            "--try-kill" => next(&mut i, &flag).and_then(|pid| {
                let signal = next(&mut i, &flag)?;
                let result = probes::kill(number(&pid)?, number(&signal)?);
                let _ = writeln!(out, "kill:{pid}:{signal}={}", outcome(result));
                Ok(())
            }),
            "--try-sigio-owner" => next(&mut i, &flag).and_then(|pid| {
                let signal = next(&mut i, &flag)?;
                let result = probes::sigio_owner(number(&pid)?, number(&signal)?);
                let _ = writeln!(out, "sigio_owner:{pid}:{signal}={}", outcome(result));
                Ok(())
            }),
            "--try-pidfd-open" => next(&mut i, &flag).and_then(|pid| {
                let result = probes::pidfd_open(number(&pid)?);
                let _ = writeln!(out, "pidfd_open:{pid}={}", outcome(result));
                Ok(())
            }),
            "--watch-unix-sockets" => next(&mut i, &flag).and_then(|text| {
                let secs: u64 = next(&mut i, &flag)?
                    .parse()
                    .map_err(|_| "--watch-unix-sockets: SECONDS is not a number".to_owned())?;
                watch_unix_sockets(&mut out, &text, Duration::from_secs(secs))
            }),
            "--print-msg" => next(&mut i, &flag).map(|m| {
                let _ = writeln!(out, "{m}");
            }),
            "--read-file" => next(&mut i, &flag).and_then(|p| {
                fs::read_to_string(&p)
                    .map(|c| {
                        let _ = writeln!(out, "file:{p}={}", c.trim_end());
                    })
                    .map_err(|e| format!("reading {p}: {e}"))
            }),
            "--write-file" => next(&mut i, &flag).and_then(|p| {
                let text = next(&mut i, &flag)?;
                fs::write(&p, text).map_err(|e| format!("writing {p}: {e}"))
            }),
            "--serve-tcp" => next(&mut i, &flag).and_then(|port| {
                let text = next(&mut i, &flag)?;
                let secs: u64 = next(&mut i, &flag)?
                    .parse()
                    .map_err(|_| "--serve-tcp: SECONDS is not a number".to_owned())?;
                let _ = writeln!(out, "serving={port}");
                let _ = out.flush();
                serve_tcp(&port, &text, Duration::from_secs(secs))
            }),
            "--sleep" => next(&mut i, &flag).and_then(|s| {
                let secs: f64 = s
                    .parse()
                    .map_err(|_| format!("--sleep: not a number: {s}"))?;
                let _ = out.flush();
                thread::sleep(Duration::from_secs_f64(secs));
                Ok(())
            }),
            "--notify-ready-after" => next(&mut i, &flag).and_then(|ms| {
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| format!("--notify-ready-after: not milliseconds: {ms}"))?;
                let _ = out.flush();
                thread::sleep(Duration::from_millis(ms));
                let _ = writeln!(out, "notify={}", notify_ready());
                Ok(())
            }),
            "--answer-listen-fd" => {
                next(&mut i, &flag).and_then(|text| answer_listen_fd(&mut out, &text))
            }
            "--exit-code" => next(&mut i, &flag).and_then(|n| {
                exit_code = n
                    .parse()
                    .map_err(|_| format!("--exit-code: not 0..255: {n}"))?;
                Ok(())
            }),
            "--http-get" => next(&mut i, &flag).and_then(|label| {
                let url = http::expand(&next(&mut i, &flag)?);
                http::request(&url, None).map(|a| http::print(&mut out, &label, &a))
            }),
            "--http-post" => next(&mut i, &flag).and_then(|label| {
                let url = http::expand(&next(&mut i, &flag)?);
                let form = next(&mut i, &flag)?;
                http::request(&url, Some(&form)).map(|a| http::print(&mut out, &label, &a))
            }),
            "--mds-sign-verify" => {
                next(&mut i, &flag).and_then(|text| http::sign_and_verify(&mut out, &text))
            }
            other => Err(format!("unknown flag {other} (see --help)")),
        };
        if let Err(e) = result {
            let _ = out.flush();
            eprintln!("inspect: {e}");
            return ExitCode::from(254);
        }
        i += 1;
    }
    let _ = out.flush();
    ExitCode::from(exit_code)
}

fn read_trimmed(path: &str) -> Result<String, String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("{path}: {e}"))
}

/// Copies `Field:` lines of /proc/self/status as `key=value` (whitespace collapsed).
fn print_status_fields(out: &mut impl Write, fields: &[(&str, &str)]) -> Result<(), String> {
    let status = fs::read_to_string("/proc/self/status").map_err(|e| format!("status: {e}"))?;
    for (field, key) in fields {
        let value = status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let _ = writeln!(out, "{key}={value}");
    }
    Ok(())
}

fn memory_limit() -> Result<String, String> {
    let cgroup = read_trimmed("/proc/self/cgroup")?;
    // cgroup v1 (or hybrid): the memory controller's own hierarchy.
    let v1 = cgroup.lines().find_map(|l| {
        let (_, rest) = l.split_once(':')?;
        let (controllers, path) = rest.split_once(':')?;
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    });
    if let Some(path) = v1 {
        return read_trimmed(&format!(
            "/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"
        ));
    }
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 entry in /proc/self/cgroup")?;
    read_trimmed(&format!("/sys/fs/cgroup{path}/memory.max"))
        .or_else(|_| read_trimmed("/sys/fs/cgroup/memory.max"))
}

/// `QUOTA/PERIOD` from cpu.max (v2) or cpu.cfs_quota_us and cpu.cfs_period_us (v1).
fn cpu_quota() -> Result<String, String> {
    let cgroup = read_trimmed("/proc/self/cgroup")?;
    let v1 = cgroup.lines().find_map(|l| {
        let (_, rest) = l.split_once(':')?;
        let (controllers, path) = rest.split_once(':')?;
        controllers.split(',').any(|c| c == "cpu").then_some(path)
    });
    if let Some(path) = v1 {
        let dir = format!("/sys/fs/cgroup/cpu{path}");
        let quota = read_trimmed(&format!("{dir}/cpu.cfs_quota_us"))?;
        let period = read_trimmed(&format!("{dir}/cpu.cfs_period_us"))?;
        return Ok(format!("{quota}/{period}"));
    }
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 entry in /proc/self/cgroup")?;
    let max = read_trimmed(&format!("/sys/fs/cgroup{path}/cpu.max"))?;
    Ok(max.replacen(' ', "/", 1))
}

/// `ok`, or `errno:N` of a failed call.
/// get_mempolicy(2): harmless and unprivileged, yet in the default seccomp filter, so what it
/// returns shows whether a filter is in force.
#[allow(unsafe_code)]
fn get_mempolicy() -> std::io::Result<()> {
    let mut mode: libc::c_int = 0;
    // SAFETY: a valid out-pointer for the mode, no node mask (null, maxnode 0), addr 0 and
    // flags 0: the kernel only writes `mode`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode as *mut libc::c_int,
            std::ptr::null_mut::<libc::c_ulong>(),
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn number(s: &str) -> Result<i32, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

/// This process's cgroup directory: in the name=systemd hierarchy under cgroup v1 (hybrid),
/// else in the v2 tree.
fn own_cgroup_dir() -> Result<String, String> {
    let cgroup = read_trimmed("/proc/self/cgroup")?;
    let v1 = cgroup
        .lines()
        .find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p));
    let dir = match v1 {
        Some(path) => format!("/sys/fs/cgroup/systemd{path}"),
        None => {
            let path = cgroup
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .ok_or("no cgroup v2 entry in /proc/self/cgroup")?;
            format!("/sys/fs/cgroup{path}")
        }
    };
    Ok(dir.trim_end_matches('/').to_owned())
}

/// The unix sockets in /proc/net/unix (of this network namespace) whose address contains
/// `text`, with whether they are stream sockets: abstract ones as `@name`, others by path.
fn unix_sockets(text: &str) -> Vec<(String, bool)> {
    fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            // Num RefCount Protocol Flags Type St Inode Path
            let fields: Vec<&str> = l.split_whitespace().collect();
            Some((fields.get(7)?.to_string(), *fields.get(4)? == "0001"))
        })
        .filter(|(a, _)| a.contains(text))
        .collect()
}

/// For `limit`, tries to reach each unix socket whose address contains `text` as it appears:
/// connects to a stream socket (and hangs up), sends a datagram to any other (a notify socket
/// reads `KEY=VALUE` lines: this one means nothing to it).
fn watch_unix_sockets(out: &mut impl Write, text: &str, limit: Duration) -> Result<(), String> {
    use std::os::unix::net::{SocketAddr, UnixDatagram, UnixStream};
    let mut seen: Vec<String> = unix_sockets(text).into_iter().map(|(a, _)| a).collect();
    let _ = writeln!(out, "watching={text}");
    let _ = out.flush();
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        for (address, stream) in unix_sockets(text) {
            if seen.contains(&address) {
                continue;
            }
            let target = match address.strip_prefix('@') {
                Some(name) => {
                    use std::os::linux::net::SocketAddrExt;
                    SocketAddr::from_abstract_name(name.as_bytes())
                }
                None => SocketAddr::from_pathname(&address),
            };
            let reached = target.and_then(|t| {
                if stream {
                    UnixStream::connect_addr(&t).map(drop)
                } else {
                    UnixDatagram::unbound()?
                        .send_to_addr(b"X_RKT_INSPECT_PROBE=1\n", &t)
                        .map(drop)
                }
            });
            let _ = writeln!(out, "unix_seen={address}");
            let _ = writeln!(out, "unix_reach:{address}={}", outcome(reached));
            let _ = out.flush();
            seen.push(address);
        }
        thread::sleep(Duration::from_millis(2));
    }
    let _ = writeln!(out, "watch_done={text}");
    Ok(())
}

fn outcome<T>(result: std::io::Result<T>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("errno:{}", e.raw_os_error().unwrap_or(-1)),
    }
}

/// sd_notify(3) READY=1, std only: `sent` or `error:…`.
fn notify_ready() -> String {
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Ok(socket) = env::var("NOTIFY_SOCKET") else {
        return "error:no NOTIFY_SOCKET".to_owned();
    };
    let address = match socket.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())
        }
        None => SocketAddr::from_pathname(&socket),
    };
    let sent = address.and_then(|a| UnixDatagram::unbound()?.send_to_addr(b"READY=1", &a));
    match sent {
        Ok(_) => "sent".to_owned(),
        Err(e) => format!("error:{socket}: {e}"),
    }
}

/// sd_listen_fds(3) by hand: what the app was passed, then one connection accepted on fd 3
/// and answered with `text`.
#[allow(unsafe_code)]
fn answer_listen_fd(out: &mut impl Write, text: &str) -> Result<(), String> {
    use std::os::fd::FromRawFd;
    let count = env::var("LISTEN_FDS").unwrap_or_default();
    let names = env::var("LISTEN_FDNAMES").unwrap_or_default();
    let for_us = env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let _ = writeln!(out, "listen_fds={count}");
    let _ = writeln!(out, "listen_fdnames={names}");
    let _ = writeln!(out, "listen_pid_ok={for_us}");
    let _ = out.flush();
    if !for_us || count.parse::<u32>().unwrap_or(0) < 1 {
        return Err("no listening socket was passed".into());
    }
    // SAFETY: LISTEN_PID is this process, so its starter opened fd 3 for it before exec
    // (sd_listen_fds(3)); nothing else in this process owns fd 3.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(3) };
    let (mut connection, peer) = listener
        .accept()
        .map_err(|e| format!("accepting on fd 3: {e}"))?;
    connection
        .write_all(format!("{text}\n").as_bytes())
        .map_err(|e| format!("answering {peer}: {e}"))?;
    let _ = writeln!(out, "answered={peer}");
    Ok(())
}

/// Answers every TCP connection on `port` with `text`, until `limit` has passed (bounded, so
/// a test that goes wrong cannot leave the app running forever).
fn serve_tcp(port: &str, text: &str, limit: Duration) -> Result<(), String> {
    let listener = std::net::TcpListener::bind(format!("0.0.0.0:{port}"))
        .map_err(|e| format!("--serve-tcp: binding port {port}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("--serve-tcp: {e}"))?;
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        match listener.accept() {
            Ok((mut conn, peer)) => {
                let _ = conn.set_nonblocking(false);
                let _ = conn.write_all(format!("{text}\n").as_bytes());
                println!("served={peer}");
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("--serve-tcp: accepting: {e}")),
        }
    }
    Ok(())
}
