// Exercises every __sys function of the native host (native/module.c), error paths included, plus the engine
// features local-ipam relies on. A plain script: native/smoke.sh compiles it with native/build.sh and runs it
// in a directory it prepared (SMOKE_DIR: a FIFO, a symlink, a file whose name is not UTF-8, a lock file held
// by flock(1) for 5 s). Prints one line per check and "N passed, N failed"; exits 1 on any failure.
// With a mode argument it instead tests how the process ends: --exit N, --status N, --throw, --reject,
// --deep, --kill, --empty.
"use strict";
(function () {
  const S = __sys;
  const C = S.constants;
  const E = __sys.errnos();

  function print(fd, text) {
    const b = S.utf8Encode(text + "\n");
    for (let o = 0; o < b.length; ) {
      const n = S.write(fd, b, o, b.length - o);
      if (n <= 0) S.exit(3);
      o += n;
    }
  }

  const args = S.argv();
  switch (args[1]) {
    case "--exit": // __sys.exit ends the process at once, whatever __exitStatus says
      globalThis.__exitStatus = 9;
      S.exit(Number(args[2]));
      print(1, "not reached");
      return;
    case "--status":
      globalThis.__exitStatus = Number(args[2]);
      return;
    case "--throw":
      throw new TypeError("boom\nsecond line");
    case "--deep": {
      const f = (n) => f(n + 1) + 1; // runaway recursion, uncaught: an error message, not a SIGSEGV
      f(0);
      return;
    }
    case "--kill":
      S.killSelf(C.SIGTERM);
      S.sleepMs(5000);
      return;
    case "--empty":
      return;
  }

  let passed = 0;
  let failed = 0;
  const show = (v) => {
    try {
      return typeof v === "bigint" ? v + "n" : v instanceof Uint8Array ? "u8[" + Array.from(v).join(",") + "]" : JSON.stringify(v);
    } catch (e) {
      return String(v);
    }
  };
  function check(name, ok, detail) {
    if (ok) passed++;
    else failed++;
    print(1, (ok ? "ok   " : "FAIL ") + name + (ok || detail === undefined ? "" : "  " + detail));
  }
  function eq(name, got, want) {
    const g = show(got);
    const w = show(want);
    check(name, g === w, "got " + g + ", want " + w);
  }
  function test(name, fn) {
    try {
      fn();
    } catch (e) {
      check(name, false, "threw " + e + (e && e.stack ? " " + e.stack : ""));
    }
  }
  const bytes = (...a) => new Uint8Array(a);
  const str = (u8) => S.utf8Decode(u8, 0, u8.length);
  const env = S.env();
  const dir = env.SMOKE_DIR;
  const isErr = (r) => typeof r === "number" && r < 0;

  test("constants", () => {
    for (const k of ["O_RDONLY", "O_WRONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_TRUNC", "O_APPEND", "O_NOFOLLOW",
      "O_NONBLOCK", "O_DIRECTORY", "O_CLOEXEC", "O_TMPFILE", "AT_FDCWD", "AT_EMPTY_PATH", "AT_SYMLINK_NOFOLLOW",
      "AT_SYMLINK_FOLLOW", "AT_REMOVEDIR", "LOCK_EX", "LOCK_NB", "LOCK_UN", "S_IFMT", "S_IFREG", "S_IFDIR",
      "S_IFLNK", "SIGKILL", "SIGTERM"])
      check("constant " + k, Number.isInteger(C[k]), show(C[k]));
    const values = new Set(Object.values(E));
    const missing = [];
    for (let i = 1; i <= 133; i++) if (!values.has(i)) missing.push(i);
    eq("errno covers 1..133 (41 and 58 are unassigned on Linux)", missing, [41, 58]);
    eq("errno names", [E.EPERM, E.ENOENT, E.EEXIST, E.EXDEV, E.EINVAL, E.ENOTDIR, E.ELOOP, E.ETIMEDOUT],
      [1, 2, 17, 18, 22, 20, 40, 110]);
    eq("EWOULDBLOCK is EAGAIN", E.EWOULDBLOCK, E.EAGAIN);
    eq("signals", [C.SIGKILL, C.SIGTERM], [9, 15]);
    let threw = false;
    try {
      C.O_RDONLY = 99;
    } catch (e) {
      threw = e instanceof TypeError;
    }
    check("constants are read-only", threw && C.O_RDONLY === 0);
  });

  if (!dir) {
    check("SMOKE_DIR is set (run through native/smoke.sh)", false);
    globalThis.__exitStatus = 1;
    return;
  }
  const dfd = S.openat(C.AT_FDCWD, dir, C.O_RDONLY | C.O_DIRECTORY | C.O_CLOEXEC, 0);
  check("open SMOKE_DIR", dfd >= 0, show(dfd));
  const ro = C.O_RDONLY | C.O_CLOEXEC;

  test("openat", () => {
    const fd = S.openat(dfd, "f1", C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_CLOEXEC, 0o640);
    check("openat O_CREAT|O_EXCL", fd >= 0, show(fd));
    eq("openat existing O_EXCL -> EEXIST", S.openat(dfd, "f1", C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o640), -E.EEXIST);
    eq("openat missing -> ENOENT", S.openat(dfd, "missing", ro, 0), -E.ENOENT);
    eq("openat NUL in path -> EINVAL", S.openat(dfd, "f1\0tail", ro, 0), -E.EINVAL);
    eq("openat O_DIRECTORY on a file -> ENOTDIR", S.openat(dfd, "f1", ro | C.O_DIRECTORY, 0), -E.ENOTDIR);
    eq("openat O_NOFOLLOW on a symlink -> ELOOP", S.openat(dfd, "link", ro | C.O_NOFOLLOW, 0), -E.ELOOP);
    const viaLink = S.openat(dfd, "link", ro, 0);
    check("openat follows a symlink without O_NOFOLLOW", viaLink >= 0, show(viaLink));
    S.close(viaLink);
    eq("openat bad dirfd -> EBADF", S.openat(12345, "f1", ro, 0), -E.EBADF);
    for (const [what, a] of [["string dirfd", ["3", "f1", ro, 0]], ["fractional flags", [dfd, "f1", 0.5, 0]],
      ["null path", [dfd, null, ro, 0]], ["number path", [dfd, 42, ro, 0]], ["object path", [dfd, { toString: () => "f1" }, ro, 0]],
      ["missing mode", [dfd, "f1", ro]], ["NaN flags", [dfd, "f1", NaN, 0]], ["2^40 dirfd", [2 ** 40, "f1", ro, 0]],
      ["BigInt dirfd", [3n, "f1", ro, 0]], ["no arguments", []]])
      eq("openat " + what + " -> EINVAL", S.openat(...a), -E.EINVAL);
    eq("close", S.close(fd), 0);
    eq("close again -> EBADF", S.close(fd), -E.EBADF);
  });

  test("read/write", () => {
    const data = S.utf8Encode("hello, world\n");
    let fd = S.openat(dfd, "f1", C.O_WRONLY | C.O_TRUNC | C.O_CLOEXEC, 0);
    eq("write", S.write(fd, data, 0, data.length), data.length);
    eq("write part", S.write(fd, data, 7, 5), 5);
    eq("write zero bytes", S.write(fd, data, data.length, 0), 0);
    eq("write off past end -> EINVAL", S.write(fd, data, data.length + 1, 0), -E.EINVAL);
    eq("write len past end -> EINVAL", S.write(fd, data, 1, data.length), -E.EINVAL);
    eq("write negative off -> EINVAL", S.write(fd, data, -1, 1), -E.EINVAL);
    eq("write negative len -> EINVAL", S.write(fd, data, 0, -1), -E.EINVAL);
    eq("write fractional len -> EINVAL", S.write(fd, data, 0, 1.5), -E.EINVAL);
    for (const [what, b] of [["Array", [1, 2, 3]], ["ArrayBuffer", new ArrayBuffer(4)], ["Uint16Array", new Uint16Array(4)],
      ["DataView", new DataView(new ArrayBuffer(4))], ["string", "abc"], ["null", null]])
      eq("write from " + what + " -> EINVAL", S.write(fd, b, 0, 1), -E.EINVAL);
    eq("fsync", S.fsync(fd), 0);
    eq("fsync bad fd -> EBADF", S.fsync(-1), -E.EBADF);
    eq("read from a write-only fd -> EBADF", S.read(fd, new Uint8Array(4), 0, 4), -E.EBADF);
    S.close(fd);
    fd = S.openat(dfd, "f1", ro, 0);
    const buf = new Uint8Array(64);
    const n = S.read(fd, buf, 2, 62);
    eq("read", n, data.length + 5);
    eq("read landed at off", str(buf.subarray(2, 2 + n)), "hello, world\nworld");
    eq("read at EOF", S.read(fd, buf, 0, 64), 0);
    // a view into the middle of a buffer: offsets are relative to the view
    const backing = new Uint8Array(16);
    const view = new Uint8Array(backing.buffer, 4, 8);
    const fd2 = S.openat(dfd, "f1", ro, 0);
    eq("read into a view", S.read(fd2, view, 1, 3), 3);
    eq("view offsets respected", Array.from(backing), [0, 0, 0, 0, 0, 104, 101, 108, 0, 0, 0, 0, 0, 0, 0, 0]);
    eq("read past the view -> EINVAL", S.read(fd2, view, 6, 3), -E.EINVAL);
    S.close(fd2);
    S.close(fd);
    eq("read bad fd -> EBADF", S.read(-1, buf, 0, 1), -E.EBADF);
  });

  test("fstat/fstatat/futimens/fchmod", () => {
    const fd = S.openat(dfd, "f1", C.O_RDWR | C.O_CLOEXEC, 0);
    const st = S.fstat(fd);
    check("fstat is an array of 9", Array.isArray(st) && st.length === 9, show(st));
    check("dev and ino are BigInts", typeof st[0] === "bigint" && typeof st[1] === "bigint" && st[1] > 0n, show(st));
    eq("fstat type", st[2] & C.S_IFMT, C.S_IFREG);
    eq("fstat permissions", st[2] & 0o777, 0o640);
    eq("fstat nlink/uid/gid/size", [st[3], st[4], st[5], st[6]], [1, 0, 0, 18]);
    check("fstat mtime", Number.isInteger(st[7]) && st[7] > 1.5e9 && st[8] >= 0 && st[8] < 1e9, show(st));
    eq("futimens", S.futimens(fd, 1000000000, 5, 1234567890, 123456789), 0);
    const st2 = S.fstat(fd);
    eq("mtime set to the ns", [st2[7], st2[8]], [1234567890, 123456789]);
    eq("futimens nsec out of range -> EINVAL", S.futimens(fd, 1, 0, 1, 2e9), -E.EINVAL);
    eq("futimens fractional seconds -> EINVAL", S.futimens(fd, 1.5, 0, 1, 0), -E.EINVAL);
    eq("fchmod", S.fchmod(fd, 0o600), 0);
    eq("fchmod applied", S.fstat(fd)[2] & 0o777, 0o600);
    eq("fchmod bad fd -> EBADF", S.fchmod(-1, 0o600), -E.EBADF);
    const st3 = S.fstatat(dfd, "f1", 0);
    eq("fstatat sees the same inode", [st3[0], st3[1]], [st[0], st[1]]);
    eq("fstatat AT_SYMLINK_NOFOLLOW on a symlink", S.fstatat(dfd, "link", C.AT_SYMLINK_NOFOLLOW)[2] & C.S_IFMT, C.S_IFLNK);
    eq("fstatat through a symlink", S.fstatat(dfd, "link", 0)[2] & C.S_IFMT, C.S_IFREG);
    eq("fstatat directory", S.fstatat(C.AT_FDCWD, dir, 0)[2] & C.S_IFMT, C.S_IFDIR);
    eq("fstatat missing -> ENOENT", S.fstatat(dfd, "missing", 0), -E.ENOENT);
    eq("fstatat NUL -> EINVAL", S.fstatat(dfd, "f\0", 0), -E.EINVAL);
    eq("fstatat AT_EMPTY_PATH", S.fstatat(fd, "", C.AT_EMPTY_PATH)[1], st[1]);
    eq("fstat bad fd -> EBADF", S.fstat(-1), -E.EBADF);
    eq("fstat string fd -> EINVAL", S.fstat("0"), -E.EINVAL);
    S.close(fd);
  });

  test("mkdirat/linkat/renameat/unlinkat", () => {
    eq("mkdirat", S.mkdirat(dfd, "sub", 0o755), 0);
    eq("mkdirat again -> EEXIST", S.mkdirat(dfd, "sub", 0o755), -E.EEXIST);
    eq("mkdirat NUL -> EINVAL", S.mkdirat(dfd, "s\0", 0o755), -E.EINVAL);
    eq("linkat", S.linkat(dfd, "f1", dfd, "sub/hard", 0), 0);
    eq("nlink is 2", S.fstatat(dfd, "f1", 0)[3], 2);
    eq("linkat onto an existing name -> EEXIST", S.linkat(dfd, "f1", dfd, "sub/hard", 0), -E.EEXIST);
    eq("linkat NUL in the new path -> EINVAL", S.linkat(dfd, "f1", dfd, "x\0", 0), -E.EINVAL);
    eq("renameat", S.renameat(dfd, "sub/hard", dfd, "sub/hard2"), 0);
    eq("renameat missing -> ENOENT", S.renameat(dfd, "sub/hard", dfd, "sub/hard3"), -E.ENOENT);
    eq("renameat NUL -> EINVAL", S.renameat(dfd, "sub/hard2", dfd, "sub/\0"), -E.EINVAL);
    if (env.SMOKE_OTHER_FS) {
      const ofd = S.openat(C.AT_FDCWD, env.SMOKE_OTHER_FS, ro | C.O_DIRECTORY, 0);
      eq("renameat across file systems -> EXDEV", S.renameat(dfd, "sub/hard2", ofd, "moved"), -E.EXDEV);
      S.close(ofd);
    }
    eq("unlinkat a non-empty directory -> ENOTEMPTY", S.unlinkat(dfd, "sub", C.AT_REMOVEDIR), -E.ENOTEMPTY);
    eq("unlinkat", S.unlinkat(dfd, "sub/hard2", 0), 0);
    eq("unlinkat missing -> ENOENT", S.unlinkat(dfd, "sub/hard2", 0), -E.ENOENT);
    eq("unlinkat a directory without AT_REMOVEDIR -> EISDIR", S.unlinkat(dfd, "sub", 0), -E.EISDIR);
    eq("unlinkat AT_REMOVEDIR", S.unlinkat(dfd, "sub", C.AT_REMOVEDIR), 0);
  });

  test("O_TMPFILE + linkat AT_EMPTY_PATH", () => {
    const fd = S.openat(dfd, ".", C.O_TMPFILE | C.O_RDWR | C.O_CLOEXEC, 0o644);
    check("openat O_TMPFILE", fd >= 0, show(fd));
    const data = S.utf8Encode("anonymous until linked");
    eq("write to the unnamed file", S.write(fd, data, 0, data.length), data.length);
    eq("not visible before linkat", S.readdir(dfd).includes("tmpnamed"), false);
    eq("linkat(fd, \"\", AT_EMPTY_PATH)", S.linkat(fd, "", dfd, "tmpnamed", C.AT_EMPTY_PATH), 0);
    eq("linked file has the data", S.fstatat(dfd, "tmpnamed", 0)[6], data.length);
    eq("linkat AT_EMPTY_PATH onto an existing name -> EEXIST", S.linkat(fd, "", dfd, "tmpnamed", C.AT_EMPTY_PATH), -E.EEXIST);
    S.close(fd);
  });

  test("FIFO with O_NONBLOCK", () => {
    eq("open for writing with no reader -> ENXIO", S.openat(dfd, "fifo", C.O_WRONLY | C.O_NONBLOCK, 0), -E.ENXIO);
    const r = S.openat(dfd, "fifo", C.O_RDONLY | C.O_NONBLOCK | C.O_CLOEXEC, 0);
    check("open for reading does not block", r >= 0, show(r));
    const buf = new Uint8Array(8);
    eq("read with no writer: EOF", S.read(r, buf, 0, 8), 0);
    const w = S.openat(dfd, "fifo", C.O_WRONLY | C.O_NONBLOCK | C.O_CLOEXEC, 0);
    check("open for writing once there is a reader", w >= 0, show(w));
    eq("read with a writer and no data -> EAGAIN", S.read(r, buf, 0, 8), -E.EAGAIN);
    eq("write into the FIFO", S.write(w, bytes(120, 121), 0, 2), 2);
    eq("read it back", S.read(r, buf, 0, 8), 2);
    eq("bytes", str(buf.subarray(0, 2)), "xy");
    S.close(w);
    S.close(r);
  });

  test("readdir", () => {
    const sfd = S.openat(dfd, "names", ro | C.O_DIRECTORY, 0);
    for (const n of ["b", "a", "c"]) S.close(S.openat(sfd, n, C.O_WRONLY | C.O_CREAT | C.O_CLOEXEC, 0o644));
    const names = S.readdir(sfd);
    eq("readdir names (no . and ..)", names.slice().sort(), ["a", "a\ufffdb", "b", "c"]);
    eq("readdir again: dirfd neither moved nor closed", S.readdir(sfd).sort(), names.slice().sort());
    check("dirfd still open", !isErr(S.fstat(sfd)));
    eq("readdir empty directory", (S.mkdirat(sfd, "empty", 0o755), S.readdir(S.openat(sfd, "empty", ro | C.O_DIRECTORY, 0))), []);
    eq("readdir on a file -> ENOTDIR", S.readdir(S.openat(dfd, "f1", ro, 0)), -E.ENOTDIR);
    eq("readdir bad fd -> EBADF", S.readdir(-1), -E.EBADF);
    eq("readdir string -> EINVAL", S.readdir("."), -E.EINVAL);
    // many entries: more than one getdents buffer
    const bfd = S.openat(dfd, ".", ro | C.O_DIRECTORY, 0);
    S.mkdirat(bfd, "many", 0o755);
    const mfd = S.openat(bfd, "many", ro | C.O_DIRECTORY, 0);
    for (let i = 0; i < 2000; i++) S.close(S.openat(mfd, "entry-with-a-longish-name-" + i, C.O_WRONLY | C.O_CREAT | C.O_CLOEXEC, 0o644));
    eq("readdir 2000 entries", S.readdir(mfd).length, 2000);
  });

  test("flock", () => {
    const fd = S.openat(dfd, "f1", ro, 0);
    eq("flock LOCK_EX non-blocking, free", S.flock(fd, C.LOCK_EX, 0), 0);
    eq("flock LOCK_UN", S.flock(fd, C.LOCK_UN, 0), 0);
    eq("flock forever, free", S.flock(fd, C.LOCK_EX, -1), 0);
    eq("flock LOCK_UN again", S.flock(fd, C.LOCK_UN, -1), 0);
    eq("flock bad fd -> EBADF", S.flock(-1, C.LOCK_EX, 0), -E.EBADF);
    eq("flock NaN timeout -> EINVAL", S.flock(fd, C.LOCK_EX, NaN), -E.EINVAL);
    eq("flock string op -> EINVAL", S.flock(fd, "2", 0), -E.EINVAL);
    S.close(fd);
    // "held" is locked by `flock -x held -c 'echo locked; exec sleep 5'` started by smoke.sh
    const lfd = S.openat(dfd, "held", ro, 0);
    eq("flock held, non-blocking -> EWOULDBLOCK", S.flock(lfd, C.LOCK_EX, 0), -E.EWOULDBLOCK);
    let t = S.monotonicMs();
    eq("flock held, 300 ms -> ETIMEDOUT", S.flock(lfd, C.LOCK_EX, 300), -E.ETIMEDOUT);
    let dt = S.monotonicMs() - t;
    check("waited about 300 ms", dt >= 299 && dt < 1500, dt.toFixed(1) + " ms");
    t = S.monotonicMs();
    eq("flock held, 1 ms -> ETIMEDOUT", S.flock(lfd, C.LOCK_EX, 1), -E.ETIMEDOUT);
    check("waited about 1 ms", S.monotonicMs() - t < 500, (S.monotonicMs() - t).toFixed(1) + " ms");
    S.sleepMs(50); // a SIGALRM left armed would kill the process here (default action)
    t = S.monotonicMs();
    eq("flock held, 20 s: granted when the holder exits", S.flock(lfd, C.LOCK_EX, 20000), 0);
    dt = S.monotonicMs() - t;
    check("granted before the timeout", dt < 19000, dt.toFixed(1) + " ms");
    S.close(lfd);
    S.sleepMs(30);
  });

  test("getrandom", () => {
    const a = new Uint8Array(64);
    const b = new Uint8Array(64);
    eq("getrandom", S.getrandom(a, 0, 64), 0);
    S.getrandom(b, 0, 64);
    check("random bytes differ", a.some((x, i) => x !== b[i]) && a.some((x) => x !== 0));
    const c = new Uint8Array(8);
    eq("getrandom part", S.getrandom(c, 4, 4), 0);
    eq("first half untouched", Array.from(c.subarray(0, 4)), [0, 0, 0, 0]);
    eq("getrandom past the end -> EINVAL", S.getrandom(c, 4, 5), -E.EINVAL);
    const big = new Uint8Array(1 << 20);
    eq("getrandom 1 MiB", S.getrandom(big, 0, big.length), 0);
    check("1 MiB filled", big.subarray(big.length - 64).some((x) => x !== 0));
  });

  test("processes and time", () => {
    eq("geteuid", S.geteuid(), 0);
    const pid = S.getpid();
    check("getpid", Number.isInteger(pid) && pid > 1, show(pid));
    eq("killSelf(0) probes", S.killSelf(0), 0);
    eq("killSelf bad signal -> EINVAL", S.killSelf(-5), -E.EINVAL);
    eq("killSelf string -> EINVAL", S.killSelf("15"), -E.EINVAL);
    const rt = S.realtimeMs();
    check("realtimeMs near Date.now()", Math.abs(rt - Date.now()) < 1000, rt + " vs " + Date.now());
    let frac = false;
    for (let i = 0; i < 20 && !frac; i++) frac = !Number.isInteger(S.monotonicMs());
    check("monotonicMs is fractional", frac);
    const m1 = S.monotonicMs();
    eq("sleepMs", S.sleepMs(25.5), 0);
    const slept = S.monotonicMs() - m1;
    check("slept >= 25.5 ms", slept >= 25.4 && slept < 2000, slept.toFixed(3) + " ms");
    eq("sleepMs(0)", S.sleepMs(0), 0);
    eq("sleepMs negative -> EINVAL", S.sleepMs(-1), -E.EINVAL);
    eq("sleepMs Infinity -> EINVAL", S.sleepMs(Infinity), -E.EINVAL);
    eq("sleepMs string -> EINVAL", S.sleepMs("10"), -E.EINVAL);
  });

  test("env/argv", () => {
    eq("env is a plain record without prototype", Object.getPrototypeOf(env), null);
    eq("env SMOKE_DIR", typeof env.SMOKE_DIR, "string");
    eq("env __proto__ is a plain key", env.__proto__, "not a prototype");
    eq("env invalid UTF-8 value", env.SMOKE_BAD_UTF8, "a\ufffd\ufffdb");
    eq("env value with '='", env.SMOKE_EQ, "x=y=z");
    eq("env empty value", env.SMOKE_EMPTY, "");
    eq("argv", args.slice(1), ["first", "two words", "\u00fc\u{1F600}", ""]);
    check("argv[0] is the program", typeof args[0] === "string" && args[0].length > 0, show(args[0]));
  });

  test("utf8", () => {
    eq("encode ASCII", S.utf8Encode("abc"), bytes(97, 98, 99));
    eq("encode empty", S.utf8Encode(""), bytes());
    eq("encode Latin-1", S.utf8Encode("\u00ff\u00e9"), bytes(0xc3, 0xbf, 0xc3, 0xa9));
    eq("encode BMP", S.utf8Encode("\u20ac"), bytes(0xe2, 0x82, 0xac));
    eq("encode astral", S.utf8Encode("\u{1D11E}"), bytes(0xf0, 0x9d, 0x84, 0x9e));
    eq("encode lone high surrogate", S.utf8Encode("a\ud800"), bytes(0x61, 0xef, 0xbf, 0xbd));
    eq("encode lone low surrogate", S.utf8Encode("\udc00x"), bytes(0xef, 0xbf, 0xbd, 0x78));
    eq("encode reversed pair", S.utf8Encode("\udc00\ud800"), bytes(0xef, 0xbf, 0xbd, 0xef, 0xbf, 0xbd));
    eq("encode U+D7FF (not a surrogate)", S.utf8Encode("\ud7ff"), bytes(0xed, 0x9f, 0xbf));
    eq("encode NUL", S.utf8Encode("a\0b"), bytes(0x61, 0, 0x62));
    eq("encode non-string -> EINVAL", S.utf8Encode(42), -E.EINVAL);
    check("encode returns a Uint8Array", S.utf8Encode("x") instanceof Uint8Array);
    eq("decode astral", str(bytes(0xf0, 0x9d, 0x84, 0x9e)), "\u{1D11E}");
    eq("decode U+10FFFF", str(bytes(0xf4, 0x8f, 0xbf, 0xbf)), "\u{10FFFF}");
    eq("decode invalid byte", str(bytes(0x61, 0xff, 0x62)), "a\ufffdb");
    eq("decode truncated sequence: one U+FFFD per byte", str(bytes(0xe2, 0x82, 0x41)), "\ufffd\ufffdA");
    eq("decode truncated at the end", str(bytes(0x41, 0xf0, 0x9d, 0x84)), "A\ufffd\ufffd\ufffd");
    eq("decode encoded surrogate", str(bytes(0xed, 0xa0, 0x80)), "\ufffd\ufffd\ufffd");
    eq("decode overlong", str(bytes(0xc0, 0x80, 0xe0, 0x80, 0xaf)), "\ufffd".repeat(5));
    eq("decode above U+10FFFF", str(bytes(0xf4, 0x90, 0x80, 0x80)), "\ufffd".repeat(4));
    eq("decode lone continuation bytes", str(bytes(0x80, 0xbf)), "\ufffd\ufffd");
    eq("decode NUL", str(bytes(0x61, 0, 0x62)), "a\0b");
    eq("decode a range", S.utf8Decode(S.utf8Encode("hello world"), 6, 5), "world");
    eq("decode range past the end -> EINVAL", S.utf8Decode(bytes(1, 2), 1, 2), -E.EINVAL);
    eq("decode non-buffer -> EINVAL", S.utf8Decode("abc", 0, 1), -E.EINVAL);
    const all = [];
    for (let cp = 0; cp < 0x110000; cp += cp < 0x800 ? 1 : 97) if (cp < 0xd800 || cp > 0xdfff) all.push(String.fromCodePoint(cp));
    all.push("\u{10FFFF}", "\ud7ff", "\ue000", "\uffff");
    const text = all.join("");
    eq("round trip over the code point range", str(S.utf8Encode(text)) === text, true);
  });

  test("hash32 (the index checksum: must equal src/platform/checksum.ts, whose values these are)", () => {
    const h = (s) => { const b = typeof s === "string" ? S.utf8Encode(s) : s; return S.hash32(b, 0, b.length); };
    eq("hash32 ''", h(""), 0xb1c4577d);
    eq("hash32 'a'", h("a"), 0x3a9cbfc0);
    eq("hash32 'ab'", h("ab"), 0x7ac5ef97);
    eq("hash32 'abc'", h("abc"), 0x5211b0cf);
    eq("hash32 'abcd'", h("abcd"), 0x7aff505a);
    eq("hash32 'hello'", h("hello"), 0xf970c61f);
    eq("hash32 'Hello, world!'", h("Hello, world!"), 0xac349754);
    eq("hash32 quick brown fox", h("The quick brown fox jumps over the lazy dog"), 0x7b0551a7);
    eq("hash32 one full block", h("0123456789abcdef"), 0xdf0c897c);
    eq("hash32 a block and a byte", h("0123456789abcdef0"), 0xba2d77da);
    eq("hash32 four zero bytes", h(new Uint8Array(4)), 0x7594a75e);
    const seq = new Uint8Array(256).map((_, i) => i);
    eq("hash32 bytes 0..255", h(seq), 0x987a601b);
    const big = new Uint8Array(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 255;
    eq("hash32 1 MiB", h(big), 0x867c4935);
    eq("hash32 of a range", S.hash32(S.utf8Encode("xxhelloyy"), 2, 5), 0xf970c61f);
    eq("hash32 is unsigned", h("hello, 0x80000000?") >= 0, true);
    eq("hash32 past the end -> EINVAL", S.hash32(seq, 250, 7), -E.EINVAL);
  });

  test("unixRequest (the node agent's socket)", () => {
    const dir = S.env().SMOKE_DIR;
    eq("an answer up to its first newline", S.unixRequest(dir + "/answers.sock", "ping 1\n", 5000), "pong ping 1");
    eq("no socket -> ENOENT", S.unixRequest(dir + "/nothing.sock", "x\n", 1000), -E.ENOENT);
    eq("not a socket -> ECONNREFUSED", S.unixRequest(dir + "/target", "x\n", 1000), -E.ECONNREFUSED);
    const t0 = S.monotonicMs();
    eq("no answer -> ETIMEDOUT", S.unixRequest(dir + "/silent.sock", "x\n", 200), -E.ETIMEDOUT);
    const waited = S.monotonicMs() - t0;
    check("ETIMEDOUT after about the bound", waited >= 190 && waited < 3000, String(waited));
    eq("a path longer than sun_path -> ENAMETOOLONG", S.unixRequest("/" + "x".repeat(200), "x\n", 1000), -E.ENAMETOOLONG);
    eq("a number for a path -> EINVAL", S.unixRequest(1, "x\n", 1000), -E.EINVAL);
    eq("a negative timeout -> EINVAL", S.unixRequest(dir + "/answers.sock", "x\n", -1), -E.EINVAL);
  });

  test("v4Intervals (must equal v4IntervalsOf in src/net/exclusions.ts)", () => {
    // [m, from/to pairs as dotted quads, skipped indices]
    const quad = (n) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
    const v4 = (list) => {
      const r = S.v4Intervals(list);
      if (typeof r === "number") return r;
      const w = new Uint32Array(r.buffer, r.byteOffset, r.byteLength / 4);
      const pairs = [];
      for (let i = 0; i < w[0]; i++) pairs.push(quad(w[1 + 2 * i]) + "-" + quad(w[2 + 2 * i]));
      return [pairs, Array.from(w.subarray(1 + 2 * w[0]))];
    };
    eq("empty list", v4([]), [[], []]);
    eq("one address", v4(["10.0.0.5"]), [["10.0.0.5-10.0.0.5"], []]);
    eq("a CIDR", v4(["10.0.0.64/27"]), [["10.0.0.64-10.0.0.95"], []]);
    eq("sorted, overlaps and touching ones merged", v4(["10.0.0.9", "10.0.0.0/29", "10.0.0.8", "10.0.0.4/30", "10.0.0.11"]),
      [["10.0.0.0-10.0.0.9", "10.0.0.11-10.0.0.11"], []]);
    eq("nested", v4(["10.0.0.0/24", "10.0.0.7", "10.0.0.128/25"]), [["10.0.0.0-10.0.0.255"], []]);
    eq("/0 and the top address (no overflow)", v4(["255.255.255.255", "0.0.0.0/0", "255.255.255.255/32"]),
      [["0.0.0.0-255.255.255.255"], []]);
    eq("the top address next to the one before", v4(["255.255.255.255", "255.255.255.254"]),
      [["255.255.255.254-255.255.255.255"], []]);
    eq("mask: 8 digits with leading zeros", v4(["10.0.0.0/00000024"]), [["10.0.0.0-10.0.0.255"], []]);
    // not plain IPv4 (or not valid): left to the caller, by index
    const others = ["10.0.0.01", "10.0.0.0/000000024", "10.0.0.0/", "10.0.0.0/33", "10.0.0.5/24", "10.0.0",
      "10.0.0.0.0", "10..0.0", ".10.0.0", "10.0.0.256", "1000.0.0.0", "fd00::1", "::ffff:10.0.0.1", " 10.0.0.1",
      "10.0.0.1\0", "10.0.0.\u0661", "10.0.0.1/2a", "", null, undefined, 42, {}, "10.0.0.0/-1", "10.0.0.0/+8"];
    eq("every other entry skipped", v4(["10.0.0.1", ...others, "10.0.0.2"]),
      [["10.0.0.1-10.0.0.2"], others.map((_, i) => i + 1)]);
    eq("holes are skipped", v4([, "10.0.0.1"]), [["10.0.0.1-10.0.0.1"], [0]]);
    const many = [];
    for (let i = 0; i < 80000; i++) many.push(quad(((10 << 24) | (i * 2 + 1)) >>> 0));
    const r = v4(many);
    eq("80,000 odd addresses: 80,000 intervals", r[0].length, 80000);
    eq("80,000: the last", r[0][79999], "10.2.112.255-10.2.112.255");
    eq("not an array -> EINVAL", S.v4Intervals("10.0.0.1"), -E.EINVAL);
    eq("an array-like object -> EINVAL", S.v4Intervals({ length: 1, 0: "10.0.0.1" }), -E.EINVAL);
  });

  test("engine", () => {
    eq("BigInt 2^64-1", (1n << 64n) - 1n, 18446744073709551615n);
    eq("BigInt asUintN", BigInt.asUintN(64, -1n), 18446744073709551615n);
    eq("BigInt 128-bit hex", ((1n << 128n) - 1n).toString(16), "f".repeat(32));
    eq("BigInt division", (10n ** 30n) / 7n, 142857142857142857142857142857n);
    eq("BigInt from a decimal string", BigInt("340282366920938463463374607431768211455"), (1n << 128n) - 1n);
    let mixed = null;
    try { mixed = 1n + 1; } catch (e) { mixed = e instanceof TypeError; }
    eq("BigInt + Number -> TypeError", mixed, true);
    eq("Math.imul overflow", Math.imul(0x12345678, 123), -1088058456);
    let deep = null;
    try {
      JSON.parse("[".repeat(100000) + "]".repeat(100000));
      deep = "parsed";
    } catch (e) {
      deep = e instanceof Error;
    }
    eq("JSON.parse 100,000 deep throws a catchable error", deep, true);
    let deepObj = null;
    try {
      JSON.parse('{"a":'.repeat(100000) + "1" + "}".repeat(100000));
      deepObj = "parsed";
    } catch (e) {
      deepObj = e instanceof Error;
    }
    eq("JSON.parse 100,000 deep objects throws", deepObj, true);
    let nested = [];
    for (let i = 0; i < 100000; i++) nested = [nested];
    let str1 = null;
    try { JSON.stringify(nested); str1 = "ok"; } catch (e) { str1 = e instanceof Error; }
    eq("JSON.stringify 100,000 deep throws", str1, true);
    let str2 = null;
    try { String(nested); str2 = "ok"; } catch (e) { str2 = e instanceof Error; }
    eq("Array join 100,000 deep throws", str2, true);
    nested = null;
    let rec = null;
    try { const f = (n) => f(n + 1) + 1; f(0); } catch (e) { rec = e instanceof Error; }
    eq("runaway recursion throws a catchable error", rec, true);
    let oom = null;
    try { new Uint8Array(512 * 1024 * 1024); oom = "allocated"; } catch (e) { oom = e instanceof Error; }
    eq("512 MiB allocation past the 256 MiB limit throws", oom, true);
    const big = "x".repeat(16 << 20);
    eq("16 MiB string", big.length, 16 << 20);
    const bigBytes = S.utf8Encode(big);
    eq("16 MiB encoded", bigBytes.length, 16 << 20);
    eq("16 MiB decoded", S.utf8Decode(bigBytes, 0, bigBytes.length) === big, true);
    const wide = "\u20ac".repeat(4 << 20);
    const wideBytes = S.utf8Encode(wide);
    eq("4 Mi euro signs encoded", wideBytes.length, 12 << 20);
    eq("4 Mi euro signs decoded", S.utf8Decode(wideBytes, 0, wideBytes.length) === wide, true);
    check("16 MiB hashed", S.hash32(bigBytes, 0, bigBytes.length) >= 0);
    eq("JSON round trip", JSON.stringify(JSON.parse('{"a":[1,2.5,"\\u00e9",null,true],"b":{"c":"d"}}')),
      '{"a":[1,2.5,"é",null,true],"b":{"c":"d"}}');
    eq("RegExp", /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec("10.1.2.3").slice(1), ["10", "1", "2", "3"]);
    eq("Map/Set", [new Map([[1, 2]]).get(1), new Set([1, 1, 2]).size], [2, 2]);
    let evalBlocked = null;
    try { (0, eval)("1"); evalBlocked = false; } catch (e) { evalBlocked = e instanceof Error; }
    eq("eval is not available", evalBlocked, true);
    let fnBlocked = null;
    try { Function("return 1")(); fnBlocked = false; } catch (e) { fnBlocked = e instanceof Error; }
    eq("Function(string) is not available", fnBlocked, true);
    eq("no Promise, Proxy or String.prototype.normalize (nothing uses them)",
      [typeof Promise, typeof Proxy, typeof "".normalize], ["undefined", "undefined", "undefined"]);
  });

  test("wrong argument types never crash", () => {
    const junk = [undefined, null, true, {}, [], "str", "", -1, 1.5, NaN, Infinity, -Infinity, 2 ** 40, -(2 ** 53), 1n, Symbol("s"),
      new Uint8Array(0), new Uint8Array(4), new Float64Array(2), () => 0];
    const skip = new Set(["exit", "killSelf", "constants"]); // killSelf is covered above; exit ends the run
    let calls = 0;
    let bad = [];
    for (const name of Object.getOwnPropertyNames(S)) {
      if (skip.has(name)) continue;
      const f = S[name];
      for (let i = 0; i < junk.length; i++)
        for (let j = 0; j < junk.length; j += 3) {
          const a = [junk[i], junk[j], junk[(i + j) % junk.length], junk[(i * 7 + j) % junk.length], junk[(j * 5 + 1) % junk.length]];
          let r;
          try {
            r = f(...a);
          } catch (e) {
            bad.push(name + " threw " + e);
            continue;
          }
          calls++;
          if (typeof r === "number" && r >= 0) {
            // only the argument-free calls and whole-number fds can succeed; close anything that was opened
            if (name === "openat") S.close(r);
          }
        }
    }
    eq("junk calls returned without throwing", bad.slice(0, 5), []);
    check("junk calls made", calls > 1000, String(calls));
  });

  S.close(dfd);
  print(1, passed + " passed, " + failed + " failed");
  globalThis.__exitStatus = failed === 0 ? 0 : 1; // the host reads it once the script has run
})();
