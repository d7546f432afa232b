/* progress.c: wall-clock helpers and the progress line of the `rlhf` program.
 *
 * The progress line goes to stderr, rewritten in place with "\r", and shows done/total, percent,
 * rate and ETA. It appears only when stderr is a terminal (or --progress forces it) and never with
 * --quiet, so piped output and test logs stay clean. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t cli_time_seed(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
    /* splitmix64 finalizer so that close times give unrelated seeds; keep it short to type */
    s ^= s >> 30;
    s *= 0xbf58476d1ce4e5b9ull;
    s ^= s >> 27;
    s = (s & 0xffffffffull) % 1000000000ull;
    return s ? s : 1;
}

void cli_progress_start(cli_progress *p, const char *label, const char *unit, int64_t total,
                        const cli_common *c) {
    p->on = !c->quiet && (c->progress || isatty(STDERR_FILENO));
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->t0 = cli_now();
    p->last = 0;
    p->width = 0;
    p->base = 0;
    p->note[0] = '\0';
}

static void fmt_duration(char *buf, size_t cap, double s) {
    if (!(s >= 0) || s > 359999) {
        snprintf(buf, cap, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%02ld:%02ld", t / 60, t % 60);
}

void cli_progress_update(cli_progress *p, int64_t done) {
    if (!p->on) return;
    double now = cli_now();
    bool final = p->total > 0 && done >= p->total;
    if (!final && now - p->last < 0.1) return;
    p->last = now;
    double el = now - p->t0;
    double rate = el > 0 ? (double)(done - p->base) / el : 0;
    char eta[32], elapsed[32];
    fmt_duration(eta, sizeof eta, rate > 0 ? (double)(p->total - done) / rate : -1);
    fmt_duration(elapsed, sizeof elapsed, el);
    char line[320];
    int n;
    if (p->total > 0)
        n = snprintf(line, sizeof line, "%s %lld/%lld (%.0f%%) %.1f %s/s, %s elapsed, ETA %s",
                     p->label, (long long)done, (long long)p->total,
                     100.0 * (double)done / (double)p->total, rate, p->unit, elapsed, eta);
    else
        n = snprintf(line, sizeof line, "%s %lld %.1f %s/s, %s elapsed", p->label,
                     (long long)done, rate, p->unit, elapsed);
    if (n < 0) return;
    if (n >= (int)sizeof line) n = (int)sizeof line - 1;
    if (p->note[0]) {
        int k = snprintf(line + n, sizeof line - (size_t)n, " | %s", p->note);
        if (k > 0) n += k;
        if (n >= (int)sizeof line) n = (int)sizeof line - 1;
    }
    fprintf(stderr, "\r%s%*s", line, p->width > n ? p->width - n : 0, "");
    fflush(stderr);
    p->width = n;
}

void cli_progress_end(cli_progress *p) {
    if (!p->on || p->width == 0) return;
    fprintf(stderr, "\r%*s\r", p->width, "");
    fflush(stderr);
    p->width = 0;
}

void cli_progress_cb(void *ctx, int64_t done, int64_t total) {
    cli_progress *p = ctx;
    if (total > 0) p->total = total;
    cli_progress_update(p, done);
}

void cli_progress_note(cli_progress *p, int64_t done, bool force, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->note, sizeof p->note, fmt, ap);
    va_end(ap);
    if (force) p->last = 0;
    cli_progress_update(p, done);
}
