/* table.h - aligned text tables for dvecctl's human output (column widths from the cells). */
#ifndef DVECCTL_TABLE_H
#define DVECCTL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define TABLE_MAX_COLS 12

struct table {
    size_t n_cols;
    const char *headers[TABLE_MAX_COLS];
    bool right[TABLE_MAX_COLS]; /* right-align (numbers) */
    char **cells;               /* n_rows * n_cols, malloc'd strings (NULL: empty) */
    size_t n_rows, cap_rows, col;
    bool oom;
};

/* headers: n_cols names; a name starting with '>' is right-aligned (the '>' is not shown). */
void table_init(struct table *t, size_t n_cols, const char *const *headers);
/* Starts a new row; table_cellf then fills its cells left to right (extra cells are dropped,
 * missing ones print empty). */
void table_new_row(struct table *t);
void table_cellf(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes the header and the rows, columns separated by two spaces, no trailing blanks.
 * Returns -1 when memory ran out while adding cells (the table is then incomplete). */
int table_print(const struct table *t, FILE *f);
void table_free(struct table *t);

#endif
