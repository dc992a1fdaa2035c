/* fuzz_msg.c - libFuzzer target for the protocol decoder (proto/msg.h): no crash, no leak, and
 * whatever decodes re-encodes to bytes that decode and re-encode identically. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken property is a finding: print what broke and abort so libFuzzer saves the input. */
static void broken(const char *what, int rc, const char *errmsg)
{
    if (rc != DV_OK)
        fprintf(stderr, "fuzz_msg: %s: %s (%s)\n", what, dv_errname(rc), errmsg);
    else
        fprintf(stderr, "fuzz_msg: %s\n", what);
    abort();
}

/*
 * The first encoding of a decoded message need not equal the input (the input may use longer
 * integer forms, a score written as an integer, a UUID as 16 bytes, ...), but it is canonical:
 * decoding it and encoding again must give the same bytes, and none of its proper prefixes
 * decodes (the last one is checked).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char errmsg[DV_ERRMSG_SIZE] = "";
    struct msg m1, m2, m3;
    struct buf a = BUF_INIT, b = BUF_INIT;

    int rc = msg_decode(data, size, &m1, errmsg);
    if (rc != DV_OK) {
        if (rc != DV_EPROTO && rc != DV_ETOOBIG && rc != DV_ENOMEM)
            broken("decode of the input failed with an unexpected code", rc, errmsg);
        if (!errmsg[0])
            broken("decode of the input failed without a message", rc, errmsg);
        msg_free(&m1); /* documented as safe after a failure */
        return 0;
    }
    rc = msg_encode(&m1, &a, errmsg);
    /* an encoding may be longer than the input (a 1-byte integer score becomes a float32), so
     * only an input close to PROTO_MAX_MSG may fail with DV_ETOOBIG */
    if (rc == DV_ETOOBIG && size > PROTO_MAX_MSG / 2)
        goto out;
    if (rc != DV_OK)
        broken("encode of a decoded message", rc, errmsg);
    if ((rc = msg_decode(a.data, a.len, &m2, errmsg)) != DV_OK)
        broken("decode of our own encoding", rc, errmsg);
    if ((rc = msg_encode(&m2, &b, errmsg)) != DV_OK)
        broken("second encode", rc, errmsg);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        broken("the second encoding differs from the first", DV_OK, NULL);
    if (m2.type != m1.type || m2.reply != m1.reply || m2.req_id != m1.req_id ||
        m2.err.code != m1.err.code)
        broken("the envelope changed in a round trip", DV_OK, NULL);
    if (msg_decode(a.data, a.len - 1, &m3, errmsg) != DV_EPROTO)
        broken("a truncated encoding did not fail with DV_EPROTO", DV_OK, NULL);
    msg_free(&m3);
    msg_free(&m2);
out:
    msg_free(&m1);
    buf_free(&a);
    buf_free(&b);
    return 0;
}
