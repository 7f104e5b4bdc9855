//! System calls an attacker in an app would try, each returning how it went.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// fcntl's command choosing the signal a file's owner gets (linux/fcntl.h; not in `libc`).
const F_SETSIG: i32 = 10;

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A raw IPv4 (ICMP) or packet socket (every protocol), closed again.
pub fn raw_socket(kind: &str) -> Result<io::Result<()>, String> {
    let (domain, kind, protocol) = match kind {
        "inet" => (libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
        "packet" => (
            libc::AF_PACKET,
            libc::SOCK_RAW,
            i32::from((libc::ETH_P_ALL as u16).to_be()),
        ),
        other => return Err(format!("--try-socket: {other} is not inet or packet")),
    };
    // SAFETY: socket(2) takes no pointers; a new descriptor is owned (and closed) here.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
    Ok(check(fd.into()).map(|fd| {
        // SAFETY: `fd` was just opened and belongs to nobody else.
        drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    }))
}

/// mknod(2) of a block device (7:0, loop0) at `path`.
pub fn mknod_block(path: &str) -> io::Result<()> {
    let path = CString::new(path).map_err(io::Error::other)?;
    // SAFETY: a valid NUL-terminated path; mknod reads it only.
    let rc = unsafe { libc::mknod(path.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(7, 0)) };
    check(rc.into()).map(drop)
}

/// kill(2).
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes no pointers.
    check(unsafe { libc::kill(pid, signal) }.into()).map(drop)
}

/// pidfd_open(2), the descriptor closed again.
pub fn pidfd_open(pid: i32) -> io::Result<()> {
    // SAFETY: pidfd_open(2) takes no pointers; the new descriptor is closed here.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: `fd` was just opened and belongs to nobody else.
    drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    Ok(())
}

/// Points a pipe's SIGIO at `pid` as `signal` (F_SETOWN, F_SETSIG, O_ASYNC), then writes to
/// it: the kernel signals `pid` as the pipe becomes readable. The result is F_SETOWN's.
pub fn sigio_owner(pid: i32, signal: i32) -> io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }.into())?;
    // SAFETY: both were just opened and belong to nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    use std::os::fd::AsRawFd;
    let r = read.as_raw_fd();
    // SAFETY: fcntl commands with integer arguments on a descriptor we own.
    unsafe {
        check(libc::fcntl(r, libc::F_SETOWN, pid).into())?;
        check(libc::fcntl(r, F_SETSIG, signal).into())?;
        let flags = check(libc::fcntl(r, libc::F_GETFL).into())?;
        check(libc::fcntl(r, libc::F_SETFL, flags as i32 | libc::O_ASYNC).into())?;
    }
    // SAFETY: writes one byte from a valid buffer to a descriptor we own.
    check(unsafe { libc::write(write.as_raw_fd(), b"x".as_ptr().cast(), 1) } as libc::c_long)?;
    Ok(())
}
