/* svg.h: the toolkit's one plotting code path (module prefix `svg_`, library rlhfreport).
 *
 * Line charts (several series, each its own x values, optional error bars) and grouped bar charts
 * (groups along x, one bar per series in each group, optional error bars and a note over each
 * bar), with a title, axis labels, "nice" ticks (1, 2, 5 x 10^k), grid lines and a legend. A chart
 * is drawn as a self-contained <svg> element appended to a growable text buffer (svg_buf), which
 * the caller writes to a file (svg_file_write, atomic) or inlines into an HTML page (`rlhf report`).
 * Every text that comes from data goes through svg_buf_escape, so a name holding `<`, `&` or a
 * quote cannot break the XML. Missing values are NaN (or +-inf): a line breaks there and a bar is
 * left out; a chart with no finite value at all still draws its frame and says "no data".
 *
 * Users: rlhf report, rs report, rs sweep, ppo (reward_kl.svg) and gatt eval. */
#ifndef RLHF_SVG_H
#define RLHF_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rlhf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A growable NUL-terminated text. Zero-initialize ({0}) before use; svg_buf_free releases it.
 * Appending never fails loudly: on out-of-memory the buffer sets oom, ignores later appends, and
 * svg_buf_status reports RLHF_ERR_NOMEM, so a writer checks once at the end. */
typedef struct svg_buf {
    char *p;      /* NUL-terminated text (NULL while empty) */
    size_t n;     /* bytes used, without the NUL */
    size_t cap;   /* bytes allocated */
    bool oom;     /* an allocation failed: the text is incomplete */
} svg_buf;

void svg_buf_free(svg_buf *b); /* NULL-safe; leaves an empty buffer */
void svg_buf_puts(svg_buf *b, const char *s);
void svg_buf_printf(svg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s escaped for XML and HTML text and attribute values: & < > " ' become entities;
 * control characters other than tab, newline and carriage return (not allowed in XML 1.0) and
 * bytes that are not valid UTF-8 are replaced by '?'. s NULL appends nothing. */
void svg_buf_escape(svg_buf *b, const char *s);
/* RLHF_OK, or RLHF_ERR_NOMEM (recorded) when an append failed. */
rlhf_status svg_buf_status(const svg_buf *b);

/* One series. Line charts: point i is (x[i], y[i]) (x NULL: i + 1). Bar charts: y[g] is the bar
 * of group g (n must be the chart's n_groups). NaN/inf y: missing. lo/hi (may be NULL): an
 * interval drawn as an error bar where both are finite. notes (may be NULL, or NULL entries):
 * bar charts only, a short text over bar g (e.g. "n=12"). */
typedef struct svg_series {
    const char *name; /* legend text; NULL: no legend entry */
    const double *x;  /* (n) or NULL */
    const double *y;  /* (n) */
    const double *lo, *hi;     /* (n) or NULL */
    const char *const *notes;  /* (n) or NULL */
    int32_t n;
    bool dashed; /* line charts: a dashed line */
} svg_series;

typedef struct svg_chart {
    const char *title, *xlabel, *ylabel; /* NULL: none */
    const svg_series *series;            /* (n_series) */
    int32_t n_series;
    const char *const *groups; /* bar charts: (n_groups) labels under the groups */
    int32_t n_groups;
    int32_t width, height; /* pixels; 0: 640 x 400 */
    double y_min, y_max;   /* a fixed y range when y_min < y_max; otherwise from the data */
    bool y_zero;           /* line charts: include 0 in the y range (bars always do) */
} svg_chart;

/* Appends the chart as one <svg> element. RLHF_ERR_ARG for a negative count, a series with
 * n > 0 and no y, or (bar charts) a series whose n is not n_groups; RLHF_ERR_NOMEM when the
 * buffer could not grow. Zero series, zero points or only NaN values draw an empty frame that
 * says "no data". */
rlhf_status svg_line_chart(svg_buf *out, const svg_chart *c);
rlhf_status svg_bar_chart(svg_buf *out, const svg_chart *c);

/* Ticks for an axis over [lo, hi]: a step of 1, 2 or 5 x 10^k giving at most max_ticks (>= 2)
 * ticks, the first at or below lo and the last at or above hi. Writes up to cap values to ticks
 * and returns their count (0 when lo or hi is not finite or cap < 2); *step (may be NULL) gets the
 * step. lo == hi is widened around the value (by 10% of it, 0.5 for 0). Cannot fail. */
int32_t svg_ticks(double lo, double hi, int32_t max_ticks, double *ticks, int32_t cap,
                  double *step);

/* Writes n bytes of text to path atomically (path.tmp, then rename): RLHF_ERR_IO naming the file
 * when it cannot. */
rlhf_status svg_file_write(const char *path, const char *text, size_t n);
/* Draws a line chart into a file: the common case of the commands (shared x, n points each). */
rlhf_status svg_line_file(const char *path, const char *title, const char *xlabel,
                          const char *ylabel, const double *x, int32_t n,
                          const char *const *names, const double *const *ys, int32_t n_series);

#ifdef __cplusplus
}
#endif

#endif /* RLHF_SVG_H */
