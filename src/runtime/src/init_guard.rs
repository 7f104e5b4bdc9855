//! A pod's processes may not signal the pod's PID 1. The pod's systemd halts on SIGRTMIN+4,
//! powers off on SIGRTMIN+3 and re-executes on SIGTERM: one root app could stop every other
//! app of its pod. systemd 252 has no PrivatePIDs= to keep apps out of its PID namespace, and
//! its SystemCallFilter= cannot look at arguments, so stage1 puts a small seccomp filter of its
//! own on systemd-nspawn, which every process of the pod inherits. Nothing in a pod signals its
//! own PID 1 on purpose: `machinectl poweroff`, `rkt stop` and nspawn's forwarding come from the
//! host's PID namespace, where the pod's PID 1 has another number.
//!
//! Refused with EPERM when the target is PID 1 (the low 32 bits of the argument: the kernel
//! truncates a `pid_t`, so a 64-bit compare could be passed with `1 + 2^32`): `kill`, `tkill`,
//! `tgkill`, `rt_sigqueueinfo`, `rt_tgsigqueueinfo`, `pidfd_open`, and `fcntl(F_SETOWN)` to
//! PID 1 or process group 1 (SIGIO, or the signal `F_SETSIG` picks, would go there). Refused
//! whatever the target, as their target cannot be seen: `pidfd_send_signal` (ENOSYS: it takes a
//! `/proc/1` directory; callers fall back to `kill`), `fcntl(F_SETOWN_EX)` and the
//! `FIOSETOWN`/`SIOCSPGRP` ioctls (EPERM: they pass the owner through a pointer). i386 calls
//! are checked the same way by their own numbers; x32 calls get ENOSYS, as on kernels built
//! without x32; any other architecture is killed.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use libc::sock_filter;

/// `AUDIT_ARCH_X86_64` and `AUDIT_ARCH_I386` (linux/audit.h: the ELF machine, with 64-bit and
/// little-endian flags).
const AUDIT_ARCH_64BIT: u32 = 0x8000_0000;
const AUDIT_ARCH_LE: u32 = 0x4000_0000;
const AUDIT_ARCH_X86_64: u32 = libc::EM_X86_64 as u32 | AUDIT_ARCH_64BIT | AUDIT_ARCH_LE;
const AUDIT_ARCH_I386: u32 = libc::EM_386 as u32 | AUDIT_ARCH_LE;
/// Set in the number of every x32 syscall (asm/unistd.h).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// fcntl commands and ioctls that set who gets a file's SIGIO (asm-generic/fcntl.h,
/// linux/sockios.h).
const F_SETOWN: u32 = 8;
const F_SETOWN_EX: u32 = 15;
const FIOSETOWN: u32 = 0x8901;
const SIOCSPGRP: u32 = 0x8902;

/// The i386 numbers of the calls checked (arch/x86/entry/syscalls/syscall_32.tbl).
mod i386 {
    pub const KILL: u32 = 37;
    pub const IOCTL: u32 = 54;
    pub const FCNTL: u32 = 55;
    pub const RT_SIGQUEUEINFO: u32 = 178;
    pub const FCNTL64: u32 = 221;
    pub const TKILL: u32 = 238;
    pub const TGKILL: u32 = 270;
    pub const RT_TGSIGQUEUEINFO: u32 = 335;
    pub const PIDFD_SEND_SIGNAL: u32 = 424;
    pub const PIDFD_OPEN: u32 = 434;
}

/// Offsets in `struct seccomp_data`: nr, arch, then (after the instruction pointer) six
/// 64-bit arguments, whose low half comes first on a little-endian machine.
const NR: u32 = 0;
const ARCH: u32 = 4;
const fn arg_low(n: u32) -> u32 {
    16 + 8 * n
}

/// The filter's program, as the kernel takes it (classic BPF).
#[derive(Debug, Clone)]
pub struct InitGuard {
    program: Vec<sock_filter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Native,
    I386,
    TargetArg0,
    Fcntl,
    Owner,
    Ioctl,
    Eperm,
    Enosys,
}

enum Step {
    /// Loads the 32-bit word at this offset of `seccomp_data`.
    Load(u32),
    /// Jumps to the label if the loaded word equals the constant, else goes on.
    JumpIfEqual(u32, Label),
    /// Jumps to the label if the loaded word has any of the constant's bits.
    JumpIfSet(u32, Label),
    Return(u32),
    Here(Label),
}

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA)
}

fn steps() -> Vec<Step> {
    use Label::*;
    use Step::*;
    let allow = libc::SECCOMP_RET_ALLOW;
    let native_target_arg0 = [
        libc::SYS_kill,
        libc::SYS_tkill,
        libc::SYS_tgkill,
        libc::SYS_rt_sigqueueinfo,
        libc::SYS_rt_tgsigqueueinfo,
        libc::SYS_pidfd_open,
    ];
    let i386_target_arg0 = [
        i386::KILL,
        i386::TKILL,
        i386::TGKILL,
        i386::RT_SIGQUEUEINFO,
        i386::RT_TGSIGQUEUEINFO,
        i386::PIDFD_OPEN,
    ];
    let mut p = vec![
        Load(ARCH),
        JumpIfEqual(AUDIT_ARCH_X86_64, Native),
        JumpIfEqual(AUDIT_ARCH_I386, I386),
        Return(libc::SECCOMP_RET_KILL_PROCESS),
        Here(Native),
        Load(NR),
        JumpIfSet(X32_SYSCALL_BIT, Enosys),
    ];
    p.extend(
        native_target_arg0
            .iter()
            .map(|nr| JumpIfEqual(*nr as u32, TargetArg0)),
    );
    p.extend([
        JumpIfEqual(libc::SYS_pidfd_send_signal as u32, Enosys),
        JumpIfEqual(libc::SYS_fcntl as u32, Fcntl),
        JumpIfEqual(libc::SYS_ioctl as u32, Ioctl),
        Return(allow),
        Here(I386),
        Load(NR),
    ]);
    p.extend(
        i386_target_arg0
            .iter()
            .map(|nr| JumpIfEqual(*nr, TargetArg0)),
    );
    p.extend([
        JumpIfEqual(i386::PIDFD_SEND_SIGNAL, Enosys),
        JumpIfEqual(i386::FCNTL, Fcntl),
        JumpIfEqual(i386::FCNTL64, Fcntl),
        JumpIfEqual(i386::IOCTL, Ioctl),
        Return(allow),
        // kill(pid, …) and the others: the target is the first argument.
        Here(TargetArg0),
        Load(arg_low(0)),
        JumpIfEqual(1, Eperm),
        Return(allow),
        Here(Fcntl),
        Load(arg_low(1)),
        JumpIfEqual(F_SETOWN, Owner),
        JumpIfEqual(F_SETOWN_EX, Eperm),
        Return(allow),
        // F_SETOWN: a PID, or a process group as a negative number.
        Here(Owner),
        Load(arg_low(2)),
        JumpIfEqual(1, Eperm),
        JumpIfEqual(u32::MAX, Eperm),
        Return(allow),
        Here(Ioctl),
        Load(arg_low(1)),
        JumpIfEqual(FIOSETOWN, Eperm),
        JumpIfEqual(SIOCSPGRP, Eperm),
        Return(allow),
        Here(Eperm),
        Return(errno(libc::EPERM)),
        Here(Enosys),
        Return(errno(libc::ENOSYS)),
    ]);
    p
}

/// Turns the steps into instructions, each label into the jump offset to it (forward only,
/// as classic BPF jumps are).
fn assemble(steps: &[Step]) -> Vec<sock_filter> {
    let mut at = Vec::new();
    let mut pc = 0usize;
    for step in steps {
        match step {
            Step::Here(label) => at.push((*label, pc)),
            _ => pc += 1,
        }
    }
    let target = |label: Label, from: usize| -> u8 {
        let (_, to) = at
            .iter()
            .find(|(l, _)| *l == label)
            .unwrap_or_else(|| panic!("label {label:?} is not placed"));
        let offset = to
            .checked_sub(from + 1)
            .unwrap_or_else(|| panic!("label {label:?} is behind its jump"));
        u8::try_from(offset).unwrap_or_else(|_| panic!("label {label:?} is out of reach"))
    };
    let insn = |code: u32, jt: u8, jf: u8, k: u32| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let mut program = Vec::with_capacity(pc);
    for step in steps {
        let pc = program.len();
        program.push(match *step {
            Step::Here(_) => continue,
            Step::Load(offset) => insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, offset),
            Step::JumpIfEqual(k, label) => insn(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                target(label, pc),
                0,
                k,
            ),
            Step::JumpIfSet(k, label) => insn(
                libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
                target(label, pc),
                0,
                k,
            ),
            Step::Return(action) => insn(libc::BPF_RET | libc::BPF_K, 0, 0, action),
        });
    }
    program
}

impl InitGuard {
    /// The filter for this machine, or `None` where it is not written for the architecture
    /// (its syscall numbers and argument layout are x86-64's).
    pub fn new() -> Option<InitGuard> {
        if !cfg!(all(target_arch = "x86_64", target_endian = "little")) {
            return None;
        }
        Some(InitGuard {
            program: assemble(&steps()),
        })
    }

    /// Makes `command`'s process (and so everything it starts) run under the filter. It is
    /// installed between fork and exec, with no allocation there; stage1 is root, so
    /// CAP_SYS_ADMIN lets it do so without `no_new_privs` (which would stop the pod's setuid
    /// programs).
    pub fn apply_to(self, command: &mut Command) {
        let program = self.program;
        let install = move || -> io::Result<()> {
            let fprog = libc::sock_fprog {
                // At most BPF_MAXINSNS (4096) instructions: checked by the tests.
                len: program.len() as u16,
                filter: program.as_ptr().cast_mut(),
            };
            // SAFETY: seccomp(2) reads `fprog` and the `len` instructions it points to, both
            // alive for the call (the closure owns `program`); the kernel copies the program.
            #[allow(unsafe_code)]
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &fprog as *const libc::sock_fprog,
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        // SAFETY: the hook runs in the forked child before exec; it only builds a struct on
        // the stack and makes one system call: nothing that allocates or takes a lock.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(install);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel would decide: runs the program over one `seccomp_data` (only the
    /// instructions the assembler makes).
    fn run(program: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let insn = program[pc];
            let code = u32::from(insn.code);
            pc += 1;
            if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                let at = insn.k as usize;
                acc = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
            } else if code == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K {
                pc += usize::from(if acc == insn.k { insn.jt } else { insn.jf });
            } else if code == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K {
                pc += usize::from(if acc & insn.k != 0 { insn.jt } else { insn.jf });
            } else if code == libc::BPF_RET | libc::BPF_K {
                return insn.k;
            } else {
                panic!("unexpected instruction {code:#x} at {}", pc - 1);
            }
        }
    }

    fn program() -> Vec<sock_filter> {
        InitGuard::new().expect("x86-64").program
    }

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

    #[test]
    fn the_program_is_small_and_every_jump_lands_inside_it() {
        let p = program();
        assert!(
            p.len() <= libc::BPF_MAXINSNS as usize && p.len() < 100,
            "{}",
            p.len()
        );
        for (pc, insn) in p.iter().enumerate() {
            let class = u32::from(insn.code) & 0x07;
            if class == libc::BPF_JMP {
                assert!(
                    pc + 1 + usize::from(insn.jt.max(insn.jf)) < p.len(),
                    "jump at {pc}"
                );
            }
        }
        // Every path ends in a return: the last instruction is one.
        assert_eq!(u32::from(p[p.len() - 1].code), libc::BPF_RET | libc::BPF_K);
    }

    #[test]
    fn signals_to_pid_1_are_refused_others_pass() {
        let p = program();
        let x86_64 = AUDIT_ARCH_X86_64;
        let eperm = errno(libc::EPERM);
        for nr in [
            libc::SYS_kill,
            libc::SYS_tkill,
            libc::SYS_tgkill,
            libc::SYS_rt_sigqueueinfo,
            libc::SYS_rt_tgsigqueueinfo,
            libc::SYS_pidfd_open,
        ] {
            let nr = nr as u32;
            assert_eq!(run(&p, nr, x86_64, [1, 38, 0, 0, 0, 0]), eperm, "{nr} to 1");
            // The kernel truncates pid_t: 1 + 2^32 is PID 1 too.
            assert_eq!(run(&p, nr, x86_64, [1 | 1 << 32, 15, 0, 0, 0, 0]), eperm);
            assert_eq!(run(&p, nr, x86_64, [2, 38, 0, 0, 0, 0]), ALLOW, "{nr} to 2");
            // kill(-1): every process but PID 1 (the kernel spares it).
            assert_eq!(run(&p, nr, x86_64, [u64::MAX, 15, 0, 0, 0, 0]), ALLOW);
        }
        let send = libc::SYS_pidfd_send_signal as u32;
        assert_eq!(
            run(&p, send, x86_64, [3, 9, 0, 0, 0, 0]),
            errno(libc::ENOSYS)
        );
        let getpid = libc::SYS_getpid as u32;
        assert_eq!(run(&p, getpid, x86_64, [1; 6]), ALLOW);
    }

    #[test]
    fn sigio_cannot_be_pointed_at_pid_1() {
        let p = program();
        let (fcntl, ioctl) = (libc::SYS_fcntl as u32, libc::SYS_ioctl as u32);
        let eperm = errno(libc::EPERM);
        let x86_64 = AUDIT_ARCH_X86_64;
        assert_eq!(run(&p, fcntl, x86_64, [3, 8, 1, 0, 0, 0]), eperm);
        // Process group 1.
        assert_eq!(run(&p, fcntl, x86_64, [3, 8, u64::MAX, 0, 0, 0]), eperm);
        assert_eq!(run(&p, fcntl, x86_64, [3, 8, 1 << 32 | 1, 0, 0, 0]), eperm);
        assert_eq!(run(&p, fcntl, x86_64, [3, 8, 42, 0, 0, 0]), ALLOW);
        assert_eq!(run(&p, fcntl, x86_64, [3, 15, 0x1000, 0, 0, 0]), eperm);
        // Other commands, whatever their argument.
        assert_eq!(run(&p, fcntl, x86_64, [1, 4, 1, 0, 0, 0]), ALLOW);
        assert_eq!(run(&p, ioctl, x86_64, [3, 0x8901, 0x1000, 0, 0, 0]), eperm);
        assert_eq!(run(&p, ioctl, x86_64, [3, 0x8902, 0x1000, 0, 0, 0]), eperm);
        assert_eq!(run(&p, ioctl, x86_64, [1, 0x5401, 1, 0, 0, 0]), ALLOW);
    }

    #[test]
    fn other_abis_cannot_slip_past() {
        let p = program();
        let i386 = AUDIT_ARCH_I386;
        let eperm = errno(libc::EPERM);
        for nr in [
            i386::KILL,
            i386::TKILL,
            i386::TGKILL,
            i386::RT_SIGQUEUEINFO,
            i386::RT_TGSIGQUEUEINFO,
            i386::PIDFD_OPEN,
        ] {
            assert_eq!(run(&p, nr, i386, [1, 38, 0, 0, 0, 0]), eperm, "i386 {nr}");
            assert_eq!(run(&p, nr, i386, [7, 38, 0, 0, 0, 0]), ALLOW, "i386 {nr}");
        }
        assert_eq!(run(&p, i386::FCNTL64, i386, [3, 8, 1, 0, 0, 0]), eperm);
        assert_eq!(run(&p, i386::IOCTL, i386, [3, 0x8901, 0, 0, 0, 0]), eperm);
        assert_eq!(
            run(&p, i386::PIDFD_SEND_SIGNAL, i386, [3, 9, 0, 0, 0, 0]),
            errno(libc::ENOSYS)
        );
        // x86-64's kill number is something else on i386 (62: ustat).
        assert_eq!(run(&p, 62, i386, [1, 0, 0, 0, 0, 0]), ALLOW);
        // x32: kill is 62 | the x32 bit; every x32 call is refused.
        let x32_kill = X32_SYSCALL_BIT | 62;
        assert_eq!(
            run(&p, x32_kill, AUDIT_ARCH_X86_64, [1, 38, 0, 0, 0, 0]),
            errno(libc::ENOSYS)
        );
        // An architecture the filter does not know.
        assert_eq!(
            run(&p, 129, 0xC000_00B7, [1, 38, 0, 0, 0, 0]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
    }

    /// The kernel takes the program and applies it: a child under the filter cannot signal
    /// PID 1 (here the host's; signal 0 only checks), nor name it as SIGIO owner, and can
    /// signal itself. Needs root (CAP_SYS_ADMIN), as stage1 has.
    #[test]
    fn the_kernel_enforces_it_in_a_child() {
        let mut command = Command::new("/bin/true");
        InitGuard::new().unwrap().apply_to(&mut command);
        // A second hook, after the filter: its checks become the exit status.
        // SAFETY: the hook makes system calls and exits; it touches no lock or allocator.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(|| {
                let errno = || io::Error::last_os_error().raw_os_error().unwrap_or(0);
                let mut failed = 0;
                if libc::syscall(libc::SYS_kill, 1, 0) != -1 || errno() != libc::EPERM {
                    failed |= 1;
                }
                if libc::syscall(libc::SYS_kill, 1i64 | 1 << 32, 0) != -1 || errno() != libc::EPERM
                {
                    failed |= 2;
                }
                if libc::syscall(libc::SYS_kill, libc::getpid(), 0) != 0 {
                    failed |= 4;
                }
                if libc::fcntl(0, libc::F_SETOWN, 1) != -1 || errno() != libc::EPERM {
                    failed |= 8;
                }
                let send = libc::syscall(libc::SYS_pidfd_send_signal, 0, 0, 0, 0);
                if send != -1 || errno() != libc::ENOSYS {
                    failed |= 16;
                }
                libc::_exit(failed);
            });
        }
        let status = command
            .status()
            .expect("the filter could not be installed: run as root");
        assert_eq!(status.code(), Some(0), "failed checks (bits): {status}");
    }
}
