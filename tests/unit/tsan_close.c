/*
 * tsan_close.c - show ThreadSanitizer the descriptors libuv closes (TSan builds only).
 *
 * Debian's libuv is built without TSan and, on Linux, closes descriptors with
 * syscall(SYS_close, fd) (uv__close_nocancel), past TSan's close() interceptor. TSan then
 * believes the descriptor is still open, and when the kernel hands the same number to a
 * socket or file on another thread it reports a "data race" on the descriptor ("Location is
 * file descriptor N created by thread T.."), between two uses that are ordered by the close.
 * libuv's own sources do for clang+TSan builds what this file does for them: tell TSan of the
 * close. This definition of syscall() is found before glibc's by libuv's PLT; SYS_close goes
 * through close() (intercepted by TSan), every other number to glibc's syscall() unchanged.
 * It changes no behaviour: close(fd) and syscall(SYS_close, fd) are the same system call.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef long (*syscall_fn)(long, ...);

__attribute__((visibility("default"))) long syscall(long number, ...)
{
    static syscall_fn real_syscall;
    syscall_fn real;
    va_list ap;
    long a[6];

    va_start(ap, number);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_close)
        return close((int)a[0]);
    real = __atomic_load_n(&real_syscall, __ATOMIC_ACQUIRE);
    if (real == NULL) {
        real = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
        __atomic_store_n(&real_syscall, real, __ATOMIC_RELEASE);
    }
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
