"""Code the hostile cells share, as source text (it runs in the student's kernel or sandbox).

Everything a case starts carries ``$mark`` in its command line, so the test can prove that nothing
outlived the batch (and kills what it finds); every process a case starts ends by itself within
15 minutes, and what a case writes is capped, so a grader that fails to contain it still leaves
this shared machine usable.
"""

# libc through the interpreter's own symbol table (no dlopen: ctypes.pythonapi is loaded already)
LIBC = r'''
import ctypes as _ct
_libc = _ct.pythonapi


def _raw_read(path, limit=1 << 26):
    """Read a file with libc's open/read (no Python audit event)."""
    fd = _libc.open(path.encode(), 0)
    if fd < 0:
        raise OSError(f"open {path} failed")
    out, buf = [], _ct.create_string_buffer(1 << 16)
    while sum(map(len, out)) < limit:
        n = _libc.read(fd, buf, 1 << 16)
        if n <= 0:
            break
        out.append(buf.raw[:n])
    _libc.close(fd)
    return b"".join(out)


def _raw_write(path, data):
    fd = _libc.open(path.encode(), 0o1 | 0o100 | 0o1000, 0o644)  # O_WRONLY|O_CREAT|O_TRUNC
    if fd >= 0:
        _libc.write(fd, data, len(data))
        _libc.close(fd)
    return fd >= 0


def _spawn(script, detach=False):
    """Run `sh -c script` in a child made with libc's fork (no audit event), marked $mark."""
    argv = (_ct.c_char_p * 5)(b"/bin/sh", b"-c", script.encode(), b"$mark", None)
    pid = _libc.fork()
    if pid == 0:
        if detach:
            _libc.setsid()
            if _libc.fork() != 0:
                _libc._exit(0)
        for fd in range(3, 256):
            _libc.close(fd)
        _libc.execv(b"/bin/sh", argv)
        _libc._exit(127)
    if pid > 0 and detach:
        import os as _os
        _os.waitpid(pid, 0)
    return pid
'''

# define the answers of a stolen notebook (the instructor's or a classmate's) in this namespace
ADOPT = r'''
def _adopt(text):
    """Run every answer cell of a notebook's JSON text here (solution markers dropped)."""
    import json as _json
    nb = _json.loads(text)
    n = 0
    for c in nb["cells"]:
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        if c.get("metadata", {}).get("nbgrader", {}).get("solution"):
            exec("\n".join(l for l in src.split("\n") if "### " not in l), globals())
            n += 1
    return n
'''

# every process of this machine the code may see: pid -> command line
PROCS = r'''
def _procs():
    import os as _os
    out = {}
    for p in _os.listdir("/proc"):
        if p.isdigit() and int(p) != _os.getpid():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    out[int(p)] = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                pass
    return out
'''
