/*
 * The executable: a QuickJS runtime that runs the bytecode of one bundled script with `__sys` (module.c) as its
 * only way to the system. The binary embeds several scripts (build.sh compiles each with qjsc and lists them in
 * blobs.c): the plugin, the operator CLI, and libraries loaded on first use (`__sys.load("ipaddr")`). Only what
 * a run needs is read: a CNI ADD never deserializes the CLI's bytecode, nor ipaddr.js unless it meets IPv6.
 *
 * Exit status: what the script passed to __sys.exit(); else the number it left in globalThis.__exitStatus
 * (0 when unset) once the script has run. An exception nothing caught prints "local-ipam: internal error:
 * <message>" on stderr and exits 1. (There are no promises: the context has no Promise, so no jobs to run.)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "quickjs.h"

struct blob {
    const char *name;
    const uint8_t *code;
    const uint32_t *size;
};
extern const struct blob local_ipam_blobs[]; /* the plugin first; a NULL name ends the list (blobs.c) */
int sys_install(JSContext *ctx, int argc, char **argv);
JSRuntime *new_runtime(void); /* alloc.c */
void sys_release(JSContext *ctx);

#define MEMORY_LIMIT ((size_t)256 << 20)
/* A run allocates a few MiB at most; collecting cycles before that is wasted time (the limit still holds). */
#define GC_THRESHOLD ((size_t)16 << 20)
#define JS_STACK_MAX ((size_t)2 << 20)

/* Globals rather than locals of main() so that LeakSanitizer, in sanitizer builds, sees them as reachable
   when __sys.exit() ends the process from inside a call. */
static JSRuntime *rt;
static JSContext *ctx;

/* One line, whatever the message holds: control characters (a newline from the input, say) become spaces. */
static void print_error(JSValueConst err)
{
    /* the engine throws null when it cannot even allocate the "out of memory" error */
    const char *s = JS_IsNull(err) ? NULL : JS_ToCString(ctx, err); /* "TypeError: message" for errors */
    if (!s && !JS_IsNull(err))
        JS_FreeValue(ctx, JS_GetException(ctx)); /* toString threw, or out of memory */
    fputs("local-ipam: internal error: ", stderr);
    for (const char *p = s ? s : JS_IsNull(err) ? "out of memory" : "(an exception that cannot be printed)"; *p; p++)
        fputc((unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p, stderr);
    fputc('\n', stderr);
    JS_FreeCString(ctx, s);
}

static void print_exception(void)
{
    JSValue err = JS_GetException(ctx);
    print_error(err);
    JS_FreeValue(ctx, err);
}

static int finish(int status)
{
#ifdef LOCAL_IPAM_SANITIZE
    /* free everything, so that the engine's own leak check (an assert in JS_FreeRuntime) and LeakSanitizer
       catch a reference counting mistake in module.c */
    sys_release(ctx);
    JS_FreeContext(ctx);
    JS_FreeRuntime(rt);
    exit(status);
#else
    _exit(status); /* nothing buffered to flush: output goes through write(2); freeing the heap is wasted time */
#endif
}

static const struct blob *find_blob(const char *name)
{
    for (const struct blob *b = local_ipam_blobs; b->name; b++)
        if (strcmp(b->name, name) == 0)
            return b;
    return NULL;
}

/* Reads and runs one embedded script; -1 with an exception pending on failure. */
static int run_blob(const struct blob *b)
{
    JSValue fn = JS_ReadObject(ctx, b->code, *b->size, JS_READ_OBJ_BYTECODE);
    if (JS_IsException(fn))
        return -1;
    JSValue val = JS_EvalFunction(ctx, fn); /* takes fn */
    if (JS_IsException(val))
        return -1;
    JS_FreeValue(ctx, val);
    return 0;
}

/* __sys.load(name): runs the embedded library `name` (which defines its globals); false when there is none.
   The caller loads each library once. */
static JSValue sys_load(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    if (argc < 1 || !JS_IsString(argv[0]))
        return JS_FALSE;
    const char *name = JS_ToCString(c, argv[0]);
    if (!name)
        return JS_EXCEPTION;
    const struct blob *b = find_blob(name);
    JS_FreeCString(c, name);
    if (!b || b == local_ipam_blobs)
        return JS_FALSE;
    return run_blob(b) < 0 ? JS_EXCEPTION : JS_TRUE;
}

static int install_load(void)
{
    JSValue global = JS_GetGlobalObject(ctx);
    JSValue sys = JS_GetPropertyStr(ctx, global, "__sys");
    JS_FreeValue(ctx, global);
    if (JS_IsException(sys))
        return -1;
    JSValue fn = JS_NewCFunction(ctx, sys_load, "load", 1);
    int r = JS_IsException(fn) ? -1 : JS_SetPropertyStr(ctx, sys, "load", fn); /* takes fn, also on failure */
    JS_FreeValue(ctx, sys);
    return r < 0 ? -1 : 0;
}

/* Makes sure file descriptors 0, 1 and 2 are open before anything else is: with stdout closed, the first file
   the plugin opens would get descriptor 1, and its result would be written into that file. A closed one is
   opened on /dev/null. SIGPIPE is ignored, so that a reader that went away is an EPIPE from write(), which the
   code treats as "nobody listens", not a death of the process halfway through. */
static int sane_stdio(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int opened = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (opened != fd) /* the lowest free descriptor: fd itself, or something is badly wrong */
            return -1;
    }
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    return sigemptyset(&ignore.sa_mask) == 0 && sigaction(SIGPIPE, &ignore, NULL) == 0 ? 0 : -1;
}

/* The limit for JS recursion: deep enough for any real call chain, well inside the real stack so that a
   runaway recursion (or a deeply nested JSON.parse) is a catchable RangeError, not a SIGSEGV. The C frames
   that run between two checks of the engine need the rest. */
static size_t js_stack_limit(void)
{
    struct rlimit rl;
    size_t limit = JS_STACK_MAX;
    if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < limit)
        limit = rl.rlim_cur / 2;
    return limit;
}

int main(int argc, char **argv)
{
    JSValue val;
    int status = 0;
    if (sane_stdio() < 0) {
        fputs("local-ipam: internal error: cannot set up standard streams\n", stderr);
        return 1;
    }
    /* run with arguments and without CNI_COMMAND, the binary is the operator CLI */
    const char *command = getenv("CNI_COMMAND");
    const struct blob *main_blob = argc > 1 && (!command || !*command) ? find_blob("cli") : NULL;
    if (!main_blob)
        main_blob = &local_ipam_blobs[0];

    rt = new_runtime();
    if (!rt) {
        fputs("local-ipam: internal error: cannot create the JavaScript runtime\n", stderr);
        return 1;
    }
    JS_SetMemoryLimit(rt, MEMORY_LIMIT);
    JS_SetGCThreshold(rt, GC_THRESHOLD);
    JS_SetMaxStackSize(rt, js_stack_limit()); /* measured from here, main()'s frame */

    /* Every standard built-in except eval and Function(string): the program is compiled ahead of time and
       never needs to compile text at run time, so input can never become code. */
    ctx = JS_NewContextRaw(rt);
    if (!ctx) {
        fputs("local-ipam: internal error: cannot create the JavaScript context\n", stderr);
        return 1;
    }
    /* what the code uses, no more (no Proxy, no Promise, no String.prototype.normalize): less to set up at
       every start, and less engine surface */
    JS_AddIntrinsicBaseObjects(ctx);
    JS_AddIntrinsicDate(ctx);
    JS_AddIntrinsicRegExp(ctx);
    JS_AddIntrinsicJSON(ctx);
    JS_AddIntrinsicMapSet(ctx);
    JS_AddIntrinsicTypedArrays(ctx);
    JS_AddIntrinsicBigInt(ctx);

    if (sys_install(ctx, argc, argv) < 0 || install_load() < 0 || run_blob(main_blob) < 0) {
        print_exception();
        return finish(1);
    }

    JSValue global = JS_GetGlobalObject(ctx);
    val = JS_GetPropertyStr(ctx, global, "__exitStatus");
    JS_FreeValue(ctx, global);
    if (JS_IsException(val)) {
        print_exception();
        return finish(1);
    }
    if (JS_IsNumber(val)) {
        JS_ToInt32(ctx, &status, val); /* a number converts without running code */
    } else if (!JS_IsUndefined(val)) {
        fputs("local-ipam: internal error: __exitStatus is not a number\n", stderr);
        status = 1;
    }
    JS_FreeValue(ctx, val);
    return finish(status);
}
