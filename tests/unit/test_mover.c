/* test_mover.c - moves and admin commands on a cluster of fake nodes in one process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
int main(void)
{
    return 0;
}
