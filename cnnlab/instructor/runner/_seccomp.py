"""A seccomp filter for the sandbox: no new namespaces, mounts, keyrings, BPF or io_uring.

Namespaces, a read-only view and rlimits do not stop a process from creating a user namespace of
its own, where it is "root" and may mount a tmpfs of any size (filling the host's memory past
the scratch cap) and reach much more of the kernel. Like Flatpak's, this filter refuses what a
graded notebook never needs: ``unshare``, ``setns`` and namespace flags to ``clone`` (``clone3``,
whose flags a filter cannot read, answers ENOSYS so that the C library falls back to ``clone``),
the mount family, kernel keyrings, ``bpf``, ``perf_event_open``, ``userfaultfd``, io_uring,
``ptrace`` and cross-process memory access, module and kexec loading. A system call of a foreign
ABI (32-bit calls on x86-64) kills the process: its numbers differ and would slip through.

``program()`` returns the classic-BPF program bubblewrap loads with ``--seccomp FD``, or None on
an architecture without a table here.
"""

from __future__ import annotations

import errno
import functools
import platform
import struct

# system call numbers (linux/unistd.h); x86-64 first, then arm64 (asm-generic)
_NR = {
    "unshare": (272, 97),
    "setns": (308, 268),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
}
_CLONE, _CLONE3 = (56, 220), (435, 435)
_ARCH = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7), "arm64": (1, 0xC00000B7)}
_X32_BIT = 0x40000000
_CLONE_NAMESPACES = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET

# classic BPF (linux/filter.h, linux/seccomp.h)
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL = 0x7FFF0000, 0x80000000
_DENY, _NOSYS = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
_NR_AT, _ARCH_AT, _ARG0_AT = 0, 4, 16  # offsets in struct seccomp_data (arg 0's low half)


@functools.cache
def program(machine: str | None = None) -> bytes | None:
    """The filter for ``machine`` (default: this one) as packed ``struct sock_filter``s."""
    which = _ARCH.get(machine or platform.machine())
    if which is None:
        return None
    col, audit_arch = which
    # (code, target label or None, k): a jump goes to its label when true, falls through when not
    code: list[tuple[int, str | None, int]] = [
        (_LD_ABS, None, _ARCH_AT),
        (_JEQ, "native", audit_arch),
        (_RET, None, _KILL),
    ]
    body = [("native",), (_LD_ABS, None, _NR_AT)]
    if col == 0:
        body.append((_JGE, "deny", _X32_BIT))
    body += [(_JEQ, "deny", nrs[col]) for nrs in _NR.values()]
    body += [(_JEQ, "nosys", _CLONE3[col]), (_JEQ, "clone", _CLONE[col]), (_RET, None, _ALLOW)]
    body += [("clone",), (_LD_ABS, None, _ARG0_AT), (_JSET, "deny", _CLONE_NAMESPACES)]
    body += [(_RET, None, _ALLOW), ("deny",), (_RET, None, _DENY), ("nosys",), (_RET, None, _NOSYS)]
    code += body
    labels, flat = {}, []
    for item in code:
        if len(item) == 1:
            labels[item[0]] = len(flat)
        else:
            flat.append(item)
    out = b""
    for i, (op, target, k) in enumerate(flat):
        jt = labels[target] - i - 1 if target else 0
        assert 0 <= jt < 256, f"seccomp jump of {jt} instructions does not fit in a byte"
        out += struct.pack("=HBBI", op, jt, 0, k)
    return out
