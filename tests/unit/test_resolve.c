/* test_resolve.c - read consistency's resolution of several replicas' answers (resolve.h):
 * points held by enough answers with the same content, counts reached by enough answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "resolve.h"

static struct msg_hit hit(uint64_t id, float *vec, const char *payload)
{
    struct msg_hit h = {.id = pid_num(id), .score = (float)id, .vec = vec, .dim = vec ? 2 : 0};
    if (payload)
        h.payload = (struct msg_bytes){(const uint8_t *)payload, (uint32_t)strlen(payload)};
    return h;
}

static void test_hits(void **state)
{
    (void)state;
    float v1[2] = {1, 2}, v1b[2] = {1, 3};
    /* replica a: 1, 2, 3; b: 2, 3 (3 with another vector: a write in flight), 4; c: 1, 2, 3 */
    struct msg_hit a[] = {hit(1, v1, "x"), hit(2, v1, NULL), hit(3, v1, "p")};
    struct msg_hit b[] = {hit(2, v1, NULL), hit(3, v1b, "p"), hit(4, v1, NULL)};
    struct msg_hit c[] = {hit(1, v1, "x"), hit(2, v1, NULL), hit(3, v1, "p")};
    struct msg_hits lists[3] = {{a, 3}, {b, 3}, {c, 3}};
    struct msg_hit out[9];
    uint32_t n;
    /* all three: only 2 is the same everywhere */
    assert_int_equal(resolve_hits(lists, 3, 3, out, &n), DV_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id.lo, 2);
    /* a majority (2 of 3): 1, 2 and 3 with a's and c's vector; 4 is on one replica only */
    assert_int_equal(resolve_hits(lists, 3, 2, out, &n), DV_OK);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].id.lo, 1);
    assert_int_equal(out[1].id.lo, 2);
    assert_int_equal(out[2].id.lo, 3);
    assert_memory_equal(out[2].vec, v1, sizeof v1);
    /* the payload counts too */
    struct msg_hit d[] = {hit(1, v1, "y")};
    struct msg_hits two[2] = {{a, 1}, {d, 1}};
    assert_int_equal(resolve_hits(two, 2, 2, out, &n), DV_OK);
    assert_int_equal(n, 0);
    /* one answer: itself; empty answers */
    assert_int_equal(resolve_hits(lists, 1, 1, out, &n), DV_OK);
    assert_int_equal(n, 3);
    struct msg_hits none[2] = {{NULL, 0}, {NULL, 0}};
    assert_int_equal(resolve_hits(none, 2, 2, out, &n), DV_OK);
    assert_int_equal(n, 0);
}

/* Distinct ids, to tell answers that agree on every point from answers apart (router_read.c
 * reads again while resolve_hits keeps fewer points than the answers hold). */
static void test_distinct(void **state)
{
    (void)state;
    float v1[2] = {1, 2}, v1b[2] = {1, 3};
    struct msg_hit a[] = {hit(1, v1, "x"), hit(2, v1, NULL), hit(3, v1, "p")};
    struct msg_hit b[] = {hit(2, v1, NULL), hit(3, v1b, "p"), hit(4, v1, NULL)};
    struct msg_hits lists[2] = {{a, 3}, {b, 3}};
    struct msg_hit out[6];
    uint32_t n;
    assert_int_equal(resolve_distinct(lists, 2, NULL), 4);
    assert_int_equal(resolve_hits(lists, 2, 2, out, &n), DV_OK);
    assert_int_equal(n, 1); /* apart: 1 and 4 on one replica, 3 with two vectors */
    struct pid below = pid_num(3);
    assert_int_equal(resolve_distinct(lists, 2, &below), 2); /* 1 and 2 */
    struct msg_hits same[2] = {{a, 3}, {a, 3}};
    assert_int_equal(resolve_distinct(same, 2, NULL), 3);
    assert_int_equal(resolve_hits(same, 2, 2, out, &n), DV_OK);
    assert_int_equal(n, 3); /* alike */
    struct msg_hits none[2] = {{NULL, 0}, {NULL, 0}};
    assert_int_equal(resolve_distinct(none, 2, NULL), 0);
}

static void test_count(void **state)
{
    (void)state;
    uint64_t c[3] = {10, 12, 11};
    assert_int_equal(resolve_count(c, 3, 3), 10); /* all reach 10 */
    assert_int_equal(resolve_count(c, 3, 2), 11); /* two of three reach 11 */
    assert_int_equal(resolve_count(c, 3, 1), 12);
    assert_int_equal(resolve_count(c, 1, 1), 10);
    assert_int_equal(resolve_count(c, 0, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits),
        cmocka_unit_test(test_distinct),
        cmocka_unit_test(test_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
