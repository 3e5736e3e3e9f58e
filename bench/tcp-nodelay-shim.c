/*
 * LD_PRELOAD shim that sets TCP_NODELAY on every socket the process accepts.
 *
 * It serves one experiment in docs/benchmarks.md: measuring stacd as it would
 * run if it disabled Nagle's algorithm on its connections, without rebuilding
 * it. Build and use:
 *
 *   gcc -shared -fPIC -O2 -o /tmp/tcp-nodelay-shim.so bench/tcp-nodelay-shim.c -ldl
 *   bench/run ... --stacd-env LD_PRELOAD=/tmp/tcp-nodelay-shim.so
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static int set_nodelay(int fd) {
    if (fd >= 0) {
        int one = 1;
        /* A failure (such as on a Unix socket) leaves the socket as it was. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

int accept4(int socket, struct sockaddr *address, socklen_t *length, int flags) {
    static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
    if (!real_accept4) {
        real_accept4 = dlsym(RTLD_NEXT, "accept4");
    }
    return set_nodelay(real_accept4(socket, address, length, flags));
}

int accept(int socket, struct sockaddr *address, socklen_t *length) {
    static int (*real_accept)(int, struct sockaddr *, socklen_t *);
    if (!real_accept) {
        real_accept = dlsym(RTLD_NEXT, "accept");
    }
    return set_nodelay(real_accept(socket, address, length));
}
