/*
 * The `__sys` object: the system calls behind src/platform/native.ts (contract in src/platform/types.ts).
 *
 * Conventions, shared by every function here:
 * - Failure is a return value, never an exception: -errno from the call, or -EINVAL for an argument of the
 *   wrong type or range (a path with a NUL byte, an offset past the end of the buffer, 1.5 where an int goes).
 *   native.ts turns a negative number into SysError. The only exceptions thrown are the engine's own
 *   (out of memory while building a result), which native.ts lets through.
 * - Arguments are checked by JS type and never converted with ToNumber/ToString, so no JS code can run
 *   between taking a pointer into an ArrayBuffer and the system call that uses it.
 * - Text crosses the boundary as UTF-8. Strings from the OS (names, environment) and utf8Decode map each
 *   byte that starts no valid sequence to U+FFFD, as Go's utf8.DecodeRune does; lone surrogates in JS
 *   strings become U+FFFD (EF BF BD) going out, as TextEncoder does.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "quickjs.h"

extern char **environ;

enum { ARG_OK, ARG_BAD, ARG_EXC };

static int g_argc;
static char **g_argv;
static JSValue g_uint8array; /* the Uint8Array constructor, taken before any script runs (0 until then) */

/* ---- arguments ---- */

/* An integral JS number within [lo, hi]; no conversion of other types (a string "3" is rejected). */
static int arg_i64(JSValueConst v, int64_t lo, int64_t hi, int64_t *out)
{
    int tag = JS_VALUE_GET_TAG(v);
    if (tag == JS_TAG_INT) {
        int64_t x = JS_VALUE_GET_INT(v);
        if (x < lo || x > hi)
            return ARG_BAD;
        *out = x;
        return ARG_OK;
    }
    if (JS_TAG_IS_FLOAT64(tag)) {
        double d = JS_VALUE_GET_FLOAT64(v);
        /* NaN fails both comparisons; bounds used here are all exact as doubles */
        if (!(d >= (double)lo && d <= (double)hi) || d != trunc(d))
            return ARG_BAD;
        *out = (int64_t)d;
        return ARG_OK;
    }
    return ARG_BAD;
}

static int arg_int(JSValueConst v, int *out)
{
    int64_t x;
    int r = arg_i64(v, INT32_MIN, INT32_MAX, &x);
    if (r == ARG_OK)
        *out = (int)x;
    return r;
}

/* A finite JS number (timeouts and sleeps, which may be fractional). */
static int arg_double(JSValueConst v, double *out)
{
    if (!JS_IsNumber(v))
        return ARG_BAD;
    if (JS_VALUE_GET_TAG(v) == JS_TAG_INT)
        *out = JS_VALUE_GET_INT(v);
    else
        *out = JS_VALUE_GET_FLOAT64(v);
    return isfinite(*out) ? ARG_OK : ARG_BAD;
}

/* JS_ToCStringLen keeps a lone surrogate as its 3-byte encoding (ED A0..BF xx), which is not UTF-8: make it
   U+FFFD, which has the same length. Safe to do in place: that output is a fresh buffer whenever a byte is
   >= 0x80 (only pure-ASCII strings are returned without a copy). */
static void fix_lone_surrogates(char *s, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++) {
        if ((uint8_t)s[i] == 0xED && (uint8_t)s[i + 1] >= 0xA0) {
            s[i] = (char)0xEF;
            s[i + 1] = (char)0xBF;
            s[i + 2] = (char)0xBD;
            i += 2;
        }
    }
}

/* A JS string as UTF-8 (*out freed with JS_FreeCString). Non-strings are ARG_BAD, out of memory ARG_EXC. */
static int arg_utf8(JSContext *ctx, JSValueConst v, const char **out, size_t *len)
{
    if (!JS_IsString(v))
        return ARG_BAD;
    const char *s = JS_ToCStringLen(ctx, len, v);
    if (!s)
        return ARG_EXC;
    if (memchr(s, 0xED, *len))
        fix_lone_surrogates((char *)s, *len);
    *out = s;
    return ARG_OK;
}

/* A path: a string without NUL bytes (C would silently cut it at the first one). */
static int arg_path(JSContext *ctx, JSValueConst v, const char **out)
{
    size_t len;
    int r = arg_utf8(ctx, v, out, &len);
    if (r == ARG_OK && strlen(*out) != len) {
        JS_FreeCString(ctx, *out);
        *out = NULL;
        return ARG_BAD;
    }
    return r;
}

/* (u8, off, len): a 1-byte-element typed array and a range inside it; *p points at byte off. */
static int arg_bytes(JSContext *ctx, JSValueConst buf, JSValueConst offv, JSValueConst lenv, uint8_t **p,
                     size_t *n)
{
    size_t boff, blen, bpe, size;
    int64_t off, len;
    if (!JS_IsObject(buf))
        return ARG_BAD;
    JSValue ab = JS_GetTypedArrayBuffer(ctx, buf, &boff, &blen, &bpe);
    if (JS_IsException(ab)) {
        /* not a typed array: a TypeError we turn into -EINVAL */
        JS_FreeValue(ctx, JS_GetException(ctx));
        return ARG_BAD;
    }
    uint8_t *data = JS_GetArrayBuffer(ctx, &size, ab);
    JS_FreeValue(ctx, ab); /* the typed array, still referenced by our caller, keeps the buffer alive */
    if (!data) {
        JS_FreeValue(ctx, JS_GetException(ctx)); /* detached */
        return ARG_BAD;
    }
    if (bpe != 1 || boff > size || blen > size - boff)
        return ARG_BAD;
    if (arg_i64(offv, 0, (int64_t)blen, &off) || arg_i64(lenv, 0, (int64_t)blen, &len) ||
        (size_t)(off + len) > blen)
        return ARG_BAD;
    *p = data + boff + off;
    *n = (size_t)len;
    return ARG_OK;
}

static JSValue einval(JSContext *ctx)
{
    return JS_NewInt32(ctx, -EINVAL);
}

/* -EINVAL for ARG_BAD, the pending exception for ARG_EXC */
static JSValue arg_error(JSContext *ctx, int r)
{
    return r == ARG_EXC ? JS_EXCEPTION : einval(ctx);
}

/* A system call's result: r, or -err when r < 0 (err is errno read right after the call, before anything
   that might change it). */
static JSValue sys_result(JSContext *ctx, long r, int err)
{
    return r < 0 ? JS_NewInt32(ctx, -err) : JS_NewInt64(ctx, r);
}

/* Two paths, both or neither (on failure neither needs freeing). */
static int arg_paths(JSContext *ctx, JSValueConst v1, JSValueConst v2, const char **p1, const char **p2)
{
    int r = arg_path(ctx, v1, p1);
    if (r == ARG_OK && (r = arg_path(ctx, v2, p2)) != ARG_OK)
        JS_FreeCString(ctx, *p1);
    return r;
}

#define FN(name) static JSValue sys_##name(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)

/* ---- strings ---- */

/* Length of the valid UTF-8 sequence at p[0..n), or 0 if p[0] starts none (Go's rules: shortest form only,
   no surrogates, nothing above U+10FFFF). */
static int utf8_seq_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0; /* a continuation byte, or the lead of an overlong 2-byte form */
    if (c < 0xE0)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        lo = c == 0xE0 ? 0xA0 : lo; /* overlong */
        hi = c == 0xED ? 0x9F : hi; /* surrogates */
        return n >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c < 0xF5) {
        lo = c == 0xF0 ? 0x90 : lo; /* overlong */
        hi = c == 0xF4 ? 0x8F : hi; /* above U+10FFFF */
        return n >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* A JS string from bytes that should be UTF-8. JS_NewStringLen itself would skip whole runs of invalid
   bytes, so invalid input is first rewritten with one U+FFFD per offending byte. */
static JSValue new_string(JSContext *ctx, const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, j;
    int k;
    while (i < n && (k = utf8_seq_len(p + i, n - i)) > 0)
        i += k;
    if (i == n)
        return JS_NewStringLen(ctx, s, n);
    uint8_t *q = js_malloc(ctx, n * 3); /* worst case: every byte becomes EF BF BD */
    if (!q)
        return JS_EXCEPTION;
    memcpy(q, p, i);
    for (j = i; i < n;) {
        if ((k = utf8_seq_len(p + i, n - i)) > 0) {
            memcpy(q + j, p + i, k);
            i += k;
            j += k;
        } else {
            memcpy(q + j, "\xEF\xBF\xBD", 3);
            i++;
            j += 3;
        }
    }
    JSValue v = JS_NewStringLen(ctx, (const char *)q, j);
    js_free(ctx, q);
    return v;
}

FN(utf8Encode)
{
    const char *s;
    size_t len;
    int r = arg_utf8(ctx, argv[0], &s, &len);
    if (r != ARG_OK)
        return arg_error(ctx, r);
    JSValue ab = JS_NewArrayBufferCopy(ctx, (const uint8_t *)s, len);
    JS_FreeCString(ctx, s);
    if (JS_IsException(ab))
        return ab;
    JSValue u8 = JS_CallConstructor(ctx, g_uint8array, 1, (JSValueConst *)&ab);
    JS_FreeValue(ctx, ab);
    return u8;
}

FN(utf8Decode)
{
    uint8_t *p;
    size_t n;
    int r = arg_bytes(ctx, argv[0], argv[1], argv[2], &p, &n);
    return r != ARG_OK ? arg_error(ctx, r) : new_string(ctx, (const char *)p, n);
}

/* The index file's checksum (src/platform/checksum.ts computes the same): four FNV-1a lanes over 32-bit words
   read little-endian (so the value is the same on every machine), bytes after the last 16 into the first lane,
   the lanes and the length combined with MurmurHash3's finalizer. Independent lanes keep the loop at about one
   instruction per byte: this runs over the whole index (a megabyte at 60,000 leases) on every ADD. */
static uint32_t rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t checksum32(const uint8_t *p, size_t n)
{
    const uint32_t prime = 0x01000193;
    uint32_t h0 = 0x811c9dc5, h1 = 0x050c5d1f, h2 = 0x1b873593, h3 = 0xcc9e2d51;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        h0 = (h0 ^ le32(p + i)) * prime;
        h1 = (h1 ^ le32(p + i + 4)) * prime;
        h2 = (h2 ^ le32(p + i + 8)) * prime;
        h3 = (h3 ^ le32(p + i + 12)) * prime;
    }
    for (; i < n; i++)
        h0 = (h0 ^ p[i]) * prime;
    uint32_t h = h0 ^ rotl32(h1, 8) ^ rotl32(h2, 16) ^ rotl32(h3, 24) ^ (uint32_t)n;
    h = (h ^ (h >> 16)) * 0x85ebca6b;
    h = (h ^ (h >> 13)) * 0xc2b2ae35;
    return h ^ (h >> 16);
}

FN(hash32)
{
    uint8_t *p;
    size_t n;
    int r = arg_bytes(ctx, argv[0], argv[1], argv[2], &p, &n);
    return r != ARG_OK ? arg_error(ctx, r) : JS_NewUint32(ctx, checksum32(p, n));
}

/* ---- the node agent's socket ---- */

static double clock_ms(clockid_t id);

/* Waits until fd is ready for `events` or the deadline (CLOCK_MONOTONIC ms) passes: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - clock_ms(CLOCK_MONOTONIC);
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, left > 1e6 ? 1000000 : (int)left + 1);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

#define MAX_ANSWER (1 << 20)

/* One request on a unix stream socket, in bounded time:
   (path, request, timeoutMs) -> the answer (read until the first newline, or end of stream) as a string, or
   -errno: ENOENT/ECONNREFUSED (nobody listens), ETIMEDOUT (no whole answer in time), EMSGSIZE (an answer over
   1 MiB), ENAMETOOLONG (a path too long for sun_path). */
FN(unixRequest)
{
    const char *path = NULL, *req = NULL;
    size_t req_len;
    double timeout;
    int r, fd = -1;
    char *buf = NULL;
    size_t got = 0;
    JSValue ret;

    if (arg_double(argv[2], &timeout) || timeout < 0 || timeout > 1e9)
        return einval(ctx);
    if ((r = arg_path(ctx, argv[0], &path)) != ARG_OK)
        return arg_error(ctx, r);
    if ((r = arg_utf8(ctx, argv[1], &req, &req_len)) != ARG_OK) {
        JS_FreeCString(ctx, path);
        return arg_error(ctx, r);
    }
    double deadline = clock_ms(CLOCK_MONOTONIC) + timeout;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        r = -ENAMETOOLONG;
        goto out;
    }
    memcpy(sa.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (errno != EAGAIN && errno != EINPROGRESS) {
            r = -errno;
            goto out;
        }
        /* a full backlog: wait for the listener, then ask how the connect ended */
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if ((r = wait_fd(fd, POLLOUT, deadline)) < 0)
            goto out;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
            r = soerr ? -soerr : -errno;
            goto out;
        }
    }
    for (size_t sent = 0; sent < req_len;) {
        ssize_t n = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            if ((r = wait_fd(fd, POLLOUT, deadline)) < 0)
                goto out;
        } else if (n < 0 && errno != EINTR) {
            r = -errno;
            goto out;
        }
    }
    buf = js_malloc(ctx, MAX_ANSWER);
    if (!buf) {
        r = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (got == MAX_ANSWER) {
            r = -EMSGSIZE;
            goto out;
        }
        ssize_t n = recv(fd, buf + got, MAX_ANSWER - got, 0);
        if (n > 0) {
            char *nl = memchr(buf + got, '\n', (size_t)n);
            got += (size_t)n;
            if (nl) {
                got = (size_t)(nl - buf);
                break;
            }
        } else if (n == 0) {
            break; /* the end of the stream ends the answer */
        } else if (errno == EAGAIN) {
            if ((r = wait_fd(fd, POLLIN, deadline)) < 0)
                goto out;
        } else if (errno != EINTR) {
            r = -errno;
            goto out;
        }
    }
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    JS_FreeCString(ctx, path);
    JS_FreeCString(ctx, req);
    ret = r < 0 ? JS_NewInt32(ctx, r) : new_string(ctx, buf, got);
    js_free(ctx, buf);
    return ret;
}

/* ---- exclude lists ---- */

/* One entry of an exclude list as [from, to] when it is a plain IPv4 address ("10.0.0.5") or a CIDR without
   host bits ("10.0.0.64/27"); 0 for anything else. The same rules as plainV4Interval in
   src/net/exclusions.ts: octets as Go's ParseIP (no leading zeros), the mask as Go's ParseCIDR (1 to 8
   digits, leading zeros allowed). */
static int plain_v4_interval(const char *s, size_t len, uint32_t *from, uint32_t *to)
{
    uint32_t n = 0, part = 0, prefix = 0;
    int digits = 0, dots = 0;
    size_t i = 0;
    for (; i < len && s[i] != '/'; i++) {
        char c = s[i];
        if (c == '.') {
            if (digits == 0 || dots == 3)
                return 0;
            n = n << 8 | part;
            part = 0;
            digits = 0;
            dots++;
            continue;
        }
        if (c < '0' || c > '9' || (digits == 1 && part == 0))
            return 0;
        part = part * 10 + (uint32_t)(c - '0');
        if (++digits > 3 || part > 255)
            return 0;
    }
    if (dots != 3 || digits == 0)
        return 0;
    n = n << 8 | part;
    if (i == len) {
        *from = *to = n;
        return 1;
    }
    if (len - i - 1 < 1 || len - i - 1 > 8)
        return 0;
    for (i++; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        prefix = prefix * 10 + (uint32_t)(s[i] - '0'); /* at most 8 digits: no overflow */
    }
    if (prefix > 32)
        return 0;
    uint64_t size = (uint64_t)1 << (32 - prefix);
    if (n % size != 0)
        return 0;
    *from = n;
    *to = (uint32_t)(n + size - 1);
    return 1;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* v4Intervals(list): the plain IPv4 entries of an array (see plain_v4_interval) sorted by start and merged
   where they overlap or touch, and the indices of all other entries, which the caller parses itself (80,000
   entries take 150 ms in interpreted JS, a few here). Returns a Uint8Array of 32-bit words in this machine's
   byte order: the number of intervals m, their 2m bounds (from, to, ...), then the indices; -EINVAL when
   list is not an array. v4IntervalsOf in src/net/exclusions.ts is the reference. */
FN(v4Intervals)
{
    JSValueConst list = argv[0];
    int64_t len;
    if (JS_IsArray(ctx, list) != 1)
        return einval(ctx);
    JSValue lenv = JS_GetPropertyStr(ctx, list, "length");
    int r = arg_i64(lenv, 0, UINT32_MAX, &len);
    JS_FreeValue(ctx, lenv);
    if (r != ARG_OK)
        return einval(ctx);

    /* intervals as from << 32 | to, so sorting the words sorts by start (+1: never a 0-byte allocation) */
    uint64_t *ivs = js_malloc(ctx, (size_t)len * sizeof *ivs + 1);
    uint32_t *skipped = js_malloc(ctx, (size_t)len * sizeof *skipped + 1), *words = NULL;
    size_t count = 0, nskipped = 0, m = 0;
    JSValue ret = JS_EXCEPTION;
    if (!ivs || !skipped)
        goto out;
    for (uint32_t i = 0; i < (uint64_t)len; i++) {
        JSValue v = JS_GetPropertyUint32(ctx, list, i);
        if (JS_IsException(v))
            goto out;
        uint32_t from, to;
        int plain = 0;
        if (JS_IsString(v)) {
            size_t slen;
            const char *str = JS_ToCStringLen(ctx, &slen, v);
            if (!str) {
                JS_FreeValue(ctx, v);
                goto out;
            }
            plain = plain_v4_interval(str, slen, &from, &to);
            JS_FreeCString(ctx, str);
        }
        JS_FreeValue(ctx, v);
        if (plain)
            ivs[count++] = (uint64_t)from << 32 | to;
        else
            skipped[nskipped++] = i;
    }
    qsort(ivs, count, sizeof *ivs, compare_u64);
    /* words: m, then from and to of each merged interval (at most count of them), then the skipped indices */
    words = js_malloc(ctx, (1 + 2 * count + nskipped) * sizeof *words);
    if (!words)
        goto out;
    for (size_t k = 0; k < count; k++) {
        uint32_t from = (uint32_t)(ivs[k] >> 32), to = (uint32_t)ivs[k];
        if (m > 0 && (uint64_t)from <= (uint64_t)words[2 * m] + 1) {
            if (to > words[2 * m])
                words[2 * m] = to; /* the last interval's end */
        } else {
            words[1 + 2 * m] = from;
            words[2 + 2 * m] = to;
            m++;
        }
    }
    words[0] = (uint32_t)m;
    memcpy(words + 1 + 2 * m, skipped, nskipped * sizeof *words);
    JSValue ab = JS_NewArrayBufferCopy(ctx, (const uint8_t *)words, (1 + 2 * m + nskipped) * sizeof *words);
    if (!JS_IsException(ab)) {
        ret = JS_CallConstructor(ctx, g_uint8array, 1, (JSValueConst *)&ab);
        JS_FreeValue(ctx, ab);
    }
out:
    js_free(ctx, ivs);
    js_free(ctx, skipped);
    js_free(ctx, words);
    return ret;
}

/* ---- files ---- */

FN(openat)
{
    int dirfd, flags, mode, r;
    const char *path;
    if (arg_int(argv[0], &dirfd) || arg_int(argv[2], &flags) || arg_int(argv[3], &mode))
        return einval(ctx);
    if ((r = arg_path(ctx, argv[1], &path)) != ARG_OK)
        return arg_error(ctx, r);
    long fd = openat(dirfd, path, flags, (mode_t)mode);
    int err = errno;
    JS_FreeCString(ctx, path);
    return sys_result(ctx, fd, err);
}

FN(close)
{
    int fd;
    if (arg_int(argv[0], &fd))
        return einval(ctx);
    long r = close(fd); /* Linux frees the descriptor even when close fails with EINTR: never retry */
    return sys_result(ctx, r, errno);
}

FN(read)
{
    int fd, r;
    uint8_t *p;
    size_t n;
    if (arg_int(argv[0], &fd))
        return einval(ctx);
    if ((r = arg_bytes(ctx, argv[1], argv[2], argv[3], &p, &n)) != ARG_OK)
        return arg_error(ctx, r);
    long got = read(fd, p, n);
    return sys_result(ctx, got, errno);
}

FN(write)
{
    int fd, r;
    uint8_t *p;
    size_t n;
    if (arg_int(argv[0], &fd))
        return einval(ctx);
    if ((r = arg_bytes(ctx, argv[1], argv[2], argv[3], &p, &n)) != ARG_OK)
        return arg_error(ctx, r);
    long put = write(fd, p, n);
    return sys_result(ctx, put, errno);
}

FN(fsync)
{
    int fd;
    if (arg_int(argv[0], &fd))
        return einval(ctx);
    long r = fsync(fd);
    return sys_result(ctx, r, errno);
}

/* [dev, ino, mode, nlink, uid, gid, size, mtimeSec, mtimeNsec]; dev and ino as decimal strings (64 bits). */
/* [dev, ino, mode, nlink, uid, gid, size, mtimeSec, mtimeNsec]; dev and ino as BigInt (64-bit values) */
static JSValue stat_array(JSContext *ctx, const struct stat *st)
{
    JSValue items[9] = {
        JS_NewBigUint64(ctx, (uint64_t)st->st_dev), JS_NewBigUint64(ctx, (uint64_t)st->st_ino),
        JS_NewUint32(ctx, st->st_mode),
        JS_NewInt64(ctx, (int64_t)st->st_nlink), JS_NewUint32(ctx, st->st_uid), JS_NewUint32(ctx, st->st_gid),
        JS_NewInt64(ctx, (int64_t)st->st_size), JS_NewInt64(ctx, (int64_t)st->st_mtim.tv_sec),
        JS_NewInt64(ctx, (int64_t)st->st_mtim.tv_nsec),
    };
    JSValue a = JS_NewArray(ctx);
    uint32_t i = 0;
    if (!JS_IsException(a)) {
        /* JS_SetPropertyUint32 takes the value, even when it fails */
        while (i < 9 && !JS_IsException(items[i]) && JS_SetPropertyUint32(ctx, a, i, items[i]) >= 0)
            i++;
        if (i == 9)
            return a;
        if (!JS_IsException(items[i]))
            i++; /* the one the failed set took */
    }
    for (; i < 9; i++)
        JS_FreeValue(ctx, items[i]); /* freeing JS_EXCEPTION is a no-op */
    JS_FreeValue(ctx, a);
    return JS_EXCEPTION;
}

FN(fstat)
{
    int fd;
    struct stat st;
    if (arg_int(argv[0], &fd))
        return einval(ctx);
    return fstat(fd, &st) < 0 ? JS_NewInt32(ctx, -errno) : stat_array(ctx, &st);
}

FN(fstatat)
{
    int dirfd, flags, r, err;
    const char *path;
    struct stat st;
    if (arg_int(argv[0], &dirfd) || arg_int(argv[2], &flags))
        return einval(ctx);
    if ((r = arg_path(ctx, argv[1], &path)) != ARG_OK)
        return arg_error(ctx, r);
    r = fstatat(dirfd, path, &st, flags);
    err = errno;
    JS_FreeCString(ctx, path);
    return r < 0 ? JS_NewInt32(ctx, -err) : stat_array(ctx, &st);
}

FN(linkat)
{
    int olddirfd, newdirfd, flags, r;
    const char *oldpath, *newpath;
    if (arg_int(argv[0], &olddirfd) || arg_int(argv[2], &newdirfd) || arg_int(argv[4], &flags))
        return einval(ctx);
    if ((r = arg_paths(ctx, argv[1], argv[3], &oldpath, &newpath)) != ARG_OK)
        return arg_error(ctx, r);
    r = linkat(olddirfd, oldpath, newdirfd, newpath, flags);
    int err = errno;
    JS_FreeCString(ctx, oldpath);
    JS_FreeCString(ctx, newpath);
    return sys_result(ctx, r, err);
}

FN(renameat)
{
    int olddirfd, newdirfd, r;
    const char *oldpath, *newpath;
    if (arg_int(argv[0], &olddirfd) || arg_int(argv[2], &newdirfd))
        return einval(ctx);
    if ((r = arg_paths(ctx, argv[1], argv[3], &oldpath, &newpath)) != ARG_OK)
        return arg_error(ctx, r);
    r = renameat(olddirfd, oldpath, newdirfd, newpath);
    int err = errno;
    JS_FreeCString(ctx, oldpath);
    JS_FreeCString(ctx, newpath);
    return sys_result(ctx, r, err);
}

FN(unlinkat)
{
    int dirfd, flags, r;
    const char *path;
    if (arg_int(argv[0], &dirfd) || arg_int(argv[2], &flags))
        return einval(ctx);
    if ((r = arg_path(ctx, argv[1], &path)) != ARG_OK)
        return arg_error(ctx, r);
    r = unlinkat(dirfd, path, flags);
    int err = errno;
    JS_FreeCString(ctx, path);
    return sys_result(ctx, r, err);
}

FN(mkdirat)
{
    int dirfd, mode, r;
    const char *path;
    if (arg_int(argv[0], &dirfd) || arg_int(argv[2], &mode))
        return einval(ctx);
    if ((r = arg_path(ctx, argv[1], &path)) != ARG_OK)
        return arg_error(ctx, r);
    r = mkdirat(dirfd, path, (mode_t)mode);
    int err = errno;
    JS_FreeCString(ctx, path);
    return sys_result(ctx, r, err);
}

/* Names in the directory open at dirfd. Reads through a fresh open of "." so that dirfd's own offset is
   untouched (a dup() would share it) and dirfd stays open. */
FN(readdir)
{
    int dirfd, fd, err = 0;
    uint32_t i = 0;
    DIR *d;
    if (arg_int(argv[0], &dirfd))
        return einval(ctx);
    if ((fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return JS_NewInt32(ctx, -errno);
    if (!(d = fdopendir(fd))) {
        err = errno;
        close(fd);
        return JS_NewInt32(ctx, -err);
    }
    JSValue ret = JS_NewArray(ctx);
    while (!JS_IsException(ret)) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            err = errno; /* 0 at the end of the directory */
            break;
        }
        const char *name = de->d_name;
        if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
            continue;
        JSValue s = new_string(ctx, name, strlen(name));
        if (JS_IsException(s) || JS_SetPropertyUint32(ctx, ret, i++, s) < 0) {
            JS_FreeValue(ctx, ret);
            ret = JS_EXCEPTION;
        }
    }
    closedir(d);
    if (err && !JS_IsException(ret)) {
        JS_FreeValue(ctx, ret);
        ret = JS_NewInt32(ctx, -err);
    }
    return ret;
}

FN(futimens)
{
    int fd;
    int64_t as, ans, ms, mns;
    const int64_t lim = (int64_t)1 << 53; /* seconds as exact JS integers; the kernel range-checks the ns */
    if (arg_int(argv[0], &fd) || arg_i64(argv[1], -lim, lim, &as) || arg_i64(argv[2], INT32_MIN, INT32_MAX, &ans) ||
        arg_i64(argv[3], -lim, lim, &ms) || arg_i64(argv[4], INT32_MIN, INT32_MAX, &mns))
        return einval(ctx);
    struct timespec ts[2] = {{(time_t)as, (long)ans}, {(time_t)ms, (long)mns}};
    long r = futimens(fd, ts);
    return sys_result(ctx, r, errno);
}

FN(fchmod)
{
    int fd, mode;
    if (arg_int(argv[0], &fd) || arg_int(argv[1], &mode))
        return einval(ctx);
    long r = fchmod(fd, (mode_t)mode);
    return sys_result(ctx, r, errno);
}

/* ---- locks, time, processes ---- */

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts); /* cannot fail for these clocks */
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static struct timeval ms_to_timeval(double ms)
{
    int64_t us = (int64_t)ceil(ms * 1e3);
    if (us < 1)
        us = 1; /* an it_value of zero would disarm the timer instead */
    return (struct timeval){us / 1000000, us % 1000000};
}

static void on_alarm(int sig)
{
    (void)sig; /* only there to make a blocked flock() return EINTR */
}

static int flock_retry(int fd, int op)
{
    int r;
    while ((r = flock(fd, op)) < 0 && errno == EINTR)
        ;
    return r < 0 ? -errno : 0;
}

/* flock() that waits at most timeout_ms: a SIGALRM handler installed without SA_RESTART interrupts the
   blocking call. The timer repeats every 10 ms after its first expiry: a signal that lands between the
   deadline check and flock() entering the kernel would otherwise be lost and flock() would block forever. */
static int flock_timed(int fd, int op, double timeout_ms)
{
    struct sigaction sa, old_sa;
    struct itimerval it, old_it;
    sigset_t set, old_set;
    int err = 0, armed = 0;
    double deadline = clock_ms(CLOCK_MONOTONIC) + timeout_ms;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, &old_sa) < 0)
        return -errno;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_UNBLOCK, &set, &old_set);
    for (;;) {
        double left = deadline - clock_ms(CLOCK_MONOTONIC);
        if (left <= 0) {
            err = ETIMEDOUT;
            break;
        }
        it.it_value = ms_to_timeval(left);
        it.it_interval = ms_to_timeval(10);
        if (setitimer(ITIMER_REAL, &it, armed ? NULL : &old_it) < 0) {
            err = errno;
            break;
        }
        armed = 1;
        if (flock(fd, op) == 0)
            break;
        if (errno != EINTR) {
            err = errno;
            break;
        }
    }
    /* Disarm (restoring whatever timer was there). A SIGALRM raised before this is delivered, to our
       handler, on the return from setitimer: the default action (terminate) is only restored after it. */
    if (armed)
        setitimer(ITIMER_REAL, &old_it, NULL);
    sigprocmask(SIG_SETMASK, &old_set, NULL);
    sigaction(SIGALRM, &old_sa, NULL);
    return -err;
}

FN(flock)
{
    int fd, op, r;
    double timeout;
    if (arg_int(argv[0], &fd) || arg_int(argv[1], &op) || arg_double(argv[2], &timeout))
        return einval(ctx);
    if ((op & LOCK_UN) || timeout < 0) {
        r = flock_retry(fd, op); /* unlocking never waits */
    } else {
        r = flock_retry(fd, op | LOCK_NB);
        if (r == -EWOULDBLOCK && timeout > 0)
            r = flock_timed(fd, op, timeout);
    }
    return JS_NewInt32(ctx, r);
}

FN(getrandom)
{
    uint8_t *p;
    size_t n;
    int r = arg_bytes(ctx, argv[0], argv[1], argv[2], &p, &n);
    if (r != ARG_OK)
        return arg_error(ctx, r);
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0); /* may return less than asked, or EINTR, for large requests */
        if (got < 0 && errno != EINTR)
            return JS_NewInt32(ctx, -errno);
        if (got > 0) {
            p += got;
            n -= (size_t)got;
        }
    }
    return JS_NewInt32(ctx, 0);
}

FN(geteuid)
{
    return JS_NewUint32(ctx, geteuid());
}

FN(getpid)
{
    return JS_NewInt32(ctx, getpid());
}

FN(killSelf)
{
    int sig;
    if (arg_int(argv[0], &sig))
        return einval(ctx);
    long r = kill(getpid(), sig);
    return sys_result(ctx, r, errno);
}

FN(realtimeMs)
{
    return JS_NewFloat64(ctx, clock_ms(CLOCK_REALTIME));
}

FN(monotonicMs)
{
    return JS_NewFloat64(ctx, clock_ms(CLOCK_MONOTONIC));
}

FN(sleepMs)
{
    double ms;
    if (arg_double(argv[0], &ms) || ms < 0 || ms > 1e12) /* 1e12 ms: 31 years, far inside time_t */
        return einval(ctx);
    struct timespec req = {(time_t)(ms / 1e3), 0}, rem;
    req.tv_nsec = (long)((ms - (double)req.tv_sec * 1e3) * 1e6);
    if (req.tv_nsec > 999999999)
        req.tv_nsec = 999999999;
    while (nanosleep(&req, &rem) < 0 && errno == EINTR)
        req = rem;
    return JS_NewInt32(ctx, 0);
}

/* The environment as an object without a prototype, so that names such as "__proto__" or "constructor"
   are plain keys. A name given twice keeps its first value, as Go's os.Getenv does. */
FN(env)
{
    JSValue obj = JS_NewObjectProto(ctx, JS_NULL);
    for (char **e = environ; e && *e && !JS_IsException(obj); e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        JSValue key = new_string(ctx, *e, (size_t)(eq - *e));
        JSAtom atom = JS_IsException(key) ? JS_ATOM_NULL : JS_ValueToAtom(ctx, key);
        JS_FreeValue(ctx, key);
        int has = atom == JS_ATOM_NULL ? -1 : JS_HasProperty(ctx, obj, atom);
        if (has == 0) {
            JSValue val = new_string(ctx, eq + 1, strlen(eq + 1));
            /* define, not set: a key named __proto__ must not change the prototype (frees val) */
            if (JS_IsException(val) || JS_DefinePropertyValue(ctx, obj, atom, val, JS_PROP_C_W_E) < 0)
                has = -1;
        }
        if (atom != JS_ATOM_NULL)
            JS_FreeAtom(ctx, atom);
        if (has < 0) {
            JS_FreeValue(ctx, obj);
            obj = JS_EXCEPTION;
        }
    }
    return obj;
}

FN(argv)
{
    JSValue a = JS_NewArray(ctx);
    for (int i = 0; i < g_argc && !JS_IsException(a); i++) {
        JSValue s = new_string(ctx, g_argv[i], strlen(g_argv[i]));
        if (JS_IsException(s) || JS_SetPropertyUint32(ctx, a, (uint32_t)i, s) < 0) {
            JS_FreeValue(ctx, a);
            a = JS_EXCEPTION;
        }
    }
    return a;
}

FN(exit)
{
    int status = 1; /* a bad argument still ends the process, as failure */
    arg_int(argv[0], &status);
#ifdef LOCAL_IPAM_SANITIZE
    exit(status); /* runs LeakSanitizer; the runtime is still referenced from host.c's globals: no "leak" */
#else
    _exit(status);
#endif
}

/* ---- installation ---- */

static const JSCFunctionListEntry sys_funcs[] = {
    JS_CFUNC_DEF("openat", 4, sys_openat),
    JS_CFUNC_DEF("close", 1, sys_close),
    JS_CFUNC_DEF("read", 4, sys_read),
    JS_CFUNC_DEF("write", 4, sys_write),
    JS_CFUNC_DEF("fsync", 1, sys_fsync),
    JS_CFUNC_DEF("fstat", 1, sys_fstat),
    JS_CFUNC_DEF("fstatat", 3, sys_fstatat),
    JS_CFUNC_DEF("linkat", 5, sys_linkat),
    JS_CFUNC_DEF("renameat", 4, sys_renameat),
    JS_CFUNC_DEF("unlinkat", 3, sys_unlinkat),
    JS_CFUNC_DEF("mkdirat", 3, sys_mkdirat),
    JS_CFUNC_DEF("readdir", 1, sys_readdir),
    JS_CFUNC_DEF("futimens", 5, sys_futimens),
    JS_CFUNC_DEF("fchmod", 2, sys_fchmod),
    JS_CFUNC_DEF("flock", 3, sys_flock),
    JS_CFUNC_DEF("getrandom", 3, sys_getrandom),
    JS_CFUNC_DEF("geteuid", 0, sys_geteuid),
    JS_CFUNC_DEF("getpid", 0, sys_getpid),
    JS_CFUNC_DEF("killSelf", 1, sys_killSelf),
    JS_CFUNC_DEF("realtimeMs", 0, sys_realtimeMs),
    JS_CFUNC_DEF("monotonicMs", 0, sys_monotonicMs),
    JS_CFUNC_DEF("sleepMs", 1, sys_sleepMs),
    JS_CFUNC_DEF("env", 0, sys_env),
    JS_CFUNC_DEF("argv", 0, sys_argv),
    JS_CFUNC_DEF("exit", 1, sys_exit),
    JS_CFUNC_DEF("utf8Encode", 1, sys_utf8Encode),
    JS_CFUNC_DEF("utf8Decode", 3, sys_utf8Decode),
    JS_CFUNC_DEF("hash32", 3, sys_hash32),
    JS_CFUNC_DEF("v4Intervals", 1, sys_v4Intervals),
    JS_CFUNC_DEF("unixRequest", 3, sys_unixRequest),
};

#define K(name) {#name, name}
static const struct {
    const char *name;
    int value;
} sys_constants[] = {
    K(O_RDONLY), K(O_WRONLY), K(O_RDWR), K(O_CREAT), K(O_EXCL), K(O_TRUNC), K(O_APPEND), K(O_NOFOLLOW),
    K(O_NONBLOCK), K(O_DIRECTORY), K(O_CLOEXEC), K(O_TMPFILE), K(AT_FDCWD), K(AT_EMPTY_PATH),
    K(AT_SYMLINK_NOFOLLOW), K(AT_SYMLINK_FOLLOW), K(AT_REMOVEDIR), K(LOCK_EX), K(LOCK_NB), K(LOCK_UN),
    K(S_IFMT), K(S_IFREG), K(S_IFDIR), K(S_IFLNK), K(SIGKILL), K(SIGTERM),
}, sys_errnos[] = {
    /* every errno of Linux 1..133, by the target libc's own numbers; EWOULDBLOCK, EDEADLOCK and ENOTSUP
       are aliases of EAGAIN, EDEADLK and EOPNOTSUPP */
    K(EPERM), K(ENOENT), K(ESRCH), K(EINTR), K(EIO), K(ENXIO), K(E2BIG), K(ENOEXEC), K(EBADF), K(ECHILD),
    K(EAGAIN), K(EWOULDBLOCK), K(ENOMEM), K(EACCES), K(EFAULT), K(ENOTBLK), K(EBUSY), K(EEXIST), K(EXDEV),
    K(ENODEV), K(ENOTDIR), K(EISDIR), K(EINVAL), K(ENFILE), K(EMFILE), K(ENOTTY), K(ETXTBSY), K(EFBIG),
    K(ENOSPC), K(ESPIPE), K(EROFS), K(EMLINK), K(EPIPE), K(EDOM), K(ERANGE), K(EDEADLK), K(EDEADLOCK),
    K(ENAMETOOLONG), K(ENOLCK), K(ENOSYS), K(ENOTEMPTY), K(ELOOP), K(ENOMSG), K(EIDRM), K(ECHRNG),
    K(EL2NSYNC), K(EL3HLT), K(EL3RST), K(ELNRNG), K(EUNATCH), K(ENOCSI), K(EL2HLT), K(EBADE), K(EBADR),
    K(EXFULL), K(ENOANO), K(EBADRQC), K(EBADSLT), K(EBFONT), K(ENOSTR), K(ENODATA), K(ETIME), K(ENOSR),
    K(ENONET), K(ENOPKG), K(EREMOTE), K(ENOLINK), K(EADV), K(ESRMNT), K(ECOMM), K(EPROTO), K(EMULTIHOP),
    K(EDOTDOT), K(EBADMSG), K(EOVERFLOW), K(ENOTUNIQ), K(EBADFD), K(EREMCHG), K(ELIBACC), K(ELIBBAD),
    K(ELIBSCN), K(ELIBMAX), K(ELIBEXEC), K(EILSEQ), K(ERESTART), K(ESTRPIPE), K(EUSERS), K(ENOTSOCK),
    K(EDESTADDRREQ), K(EMSGSIZE), K(EPROTOTYPE), K(ENOPROTOOPT), K(EPROTONOSUPPORT), K(ESOCKTNOSUPPORT),
    K(EOPNOTSUPP), K(ENOTSUP), K(EPFNOSUPPORT), K(EAFNOSUPPORT), K(EADDRINUSE), K(EADDRNOTAVAIL),
    K(ENETDOWN), K(ENETUNREACH), K(ENETRESET), K(ECONNABORTED), K(ECONNRESET), K(ENOBUFS), K(EISCONN),
    K(ENOTCONN), K(ESHUTDOWN), K(ETOOMANYREFS), K(ETIMEDOUT), K(ECONNREFUSED), K(EHOSTDOWN),
    K(EHOSTUNREACH), K(EALREADY), K(EINPROGRESS), K(ESTALE), K(EUCLEAN), K(ENOTNAM), K(ENAVAIL), K(EISNAM),
    K(EREMOTEIO), K(EDQUOT), K(ENOMEDIUM), K(EMEDIUMTYPE), K(ECANCELED), K(ENOKEY), K(EKEYEXPIRED),
    K(EKEYREVOKED), K(EKEYREJECTED), K(EOWNERDEAD), K(ENOTRECOVERABLE), K(ERFKILL), K(EHWPOISON),
};

/* Defines obj[name] = value, read-only; takes ownership of value. */
static int define_const(JSContext *ctx, JSValueConst obj, const char *name, JSValue value)
{
    return JS_DefinePropertyValueStr(ctx, obj, name, value, JS_PROP_ENUMERABLE | JS_PROP_THROW);
}

/* errnos(): every errno name -> the target's number, built on demand (the plugin itself needs none of it:
   Linux numbers are the same on x86-64 and arm64; the smoke test checks that). */
static JSValue sys_errnos_fn(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    JSValue errnos = JS_NewObject(ctx);
    if (JS_IsException(errnos))
        return errnos;
    for (size_t i = 0; i < sizeof sys_errnos / sizeof sys_errnos[0]; i++)
        if (define_const(ctx, errnos, sys_errnos[i].name, JS_NewInt32(ctx, sys_errnos[i].value)) < 0) {
            JS_FreeValue(ctx, errnos);
            return JS_EXCEPTION;
        }
    return errnos;
}

static const JSCFunctionListEntry sys_more_funcs[] = {
    JS_CFUNC_DEF("errnos", 0, sys_errnos_fn),
};

#if defined(__x86_64__)
#define ARCH "x86_64"
#elif defined(__aarch64__)
#define ARCH "arm64"
#else
#error "local-ipam is built for x86_64 and arm64"
#endif

/* Installs globalThis.__sys; 0 on success, -1 with an exception pending. */
int sys_install(JSContext *ctx, int argc, char **argv)
{
    JSValue global = JS_GetGlobalObject(ctx), sys = JS_UNDEFINED, consts = JS_UNDEFINED;
    int ret = -1;
    size_t i;

    g_argc = argc;
    g_argv = argv;
    g_uint8array = JS_GetPropertyStr(ctx, global, "Uint8Array");
    if (!JS_IsFunction(ctx, g_uint8array))
        goto out;
    sys = JS_NewObject(ctx);
    consts = JS_NewObject(ctx);
    if (JS_IsException(sys) || JS_IsException(consts))
        goto out;
    JS_SetPropertyFunctionList(ctx, sys, sys_funcs, sizeof sys_funcs / sizeof sys_funcs[0]);
    JS_SetPropertyFunctionList(ctx, sys, sys_more_funcs, sizeof sys_more_funcs / sizeof sys_more_funcs[0]);
    for (i = 0; i < sizeof sys_constants / sizeof sys_constants[0]; i++)
        if (define_const(ctx, consts, sys_constants[i].name, JS_NewInt32(ctx, sys_constants[i].value)) < 0)
            goto out;
    JSValue arch = JS_NewString(ctx, ARCH);
    if (JS_IsException(arch) || define_const(ctx, consts, "arch", arch) < 0)
        goto out;
    ret = define_const(ctx, sys, "constants", consts);
    consts = JS_UNDEFINED;
    if (ret < 0)
        goto out;
    ret = JS_DefinePropertyValueStr(ctx, global, "__sys", sys, JS_PROP_CONFIGURABLE | JS_PROP_THROW);
    sys = JS_UNDEFINED;
out:
    JS_FreeValue(ctx, consts);
    JS_FreeValue(ctx, sys);
    JS_FreeValue(ctx, global);
    return ret < 0 ? -1 : 0;
}

/* Drops what sys_install kept, before the context is freed (sanitizer builds free everything). */
void sys_release(JSContext *ctx)
{
    JS_FreeValue(ctx, g_uint8array);
    g_uint8array = JS_UNDEFINED;
}
