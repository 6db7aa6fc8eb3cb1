/*
 * The benchmark's timing driver: spawns and times the measured processes itself, so that nothing else of the
 * benchmark (Node, a shell) runs while they do. bench/run.ts writes a plan, runs this once, and reads its output.
 *
 * Plan (one directive per line, arguments separated by single spaces, no quoting):
 *   group <runs> <warmup>        the benchmarks up to `end` run interleaved: each round runs each of them once
 *   bench <name>                 a benchmark of the group
 *   env <KEY=VALUE>              environment of the benchmark's commands (repeatable); {i} becomes the round
 *   stdin <path>                 stdin of the timed command
 *   prepare <argv...>            run before each timed run, untimed (its stdin is the same file)
 *   run <argv...>                a timed command; several run lines are timed together, one after the other
 *   parallel <name> <workers> <total>   then env/stdin/run lines and `end`: <total> runs of the command split
 *                                over <workers> processes, each running its share one after another; {i} is the
 *                                run's number; timed as a whole
 *   end
 * Output: one JSON object per benchmark on stdout, with per-run wall time (ns), user and system CPU (us), peak
 * RSS (KiB) and exit status; for `parallel`, the wall time of the whole and the CPU summed over every run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_BENCH 16
#define MAX_ARGS 32
#define MAX_ENV 32
#define MAX_RUNS 5000

struct bench {
    char name[128];
    char *env[MAX_ENV + 1];
    int nenv;
    char stdin_path[512];
    char *prepare[MAX_ARGS + 1];
    char *run[4][MAX_ARGS + 1];
    int nrun;
    long long wall[MAX_RUNS];
    long user[MAX_RUNS], sys[MAX_RUNS], rss[MAX_RUNS];
    int status[MAX_RUNS];
};

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static long long now_ns(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) != 0)
        die("clock_gettime");
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Splits `line` in place at single spaces into argv (NULL-terminated). */
static int split(char *line, char **argv, int max)
{
    int n = 0;
    for (char *tok = strtok(line, " "); tok && n < max; tok = strtok(NULL, " "))
        argv[n++] = tok;
    argv[n] = NULL;
    return n;
}

/* The environment with {i} replaced by `round` (a fresh copy each time). */
static char **environment(struct bench *b, int round, char **storage)
{
    for (int k = 0; k < b->nenv; k++) {
        const char *tmpl = b->env[k], *at = strstr(tmpl, "{i}");
        size_t cap = strlen(tmpl) + 24;
        storage[k] = malloc(cap);
        if (!storage[k])
            die("malloc");
        if (at)
            snprintf(storage[k], cap, "%.*s%d%s", (int)(at - tmpl), tmpl, round, at + 3);
        else
            snprintf(storage[k], cap, "%s", tmpl);
    }
    storage[b->nenv] = NULL;
    return storage;
}

/* Runs argv with stdin from `path` and stdout/stderr to /dev/null; returns its wait status and usage. */
static int spawn_wait(char **argv, char **envp, const char *path, struct rusage *ru)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        int in = open(path[0] ? path : "/dev/null", O_RDONLY), out = open("/dev/null", O_WRONLY);
        if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(126);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    int st;
    while (wait4(pid, &st, 0, ru) < 0)
        if (errno != EINTR)
            die("wait4");
    return st;
}

static void free_env(char **e)
{
    for (int k = 0; e[k]; k++)
        free(e[k]);
}

static void print_bench(struct bench *b, int runs)
{
    printf("{\"name\":\"%s\",\"wall_ns\":[", b->name);
    for (int r = 0; r < runs; r++)
        printf("%s%lld", r ? "," : "", b->wall[r]);
    printf("],\"user_us\":[");
    for (int r = 0; r < runs; r++)
        printf("%s%ld", r ? "," : "", b->user[r]);
    printf("],\"sys_us\":[");
    for (int r = 0; r < runs; r++)
        printf("%s%ld", r ? "," : "", b->sys[r]);
    printf("],\"maxrss_kib\":[");
    for (int r = 0; r < runs; r++)
        printf("%s%ld", r ? "," : "", b->rss[r]);
    printf("],\"status\":[");
    for (int r = 0; r < runs; r++)
        printf("%s%d", r ? "," : "", b->status[r]);
    printf("]}\n");
    fflush(stdout);
}

static void run_group(struct bench *bs, int n, int runs, int warmup)
{
    char *envs[MAX_ENV + 1];
    for (int round = -warmup; round < runs; round++) {
        for (int k = 0; k < n; k++) {
            struct bench *b = &bs[k];
            int i = round < 0 ? round + 1000000 : round;
            struct rusage ru;
            char **e = environment(b, i, envs);
            if (b->prepare[0])
                spawn_wait(b->prepare, e, b->stdin_path, &ru);
            long user = 0, sys = 0, rss = 0;
            int status = 0;
            long long t0 = now_ns();
            for (int c = 0; c < b->nrun; c++) {
                int st = spawn_wait(b->run[c], e, b->stdin_path, &ru);
                user += ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec;
                sys += ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
                if (ru.ru_maxrss > rss)
                    rss = ru.ru_maxrss;
                if (!status)
                    status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            }
            long long t1 = now_ns();
            free_env(e);
            if (round < 0)
                continue;
            b->wall[round] = t1 - t0;
            b->user[round] = user;
            b->sys[round] = sys;
            b->rss[round] = rss;
            b->status[round] = status;
        }
    }
    for (int k = 0; k < n; k++)
        print_bench(&bs[k], runs);
}

/* `total` runs over `workers` processes; each worker runs i = w, w + workers, ... and sums its children's CPU. */
static void run_parallel(struct bench *b, int workers, int total)
{
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe");
    long long t0 = now_ns();
    for (int w = 0; w < workers; w++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            char *envs[MAX_ENV + 1];
            long cpu = 0, failed = 0;
            for (int i = w; i < total; i += workers) {
                struct rusage ru;
                char **e = environment(b, i, envs);
                int st = spawn_wait(b->run[0], e, b->stdin_path, &ru);
                free_env(e);
                cpu += ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000L +
                       ru.ru_stime.tv_usec;
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                    failed++;
            }
            long report[2] = {cpu, failed};
            _exit(write(fds[1], report, sizeof report) == sizeof report ? 0 : 1);
        }
    }
    close(fds[1]);
    long cpu = 0, failed = 0, report[2];
    for (int w = 0; w < workers; w++) {
        if (read(fds[0], report, sizeof report) != sizeof report)
            die("worker report");
        cpu += report[0];
        failed += report[1];
    }
    while (wait(NULL) > 0)
        ;
    long long t1 = now_ns();
    printf("{\"name\":\"%s\",\"parallel\":true,\"workers\":%d,\"total\":%d,\"wall_ns\":%lld,\"cpu_us\":%ld,"
           "\"failed\":%ld}\n",
           b->name, workers, total, t1 - t0, cpu, failed);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <plan>\n", argv[0]);
        return 2;
    }
    FILE *plan = fopen(argv[1], "r");
    if (!plan)
        die(argv[1]);
    static struct bench bs[MAX_BENCH];
    char *line = NULL;
    size_t cap = 0;
    int n = -1, runs = 0, warmup = 0, workers = 0, total = 0, parallel = 0;
    while (getline(&line, &cap, plan) > 0) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        char *copy = strdup(line), *sp = strchr(copy, ' ');
        if (!copy)
            die("strdup");
        char *rest = sp ? sp + 1 : copy + strlen(copy);
        if (sp)
            *sp = 0;
        struct bench *b = n >= 0 ? &bs[n] : NULL;
        if (!strcmp(copy, "group")) {
            n = -1, parallel = 0;
            if (sscanf(rest, "%d %d", &runs, &warmup) != 2 || runs > MAX_RUNS)
                die("group");
        } else if (!strcmp(copy, "parallel")) {
            n = 0, parallel = 1;
            memset(&bs[0], 0, sizeof bs[0]);
            if (sscanf(rest, "%127s %d %d", bs[0].name, &workers, &total) != 3)
                die("parallel");
        } else if (!strcmp(copy, "bench")) {
            if (++n >= MAX_BENCH)
                die("too many benchmarks");
            memset(&bs[n], 0, sizeof bs[n]);
            snprintf(bs[n].name, sizeof bs[n].name, "%s", rest);
        } else if (!strcmp(copy, "env") && b && b->nenv < MAX_ENV) {
            b->env[b->nenv++] = rest;
        } else if (!strcmp(copy, "stdin") && b) {
            snprintf(b->stdin_path, sizeof b->stdin_path, "%s", rest);
        } else if (!strcmp(copy, "prepare") && b) {
            split(rest, b->prepare, MAX_ARGS);
        } else if (!strcmp(copy, "run") && b && b->nrun < 4) {
            split(rest, b->run[b->nrun++], MAX_ARGS);
        } else if (!strcmp(copy, "end")) {
            if (parallel)
                run_parallel(&bs[0], workers, total);
            else
                run_group(bs, n + 1, runs, warmup);
            n = -1;
        } else {
            fprintf(stderr, "bad plan line: %s\n", line);
            return 2;
        }
    }
    free(line);
    return 0;
}
