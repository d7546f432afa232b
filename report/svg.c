/* svg.c: line and grouped bar charts as SVG text (see svg.h), and the text buffer they are drawn
 * into. Pure formatting: no state beyond the buffer, nothing read from disk. */
#include "svg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the text buffer ------------------------------------------------------------------------- */

void svg_buf_free(svg_buf *b) {
    if (!b) return;
    free(b->p);
    *b = (svg_buf){0};
}

/* Makes room for extra more bytes plus the NUL; false (oom set) when it cannot. */
static bool buf_reserve(svg_buf *b, size_t extra) {
    if (b->oom) return false;
    if (b->n + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void buf_putn(svg_buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n)) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void svg_buf_puts(svg_buf *b, const char *s) {
    if (s) buf_putn(b, s, strlen(s));
}

void svg_buf_printf(svg_buf *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int k = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (k < 0) return; /* an encoding error: nothing sensible to append */
    if ((size_t)k < sizeof small) {
        buf_putn(b, small, (size_t)k);
        return;
    }
    if (!buf_reserve(b, (size_t)k)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

/* Length of the valid UTF-8 sequence at s that XML 1.0 allows, 0 when invalid. */
static int utf8_len(const unsigned char *s) {
    uint32_t c;
    int n;
    if (s[0] < 0x80) return 1;
    if ((s[0] & 0xE0) == 0xC0) c = s[0] & 0x1F, n = 2;
    else if ((s[0] & 0xF0) == 0xE0) c = s[0] & 0x0F, n = 3;
    else if ((s[0] & 0xF8) == 0xF0) c = s[0] & 0x07, n = 4;
    else return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0; /* also stops at the NUL */
        c = (c << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_cp[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF) || c == 0xFFFE ||
        c == 0xFFFF)
        return 0;
    return n;
}

void svg_buf_escape(svg_buf *b, const char *s) {
    if (!s) return;
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        const char *rep = NULL;
        switch (*u) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep) {
            svg_buf_puts(b, rep);
            u++;
            continue;
        }
        if (*u < 0x20 && *u != '\t' && *u != '\n' && *u != '\r') {
            buf_putn(b, "?", 1);
            u++;
            continue;
        }
        int n = utf8_len(u);
        if (n == 0) {
            buf_putn(b, "?", 1);
            u++;
        } else {
            buf_putn(b, (const char *)u, (size_t)n);
            u += n;
        }
    }
}

rlhf_status svg_buf_status(const svg_buf *b) {
    return b->oom ? RLHF_ERR(RLHF_ERR_NOMEM, "out of memory drawing a chart") : RLHF_OK;
}

/* ---- ticks ----------------------------------------------------------------------------------- */

int32_t svg_ticks(double lo, double hi, int32_t max_ticks, double *ticks, int32_t cap,
                  double *step_out) {
    if (!isfinite(lo) || !isfinite(hi) || cap < 2) return 0;
    if (max_ticks < 2) max_ticks = 2;
    if (max_ticks > cap) max_ticks = cap;
    if (hi < lo) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (hi == lo) {
        double d = lo != 0 ? 0.1 * fabs(lo) : 0.5;
        lo -= d;
        hi += d;
    }
    const double range = hi - lo;
    if (!isfinite(range) || range <= 0) return 0;
    const double raw = range / (max_ticks - 1);
    double mag = pow(10, floor(log10(raw)));
    double step = 0;
    double first = 0;
    int64_t count = 0;
    for (int tries = 0; tries < 8; tries++, mag *= 10) {
        static const double mult[3] = {1, 2, 5};
        bool found = false;
        for (int m = 0; m < 3 && !found; m++) {
            step = mult[m] * mag;
            double a = floor(lo / step + 1e-9), z = ceil(hi / step - 1e-9);
            count = (int64_t)(z - a) + 1;
            first = a;
            found = count <= max_ticks;
        }
        if (found) break;
    }
    if (count > cap) count = cap;
    for (int64_t i = 0; i < count; i++) {
        double t = (first + (double)i) * step;
        if (fabs(t) < step * 1e-9) t = 0; /* no -0 or 1e-17 labels */
        ticks[i] = t;
    }
    if (step_out) *step_out = step;
    return (int32_t)count;
}

/* A tick label with as many decimals as the step needs. */
static void tick_label(char *buf, size_t cap, double v, double step) {
    double a = fabs(v);
    if (a >= 1e6 || (a > 0 && a < 1e-4) || step < 1e-4) {
        snprintf(buf, cap, "%.3g", v);
        return;
    }
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6) dec = 6;
    snprintf(buf, cap, "%.*f", dec, v);
}

/* ---- shared drawing -------------------------------------------------------------------------- */

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define PALETTE_N ((int32_t)(sizeof palette / sizeof *palette))

typedef struct frame {
    double W, H, L, R, T, B; /* size and margins */
    double pw, ph;           /* plot area */
    double x0, x1, y0, y1;   /* data range mapped onto the plot area */
} frame;

static double fx(const frame *f, double x) { return f->L + f->pw * (x - f->x0) / (f->x1 - f->x0); }
static double fy(const frame *f, double y) {
    return f->T + f->ph - f->ph * (y - f->y0) / (f->y1 - f->y0);
}

static bool has_legend(const svg_chart *c) {
    for (int32_t s = 0; s < c->n_series; s++)
        if (c->series[s].name && c->series[s].name[0]) return true;
    return false;
}

#define CHAR_W 6.6   /* average width of a 12 px sans-serif character */
#define LEGEND_MAX 40 /* legend names are cut to this many characters */

/* Characters (UTF-8 sequences) in s, at most cap counted. */
static int32_t text_chars(const char *s, int32_t cap) {
    int32_t n = 0;
    for (; s && *s && n < cap; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void frame_init(frame *f, const svg_chart *c, double bottom) {
    f->W = c->width > 0 ? c->width : 640;
    f->H = c->height > 0 ? c->height : 400;
    f->L = 70;
    int32_t longest = 0;
    for (int32_t s = 0; s < c->n_series; s++) {
        int32_t k = text_chars(c->series[s].name, LEGEND_MAX + 1);
        if (k > longest) longest = k;
    }
    f->R = has_legend(c) ? 46 + CHAR_W * longest : 20;
    if (f->R > 0.45 * f->W) f->R = 0.45 * f->W;
    f->T = 40;
    f->B = bottom;
    f->pw = f->W - f->L - f->R;
    f->ph = f->H - f->T - f->B;
    if (f->pw < 50) f->pw = 50;
    if (f->ph < 50) f->ph = 50;
}

static void draw_open(svg_buf *b, const frame *f, const svg_chart *c) {
    svg_buf_printf(b,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                   "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
                   f->W, f->H, f->W, f->H);
    if (c->title) {
        svg_buf_puts(b, "<title>");
        svg_buf_escape(b, c->title);
        svg_buf_puts(b, "</title>\n");
    }
    svg_buf_puts(b, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    if (c->title) {
        svg_buf_printf(b, "<text x=\"%.0f\" y=\"24\" font-size=\"15\">", f->L);
        svg_buf_escape(b, c->title);
        svg_buf_puts(b, "</text>\n");
    }
    if (c->xlabel) {
        svg_buf_printf(b, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">", f->L + f->pw / 2,
                       f->H - 8);
        svg_buf_escape(b, c->xlabel);
        svg_buf_puts(b, "</text>\n");
    }
    if (c->ylabel) {
        svg_buf_printf(b,
                       "<text transform=\"translate(16,%.1f) rotate(-90)\" "
                       "text-anchor=\"middle\">",
                       f->T + f->ph / 2);
        svg_buf_escape(b, c->ylabel);
        svg_buf_puts(b, "</text>\n");
    }
}

static void draw_no_data(svg_buf *b, const frame *f) {
    svg_buf_printf(b,
                   "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
                   "stroke=\"black\"/>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                   "fill=\"#777\">no data</text>\n</svg>\n",
                   f->L, f->T, f->pw, f->ph, f->L + f->pw / 2, f->T + f->ph / 2);
}

/* Horizontal grid lines and labels at the y ticks, then the frame. */
static void draw_y_axis(svg_buf *b, const frame *f, const double *t, int32_t nt, double step) {
    for (int32_t i = 0; i < nt; i++) {
        const double y = fy(f, t[i]);
        char lab[64];
        tick_label(lab, sizeof lab, t[i], step);
        svg_buf_printf(b,
                       "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                       "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                       f->L, y, f->L + f->pw, y, f->L - 6, y + 4, lab);
    }
    svg_buf_printf(b,
                   "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
                   "stroke=\"black\"/>\n",
                   f->L, f->T, f->pw, f->ph);
}

/* Appends s escaped, cut to max characters (an ellipsis marks the cut). */
static void put_cut(svg_buf *b, const char *s, int32_t max) {
    if (text_chars(s, max + 1) <= max) {
        svg_buf_escape(b, s);
        return;
    }
    size_t n = 0;
    for (int32_t k = 0; s[n] && k < max - 1; k++) /* whole UTF-8 sequences only */
        for (n++; ((unsigned char)s[n] & 0xC0) == 0x80; n++) {}
    char *cut = malloc(n + 1);
    if (!cut) {
        b->oom = true;
        return;
    }
    memcpy(cut, s, n);
    cut[n] = '\0';
    svg_buf_escape(b, cut);
    svg_buf_puts(b, "\xe2\x80\xa6");
    free(cut);
}

/* A group label under a bar group, wrapped at spaces into lines of about width px (at most 3). */
static void draw_group_label(svg_buf *b, const char *label, double cx, double y, double width) {
    int32_t per = (int32_t)(width / CHAR_W);
    if (per < 4) per = 4;
    svg_buf_printf(b, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">", cx, y);
    const char *p = label ? label : "";
    for (int line = 0; *p && line < 3; line++) {
        size_t len = strlen(p), take = len;
        if (text_chars(p, per + 1) > per && line < 2) { /* break at the last space that fits */
            size_t i = 0, last = 0;
            for (int32_t k = 0; p[i] && k <= per; k++) {
                if (p[i] == ' ') last = i;
                for (i++; ((unsigned char)p[i] & 0xC0) == 0x80; i++) {}
            }
            take = last > 0 ? last : i;
        }
        char *part = malloc(take + 1);
        if (!part) {
            b->oom = true;
            break;
        }
        memcpy(part, p, take);
        part[take] = '\0';
        svg_buf_printf(b, "<tspan x=\"%.1f\" dy=\"%s\">", cx, line ? "1.1em" : "0");
        svg_buf_escape(b, part);
        svg_buf_puts(b, "</tspan>");
        free(part);
        p += take;
        while (*p == ' ') p++;
    }
    svg_buf_puts(b, "</text>\n");
}

static void draw_legend(svg_buf *b, const frame *f, const svg_chart *c, bool bars) {
    int32_t row = 0;
    for (int32_t s = 0; s < c->n_series; s++) {
        const svg_series *se = &c->series[s];
        if (!se->name || !se->name[0]) continue;
        const char *col = palette[s % PALETTE_N];
        const double x = f->L + f->pw + 12, y = f->T + 10 + 18 * row++;
        if (bars)
            svg_buf_printf(b,
                           "<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"10\" "
                           "fill=\"%s\"/>",
                           x, y - 8, col);
        else
            svg_buf_printf(b,
                           "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
                           "stroke-width=\"2\"%s/>",
                           x, y - 3, x + 18, y - 3, col,
                           se->dashed ? " stroke-dasharray=\"5,3\"" : "");
        svg_buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">", x + 24, y + 1, col);
        put_cut(b, se->name, LEGEND_MAX);
        svg_buf_puts(b, "</text>\n");
    }
}

static rlhf_status check_chart(const svg_chart *c, bool bars) {
    if (c->n_series < 0 || c->n_groups < 0 || (c->n_series > 0 && !c->series))
        return RLHF_ERR(RLHF_ERR_ARG, "chart '%s': bad series count", c->title ? c->title : "");
    if (bars && c->n_groups > 0 && !c->groups)
        return RLHF_ERR(RLHF_ERR_ARG, "chart '%s': no group labels", c->title ? c->title : "");
    for (int32_t s = 0; s < c->n_series; s++) {
        const svg_series *se = &c->series[s];
        if (se->n < 0 || (se->n > 0 && !se->y))
            return RLHF_ERR(RLHF_ERR_ARG, "chart '%s': series %d has no values",
                            c->title ? c->title : "", (int)s);
        if (bars && se->n != c->n_groups)
            return RLHF_ERR(RLHF_ERR_ARG, "chart '%s': series %d has %d values for %d groups",
                            c->title ? c->title : "", (int)s, (int)se->n, (int)c->n_groups);
    }
    return RLHF_OK;
}

static void widen(double v, double *lo, double *hi) {
    if (!isfinite(v)) return;
    if (v < *lo) *lo = v;
    if (v > *hi) *hi = v;
}

/* ---- line chart ------------------------------------------------------------------------------ */

rlhf_status svg_line_chart(svg_buf *b, const svg_chart *c) {
    RLHF_TRY(check_chart(c, false));
    frame f;
    frame_init(&f, c, 50);
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    bool x_int = true;
    for (int32_t s = 0; s < c->n_series; s++) {
        const svg_series *se = &c->series[s];
        for (int32_t i = 0; i < se->n; i++) {
            const double x = se->x ? se->x[i] : i + 1;
            if (!isfinite(se->y[i]) || !isfinite(x)) continue;
            widen(x, &xlo, &xhi);
            if (x != floor(x)) x_int = false;
            widen(se->y[i], &ylo, &yhi);
            if (se->lo && se->hi && isfinite(se->lo[i]) && isfinite(se->hi[i])) {
                widen(se->lo[i], &ylo, &yhi);
                widen(se->hi[i], &ylo, &yhi);
            }
        }
    }
    draw_open(b, &f, c);
    if (!isfinite(xlo)) {
        draw_no_data(b, &f);
        return svg_buf_status(b);
    }
    if (c->y_min < c->y_max) ylo = c->y_min, yhi = c->y_max;
    else if (c->y_zero) widen(0, &ylo, &yhi);
    double yt[16], xt[16], ystep = 1, xstep = 1;
    int32_t nyt = svg_ticks(ylo, yhi, 6, yt, 16, &ystep);
    int32_t max_xt = 8;
    if (x_int && xhi - xlo + 1 < max_xt) max_xt = (int32_t)(xhi - xlo + 1);
    int32_t nxt = max_xt >= 2 ? svg_ticks(xlo, xhi, max_xt, xt, 16, &xstep) : 0;
    if (nyt < 2) { /* cannot happen for finite data; keep a sane frame anyway */
        yt[0] = ylo - 1, yt[1] = yhi + 1, nyt = 2;
    }
    f.y0 = yt[0], f.y1 = yt[nyt - 1];
    if (nxt >= 2) f.x0 = xt[0], f.x1 = xt[nxt - 1];
    else { /* one x value */
        f.x0 = xlo - 1, f.x1 = xhi + 1;
        xt[0] = xlo, nxt = 1, xstep = 1;
    }
    draw_y_axis(b, &f, yt, nyt, ystep);
    for (int32_t i = 0; i < nxt; i++) {
        char lab[64];
        tick_label(lab, sizeof lab, xt[i], xstep);
        const double x = fx(&f, xt[i]);
        svg_buf_printf(b,
                       "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"black\"/>"
                       "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n",
                       x, f.T + f.ph, x, f.T + f.ph + 5, x, f.T + f.ph + 18, lab);
    }
    for (int32_t s = 0; s < c->n_series; s++) {
        const svg_series *se = &c->series[s];
        const char *col = palette[s % PALETTE_N];
        const char *dash = se->dashed ? " stroke-dasharray=\"5,3\"" : "";
        bool open = false;
        for (int32_t i = 0; i <= se->n; i++) { /* polylines broken at missing values */
            const double x = i < se->n ? (se->x ? se->x[i] : i + 1) : NAN;
            const bool good = i < se->n && isfinite(x) && isfinite(se->y[i]);
            if (good) {
                if (!open)
                    svg_buf_printf(b,
                                   "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s "
                                   "points=\"",
                                   col, dash);
                svg_buf_printf(b, "%s%.1f,%.1f", open ? " " : "", fx(&f, x), fy(&f, se->y[i]));
                open = true;
            } else if (open) {
                svg_buf_puts(b, "\"/>\n");
                open = false;
            }
        }
        for (int32_t i = 0; i < se->n; i++) { /* markers and error bars */
            const double x = se->x ? se->x[i] : i + 1;
            if (!isfinite(x) || !isfinite(se->y[i])) continue;
            if (se->n <= 100)
                svg_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n",
                               fx(&f, x), fy(&f, se->y[i]), col);
            if (se->lo && se->hi && isfinite(se->lo[i]) && isfinite(se->hi[i]))
                svg_buf_printf(b,
                               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                               "stroke=\"%s\"/>\n",
                               fx(&f, x), fy(&f, se->lo[i]), fx(&f, x), fy(&f, se->hi[i]), col);
        }
    }
    draw_legend(b, &f, c, false);
    svg_buf_puts(b, "</svg>\n");
    return svg_buf_status(b);
}

/* ---- grouped bar chart ----------------------------------------------------------------------- */

rlhf_status svg_bar_chart(svg_buf *b, const svg_chart *c) {
    RLHF_TRY(check_chart(c, true));
    frame f;
    frame_init(&f, c, 70); /* room for group labels on up to three lines */
    double ylo = 0, yhi = 0;
    bool any = false;
    for (int32_t s = 0; s < c->n_series; s++) {
        const svg_series *se = &c->series[s];
        for (int32_t g = 0; g < se->n; g++) {
            if (!isfinite(se->y[g])) continue;
            any = true;
            widen(se->y[g], &ylo, &yhi);
            if (se->lo && se->hi && isfinite(se->lo[g]) && isfinite(se->hi[g])) {
                widen(se->lo[g], &ylo, &yhi);
                widen(se->hi[g], &ylo, &yhi);
            }
        }
    }
    draw_open(b, &f, c);
    if (!any || c->n_groups == 0) {
        draw_no_data(b, &f);
        return svg_buf_status(b);
    }
    if (c->y_min < c->y_max) ylo = c->y_min, yhi = c->y_max;
    double yt[16], ystep = 1;
    int32_t nyt = svg_ticks(ylo, yhi, 6, yt, 16, &ystep);
    if (nyt < 2) yt[0] = ylo - 1, yt[1] = yhi + 1, nyt = 2;
    f.y0 = yt[0], f.y1 = yt[nyt - 1];
    f.x0 = 0, f.x1 = c->n_groups;
    draw_y_axis(b, &f, yt, nyt, ystep);
    const double gw = f.pw / c->n_groups;
    const double bw = c->n_series > 0 ? 0.8 * gw / c->n_series : 0;
    const double base = fy(&f, f.y0 > 0 ? f.y0 : f.y1 < 0 ? f.y1 : 0);
    for (int32_t g = 0; g < c->n_groups; g++)
        draw_group_label(b, c->groups[g], f.L + gw * (g + 0.5), f.T + f.ph + 16, gw - 6);
    for (int32_t s = 0; s < c->n_series; s++) {
        const svg_series *se = &c->series[s];
        const char *col = palette[s % PALETTE_N];
        for (int32_t g = 0; g < se->n; g++) {
            if (!isfinite(se->y[g])) continue;
            const double x = f.L + gw * g + 0.1 * gw + bw * s, y = fy(&f, se->y[g]);
            const double top = y < base ? y : base, h = fabs(base - y);
            svg_buf_printf(b,
                           "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                           "fill=\"%s\"/>\n",
                           x, top, bw, h, col);
            double note_y = top;
            if (se->lo && se->hi && isfinite(se->lo[g]) && isfinite(se->hi[g])) {
                const double cx = x + bw / 2, yl = fy(&f, se->lo[g]), yh = fy(&f, se->hi[g]);
                svg_buf_printf(b,
                               "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" "
                               "stroke=\"black\" fill=\"none\"/>\n",
                               cx, yl, yh, cx - 3, yl, cx + 3, cx - 3, yh, cx + 3);
                if (yh < note_y) note_y = yh;
            }
            if (se->notes && se->notes[g]) {
                svg_buf_printf(b,
                               "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                               "font-size=\"9\">",
                               x + bw / 2, note_y - 3);
                svg_buf_escape(b, se->notes[g]);
                svg_buf_puts(b, "</text>\n");
            }
        }
    }
    draw_legend(b, &f, c, true);
    svg_buf_puts(b, "</svg>\n");
    return svg_buf_status(b);
}

/* ---- files ----------------------------------------------------------------------------------- */

rlhf_status svg_file_write(const char *path, const char *text, size_t n) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 5);
    if (!tmp) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rlhf_status st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    bool ok = n == 0 || fwrite(text, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        rlhf_status st = RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return RLHF_OK;
}

rlhf_status svg_line_file(const char *path, const char *title, const char *xlabel,
                          const char *ylabel, const double *x, int32_t n,
                          const char *const *names, const double *const *ys, int32_t n_series) {
    if (n_series < 0 || n_series > 64)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: %d series (at most 64)", path, (int)n_series);
    svg_series se[64];
    for (int32_t s = 0; s < n_series; s++)
        se[s] = (svg_series){.name = names[s], .x = x, .y = ys[s], .n = n};
    svg_chart c = {.title = title, .xlabel = xlabel, .ylabel = ylabel, .series = se,
                   .n_series = n_series};
    svg_buf b = {0};
    rlhf_status st = svg_line_chart(&b, &c);
    if (st == RLHF_OK) st = svg_file_write(path, b.p, b.n);
    svg_buf_free(&b);
    return st;
}
