/* test_terms.c - the log-matching rule over primary-term histories (terms.h): where two
 * replicas part, in the cases a failover produces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "terms.h"

static void test_common(void **state)
{
    (void)state;
    /* Same term, one ahead: the shorter one's end. */
    struct msg_term a[] = {{1, 1}}, b[] = {{1, 1}};
    assert_int_equal(terms_common(a, 1, 50, b, 1, 40), 40);
    assert_int_equal(terms_common(a, 1, 40, b, 1, 50), 40);
    /* An old primary of term 1 wrote 101..105, no one acknowledged them; the new primary's
     * term 2 starts at 101: they share 1..100. */
    struct msg_term old[] = {{1, 1}}, np[] = {{1, 1}, {2, 101}};
    assert_int_equal(terms_common(old, 1, 105, np, 2, 150), 100);
    /* It had nothing beyond: nothing to cut. */
    assert_int_equal(terms_common(old, 1, 100, np, 2, 150), 100);
    /* A replica that learned term 2 at LSN 95 and then missed writes: all of it is shared. */
    struct msg_term behind[] = {{1, 1}, {2, 96}};
    assert_int_equal(terms_common(behind, 2, 95, np, 2, 150), 95);
    /* It learned term 3 (a primary for a moment, its records never sent) while the new
     * primary went 2 -> 4: they share what term 2 gave both. */
    struct msg_term t3[] = {{1, 1}, {2, 101}, {3, 121}}, t4[] = {{1, 1}, {2, 101}, {4, 118}};
    assert_int_equal(terms_common(t3, 3, 125, t4, 3, 160), 117);
    /* An empty range (learned a term, got none of its records) matches nothing. */
    struct msg_term empty[] = {{1, 1}, {5, 60}}, other[] = {{1, 1}, {4, 50}, {5, 70}};
    assert_int_equal(terms_common(empty, 2, 59, other, 3, 90), 49);
    /* A copy holds the source's log: (term, 1). */
    struct msg_term copy[] = {{4, 1}};
    assert_int_equal(terms_common(copy, 1, 130, t4, 3, 160), 130);
    /* No shared term; one side empty or holding nothing. */
    struct msg_term x[] = {{7, 1}};
    assert_int_equal(terms_common(x, 1, 10, a, 1, 10), 0);
    assert_int_equal(terms_common(NULL, 0, 10, a, 1, 10), 0);
    assert_int_equal(terms_common(a, 1, 0, b, 1, 10), 0);
    assert_int_equal(terms_common(a, 1, 10, b, 1, 0), 0);
}

static void test_push(void **state)
{
    (void)state;
    struct msg_term h[NODE_MAX_TERMS];
    uint32_t n = 0;
    for (uint64_t t = 1; t <= NODE_MAX_TERMS + 5; t++)
        terms_push(h, &n, t, t * 10);
    assert_int_equal(n, NODE_MAX_TERMS);
    assert_int_equal(h[0].term, 6); /* the oldest went */
    assert_int_equal(h[NODE_MAX_TERMS - 1].term, NODE_MAX_TERMS + 5);
    assert_int_equal(h[NODE_MAX_TERMS - 1].start, (NODE_MAX_TERMS + 5) * 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common),
        cmocka_unit_test(test_push),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
