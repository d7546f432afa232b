/* test_svg.c: unit tests of the SVG charts (report/svg.h).
 *
 *   svg-01  ticks: nice steps (1, 2, 5 x 10^k), covering the range, at most max_ticks; degenerate
 *           ranges (lo == hi, reversed, NaN/inf)
 *   svg-02  escaping: & < > " ' become entities; control bytes and invalid UTF-8 become '?';
 *           valid multi-byte UTF-8 is kept
 *   svg-03  a line chart: one <svg>, one polyline per unbroken run of a series (a NaN breaks the
 *           line), a legend entry per named series, tick labels, escaped title; parses as XML
 *           (python3, when present)
 *   svg-04  empty and all-NaN data draw a frame that says "no data"; bad arguments are errors
 *   svg-05  a grouped bar chart: one rect per finite bar, error bars, notes; n != groups refused
 *   svg-06  svg_file_write / svg_line_file: atomic write, unwritable path is an error naming it */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rlhf.h"
#include "svg.h"
#include "test.h"

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

/* Parses the file as XML with python3 (when it is there): 1 ok, 0 failed, -1 not checked. */
static int xml_ok(const char *path) {
    if (system("python3 -c 'import xml.dom.minidom' >/dev/null 2>&1") != 0) return -1;
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' '%s'", path);
    return system(cmd) == 0;
}

static void test_ticks(void) {
    double t[16], step = 0;
    int32_t n = svg_ticks(0.13, 0.87, 6, t, 16, &step);
    CHECKF(n >= 2 && n <= 6, "n = %d", (int)n);
    CHECKF(fabs(step - 0.2) < 1e-12, "step %g", step);
    CHECK(t[0] <= 0.13 && t[n - 1] >= 0.87);
    for (int32_t i = 1; i < n; i++) CHECK(fabs(t[i] - t[i - 1] - step) < 1e-9);
    n = svg_ticks(-3, 1234, 8, t, 16, &step);
    CHECKF(n <= 8 && step == 500 && t[0] == -500 && t[n - 1] >= 1234, "n %d step %g", (int)n, step);
    n = svg_ticks(5, 5, 6, t, 16, &step); /* a single value: widened around it */
    CHECK(n >= 2 && t[0] < 5 && t[n - 1] > 5);
    n = svg_ticks(0, 0, 6, t, 16, &step);
    CHECK(n >= 2 && t[0] < 0 && t[n - 1] > 0);
    n = svg_ticks(10, 1, 6, t, 16, &step); /* reversed */
    CHECK(n >= 2 && t[0] <= 1 && t[n - 1] >= 10);
    CHECK(svg_ticks(NAN, 1, 6, t, 16, NULL) == 0);
    CHECK(svg_ticks(0, INFINITY, 6, t, 16, NULL) == 0);
    CHECK(svg_ticks(0, 1, 6, t, 1, NULL) == 0);
    n = svg_ticks(-1e-7, 3e-7, 5, t, 16, &step);
    CHECK(n >= 2 && n <= 5 && t[0] <= -1e-7 && t[n - 1] >= 3e-7);
    for (int32_t i = 0; i < n; i++) CHECK(!(t[i] == 0 && signbit(t[i]))); /* no -0 */
}

static void test_escape(void) {
    svg_buf b = {0};
    svg_buf_escape(&b, "a<b & \"c\" 'd'>");
    CHECKF(b.p && strcmp(b.p, "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;") == 0, "%s", b.p);
    svg_buf_free(&b);
    svg_buf_escape(&b, "x\x01y\x1f\tz\xff\xc3\xa9\xe2\x82\xac\xed\xa0\x80"); /* ctl, bad, é, €, surrogate */
    CHECKF(b.p && strcmp(b.p, "x?y?\tz?\xc3\xa9\xe2\x82\xac???") == 0, "%s", b.p);
    svg_buf_free(&b);
    svg_buf_escape(&b, "\xc3"); /* truncated sequence at the end */
    CHECKF(b.p && strcmp(b.p, "?") == 0, "%s", b.p);
    svg_buf_free(&b);
    svg_buf_escape(&b, NULL);
    CHECK(b.n == 0);
    svg_buf_free(&b);
    svg_buf_free(NULL);
    /* long printf (past the small stack buffer) */
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    svg_buf_printf(&b, "[%s]", big);
    CHECK(b.n == 1001 && b.p[0] == '[' && b.p[1000] == ']' && b.p[1001] == '\0');
    CHECK(svg_buf_status(&b) == RLHF_OK);
    svg_buf_free(&b);
}

static void test_line(const char *dir) {
    const double x[5] = {1, 2, 3, 4, 5};
    const double y1[5] = {0.1, 0.2, NAN, 0.4, 0.5}; /* broken in two */
    const double y2[5] = {1, 0.9, 0.8, 0.7, 0.6};
    const double lo[5] = {0.9, 0.8, 0.7, 0.6, 0.5}, hi[5] = {1.1, 1, 0.9, 0.8, 0.7};
    svg_series se[2] = {{.name = "max <k>", .x = x, .y = y1, .n = 5},
                        {.name = "median & co", .x = x, .y = y2, .lo = lo, .hi = hi, .n = 5,
                         .dashed = true}};
    svg_chart c = {.title = "A \"chart\" <1>", .xlabel = "k", .ylabel = "reward", .series = se,
                   .n_series = 2};
    svg_buf b = {0};
    CHECK_OK(svg_line_chart(&b, &c));
    CHECK(b.p && count(b.p, "<svg ") == 1 && count(b.p, "</svg>") == 1);
    CHECKF(count(b.p, "<polyline") == 3, "%d polylines", count(b.p, "<polyline"));
    CHECK(count(b.p, "<circle") == 9);
    CHECK(strstr(b.p, "max &lt;k&gt;") && strstr(b.p, "median &amp; co"));
    CHECK(strstr(b.p, "A &quot;chart&quot; &lt;1&gt;") && !strstr(b.p, "<1>"));
    CHECK(strstr(b.p, "stroke-dasharray"));
    CHECK(strstr(b.p, ">0.5</text>") && strstr(b.p, ">1.0</text>")); /* y tick labels, step 0.5 */
    CHECK(strstr(b.p, ">5</text>"));                                     /* an x tick label */
    CHECK(!strstr(b.p, "nan") && !strstr(b.p, "inf"));
    char path[1200];
    snprintf(path, sizeof path, "%s/line.svg", dir);
    CHECK_OK(svg_file_write(path, b.p, b.n));
    int x_ok = xml_ok(path);
    CHECKF(x_ok != 0, "%s does not parse as XML", path);
    svg_buf_free(&b);
}

static void test_empty(void) {
    svg_buf b = {0};
    svg_chart c = {.title = "nothing"};
    CHECK_OK(svg_line_chart(&b, &c));
    CHECK(b.p && strstr(b.p, "no data") && strstr(b.p, "</svg>"));
    svg_buf_free(&b);
    const double y[3] = {NAN, NAN, INFINITY};
    svg_series se = {.name = "all missing", .y = y, .n = 3};
    c.series = &se;
    c.n_series = 1;
    CHECK_OK(svg_line_chart(&b, &c));
    CHECK(b.p && strstr(b.p, "no data") && !strstr(b.p, "<polyline"));
    svg_buf_free(&b);
    const char *g[3] = {"a", "b", "c"};
    svg_chart bc = {.title = "bars", .series = &se, .n_series = 1, .groups = g, .n_groups = 3};
    CHECK_OK(svg_bar_chart(&b, &bc));
    CHECK(b.p && strstr(b.p, "no data"));
    svg_buf_free(&b);
    /* a single point: drawn, with its marker */
    const double one = 3.5;
    svg_series s1 = {.name = "one", .y = &one, .n = 1};
    svg_chart c1 = {.series = &s1, .n_series = 1};
    CHECK_OK(svg_line_chart(&b, &c1));
    CHECK(b.p && count(b.p, "<circle") == 1 && !strstr(b.p, "no data"));
    svg_buf_free(&b);
    /* errors */
    svg_series bad = {.name = "no y", .n = 2};
    svg_chart cb = {.series = &bad, .n_series = 1};
    CHECK(svg_line_chart(&b, &cb) == RLHF_ERR_ARG);
    cb.n_series = -1;
    CHECK(svg_line_chart(&b, &cb) == RLHF_ERR_ARG);
    svg_buf_free(&b);
}

static void test_bars(const char *dir) {
    const char *groups[3] = {"significantly", "better", "all <3>"};
    const double a[3] = {0.9, 0.7, 0.8}, alo[3] = {0.8, 0.6, 0.75}, ahi[3] = {0.95, 0.8, 0.85};
    const double b2[3] = {0.6, NAN, -0.1};
    const char *notes[3] = {"n=10", "n=20", NULL};
    svg_series se[2] = {{.name = "RM help", .y = a, .lo = alo, .hi = ahi, .notes = notes, .n = 3},
                        {.name = "RM safe", .y = b2, .n = 3}};
    svg_chart c = {.title = "accuracy", .ylabel = "accuracy", .series = se, .n_series = 2,
                   .groups = groups, .n_groups = 3};
    svg_buf b = {0};
    CHECK_OK(svg_bar_chart(&b, &c));
    /* background + 5 bars + 2 legend swatches (+ frame rects) */
    CHECKF(b.p && count(b.p, "fill=\"#1f77b4\"/>") == 4, "%d", count(b.p, "fill=\"#1f77b4\"/>"));
    CHECK(count(b.p, "fill=\"#d62728\"/>") == 3); /* 2 bars + legend */
    CHECK(count(b.p, "<path d=") == 3);             /* error bars */
    CHECK(strstr(b.p, ">n=10<") && strstr(b.p, ">n=20<"));
    CHECK(strstr(b.p, "all &lt;3&gt;"));
    CHECK(strstr(b.p, ">-0.5</text>") && strstr(b.p, ">0.0</text>")); /* zero on the axis */
    char path[1200];
    snprintf(path, sizeof path, "%s/bars.svg", dir);
    CHECK_OK(svg_file_write(path, b.p, b.n));
    CHECKF(xml_ok(path) != 0, "%s does not parse as XML", path);
    svg_buf_free(&b);
    se[1].n = 2; /* not one value per group */
    CHECK(svg_bar_chart(&b, &c) == RLHF_ERR_ARG);
    CHECK(strstr(rlhf_last_error(), "groups") != NULL);
    svg_buf_free(&b);
}

static void test_files(const char *dir) {
    const double x[3] = {2, 4, 6}, y[3] = {10, 20, 15};
    const char *names[1] = {"recall"};
    const double *ys[1] = {y};
    char path[1200];
    snprintf(path, sizeof path, "%s/f.svg", dir);
    CHECK_OK(svg_line_file(path, "t", "turn", "%", x, 3, names, ys, 1));
    size_t n = 0;
    unsigned char *txt = slurp(path, &n);
    CHECK(txt && n > 100 && strstr((char *)txt, "<polyline") && strstr((char *)txt, ">recall<"));
    free(txt);
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0); /* renamed away */
    snprintf(path, sizeof path, "%s/no/such/dir/f.svg", dir);
    CHECK(svg_line_file(path, "t", "turn", "%", x, 3, names, ys, 1) == RLHF_ERR_IO);
    CHECK(strstr(rlhf_last_error(), "no/such/dir") != NULL);
}

int main(void) {
    char dir[] = "/tmp/test_svg_XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    test_ticks();
    test_escape();
    test_line(dir);
    test_empty();
    test_bars(dir);
    test_files(dir);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_MAIN_END();
}
