/* ftext.c - tokenizing text for full-text matching (word, whitespace, prefix). */
#include "ftext.h"

#include <string.h>

static bool is_word(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void ftext_init(struct ftext_iter *it, const struct ftext_opts *o, const char *s, size_t n)
{
    it->p = s;
    it->end = s + n;
    it->o = o;
}

size_t ftext_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

size_t ftext_prefix_bytes(const char *s, size_t n, size_t chars)
{
    size_t c = 0, i = 0;
    for (; i < n; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (c == chars)
                return i;
            c++;
        }
    }
    return n;
}

bool ftext_next(struct ftext_iter *it, const char **tok, size_t *n)
{
    bool ws = it->o->tokenizer == FTEXT_WHITESPACE;
    for (;;) {
        while (it->p < it->end &&
               (ws ? is_space((unsigned char)*it->p) : !is_word((unsigned char)*it->p)))
            it->p++;
        if (it->p == it->end)
            return false;
        const char *s = it->p;
        while (it->p < it->end &&
               (ws ? !is_space((unsigned char)*it->p) : is_word((unsigned char)*it->p)))
            it->p++;
        size_t len = (size_t)(it->p - s), chars = ftext_chars(s, len);
        /* A prefix index keeps tokens longer than max_len: their prefixes are indexed. */
        if ((it->o->min_len && chars < it->o->min_len) ||
            (it->o->max_len && chars > it->o->max_len && it->o->tokenizer != FTEXT_PREFIX))
            continue;
        *tok = s;
        *n = len;
        return true;
    }
}

static unsigned char fold(const struct ftext_opts *o, unsigned char c)
{
    return o->lowercase && c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

bool ftext_tok_match(const struct ftext_opts *o, const char *f, size_t fn, const char *q, size_t qn)
{
    if (o->tokenizer == FTEXT_PREFIX ? qn > fn : qn != fn)
        return false;
    for (size_t i = 0; i < qn; i++)
        if (fold(o, (unsigned char)f[i]) != fold(o, (unsigned char)q[i]))
            return false;
    return true;
}

void ftext_fold(const struct ftext_opts *o, const char *s, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)fold(o, (unsigned char)s[i]);
}
