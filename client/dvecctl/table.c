/* table.c - aligned text tables for dvecctl's human output. */
#include "table.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void table_init(struct table *t, size_t n_cols, const char *const *headers)
{
    memset(t, 0, sizeof *t);
    t->n_cols = n_cols < TABLE_MAX_COLS ? n_cols : TABLE_MAX_COLS;
    for (size_t i = 0; i < t->n_cols; i++) {
        t->right[i] = headers[i][0] == '>';
        t->headers[i] = headers[i] + t->right[i];
    }
    t->col = t->n_cols;
}

void table_new_row(struct table *t)
{
    if (t->oom)
        return;
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? 2 * t->cap_rows : 16;
        char **c = realloc(t->cells, cap * t->n_cols * sizeof *c);
        if (c == NULL) {
            t->oom = true;
            return;
        }
        t->cells = c;
        t->cap_rows = cap;
    }
    memset(t->cells + t->n_rows * t->n_cols, 0, t->n_cols * sizeof *t->cells);
    t->n_rows++;
    t->col = 0;
}

void table_cellf(struct table *t, const char *fmt, ...)
{
    if (t->oom || t->col >= t->n_cols || t->n_rows == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->oom = true;
        return;
    }
    t->cells[(t->n_rows - 1) * t->n_cols + t->col++] = s;
}

/* Appends s padded to width (right-aligned or not) at *o in line. */
static void put_cell(char *line, size_t *o, const char *s, size_t width, bool right)
{
    size_t len = strlen(s), pad = width > len ? width - len : 0;
    if (right) {
        memset(line + *o, ' ', pad);
        *o += pad;
    }
    memcpy(line + *o, s, len);
    *o += len;
    if (!right) {
        memset(line + *o, ' ', pad);
        *o += pad;
    }
}

int table_print(const struct table *t, FILE *f)
{
    size_t w[TABLE_MAX_COLS], total = 1;
    for (size_t c = 0; c < t->n_cols; c++) {
        w[c] = strlen(t->headers[c]);
        for (size_t r = 0; r < t->n_rows; r++) {
            const char *s = t->cells[r * t->n_cols + c];
            if (s && strlen(s) > w[c])
                w[c] = strlen(s);
        }
        total += w[c] + 2;
    }
    char *line = malloc(total);
    if (line == NULL)
        return -1;
    for (size_t r = 0; r <= t->n_rows; r++) {
        size_t o = 0;
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *s = r == 0 ? t->headers[c] : t->cells[(r - 1) * t->n_cols + c];
            if (c) {
                memcpy(line + o, "  ", 2);
                o += 2;
            }
            put_cell(line, &o, s ? s : "", w[c], t->right[c]);
        }
        while (o > 0 && line[o - 1] == ' ')
            o--;
        line[o] = '\0';
        fprintf(f, "%s\n", line);
    }
    free(line);
    return t->oom ? -1 : 0;
}

void table_free(struct table *t)
{
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}
