/* ftext.h - the full-text tokenizer of text payload indexes and of match text / phrase. */
#ifndef DV_FTEXT_H
#define DV_FTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Qdrant's tokenizers: word splits at every byte that is not an ASCII letter or digit (bytes
 * of non-ASCII UTF-8 characters count as letters, so "café" is one token); whitespace splits
 * at ASCII whitespace; prefix splits like word, and its index also holds every prefix of each
 * token from min_len characters on, so a query token matches any field token it begins;
 * multilingual is treated as word. lowercase folds ASCII letters (other scripts are compared
 * as they are). Tokens shorter than min_len or longer than max_len characters (UTF-8 code
 * points; 0 = no limit) are dropped.
 */
enum ftext_tokenizer {
    FTEXT_WORD = 0,
    FTEXT_WHITESPACE = 1,
    FTEXT_PREFIX = 2,
    FTEXT_MULTILINGUAL = 3,
};

struct ftext_opts {
    uint8_t tokenizer; /* enum ftext_tokenizer */
    bool lowercase;
    uint32_t min_len, max_len; /* characters; 0 = no limit */
};

/* Word tokenizer, lowercase, no length limits: Qdrant's defaults. */
#define FTEXT_OPTS_DEFAULT ((struct ftext_opts){FTEXT_WORD, true, 0, 0})

/* A cursor over the tokens of a string; tokens point into it (not case-folded). */
struct ftext_iter {
    const char *p, *end;
    const struct ftext_opts *o;
};

void ftext_init(struct ftext_iter *it, const struct ftext_opts *o, const char *s, size_t n);

/* The next token kept by the length limits; false at the end. */
bool ftext_next(struct ftext_iter *it, const char **tok, size_t *n);

/* Whether field token f equals query token q, or (prefix tokenizer) begins with it, with the
 * case folding of o. */
bool ftext_tok_match(const struct ftext_opts *o, const char *f, size_t fn, const char *q,
                     size_t qn);

/* Copies s case-folded per o into out (n bytes). */
void ftext_fold(const struct ftext_opts *o, const char *s, size_t n, char *out);

/* Number of UTF-8 characters in s. */
size_t ftext_chars(const char *s, size_t n);

/* The byte length of the first `chars` characters of s (at most n). */
size_t ftext_prefix_bytes(const char *s, size_t n, size_t chars);

#endif
