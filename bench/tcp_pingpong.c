/*
 * tcp_pingpong: the raw-TCP baseline that scripts/bench compares peernet
 * hosts against. Plain blocking POSIX sockets with TCP_NODELAY on both ends,
 * frames of a u32 big-endian length + body, no crypto, no event loop: the
 * fastest a request/response exchange over loopback TCP gets.
 *
 *   tcp_pingpong server PORT [BIND_ADDR]
 *       Binds BIND_ADDR (default 127.0.0.1) on PORT (0: any free port),
 *       prints "port=NNNN" on stdout, accepts one client and echoes every
 *       frame back. Exits 0 when the client disconnects at a frame boundary.
 *
 *   tcp_pingpong client HOST PORT MODE N SIZE [WINDOW]
 *       MODE seq:  N round trips one after the other (wait for each echo).
 *       MODE pipe: keep WINDOW (default 100) frames in flight until N echoes are back.
 *       After WARMUP untimed round trips, prints one line such as
 *           seq n=20000 size=64 seconds=1.234 rtt_us=61.7 per_s=16207
 *           pipe n=200000 size=64 window=100 seconds=0.5 per_s=400000 mib_s=25.9
 *
 * Exit codes: 0 ok, 1 runtime failure (message on stderr), 2 usage.
 */
#include <errno.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define TP_HEADER 4
#define TP_BODY_MAX (16u * 1024 * 1024) /* bounds every buffer below */
#define TP_N_MAX 1000000000L
#define TP_WINDOW 100 /* frames in flight in pipe mode unless WINDOW is given */
#define TP_WINDOW_MAX 65536
static long tp_window = TP_WINDOW;
#define TP_WARMUP 100
#define TP_IO_CHUNK 65536 /* read size; the server's buffer never shrinks below it */
/* The pipe sender writes from a run of ready-made frames; more than this
 * many bytes of them buys no fewer syscalls. */
#define TP_SENDBUF_MAX (1024u * 1024)

__attribute__((noreturn)) static void die(const char *what) {
    fprintf(stderr, "tcp_pingpong: %s: %s\n", what, strerror(errno));
    exit(1);
}

__attribute__((noreturn)) static void fail(const char *msg) {
    fprintf(stderr, "tcp_pingpong: %s\n", msg);
    exit(1);
}

__attribute__((noreturn)) static void usage(void) {
    fprintf(stderr, "usage: tcp_pingpong server PORT [BIND_ADDR]\n"
                    "       tcp_pingpong client HOST PORT seq|pipe N SIZE [WINDOW]\n");
    exit(2);
}

static long parse_long(const char *s, long lo, long hi, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "tcp_pingpong: %s must be an integer in %ld..%ld, got \"%s\"\n", what, lo,
                hi, s);
        exit(2);
    }
    return v;
}

static double now_s(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) die("clock_gettime");
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void set_nodelay(int fd) {
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        die("setsockopt TCP_NODELAY");
}

static void write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, 0);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("send");
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Returns 0 on a clean EOF before the first byte; any other EOF is an error. */
static int read_all(int fd, uint8_t *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, p + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("recv");
        }
        if (r == 0) {
            if (got == 0) return 0;
            fail("peer closed the connection in the middle of a frame");
        }
        got += (size_t)r;
    }
    return 1;
}

/* ---- server ------------------------------------------------------------- */

static int listen_on(const char *addr, long port) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "tcp_pingpong: BIND_ADDR must be a numeric IPv4 address, got \"%s\"\n",
                addr);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        die("setsockopt SO_REUSEADDR");
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("bind");
    if (listen(fd, 1) != 0) die("listen");
    return fd;
}

static int run_server(const char *addr, long port) {
    int lfd = listen_on(addr, port);
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    if (getsockname(lfd, (struct sockaddr *)&bound, &blen) != 0) die("getsockname");
    /* scripts/bench waits for this line before it starts the client. */
    if (printf("port=%u\n", (unsigned)ntohs(bound.sin_port)) < 0 || fflush(stdout) != 0)
        die("writing the port to stdout");

    int fd;
    do {
        fd = accept(lfd, NULL, NULL);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) die("accept");
    if (close(lfd) != 0) die("close listener");
    set_nodelay(fd);

    size_t cap = TP_IO_CHUNK, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) fail("out of memory for the receive buffer");
    for (;;) {
        if (cap - len < TP_IO_CHUNK / 2 && len >= TP_HEADER) {
            /* Only a frame longer than the buffer gets here: grow to fit it. */
            size_t need = TP_HEADER + (size_t)get_be32(buf);
            if (need > cap) {
                uint8_t *nb = realloc(buf, need);
                if (!nb) fail("out of memory for a large frame");
                buf = nb;
                cap = need;
            }
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("recv");
        }
        if (r == 0) {
            if (len != 0) fail("client closed the connection in the middle of a frame");
            break;
        }
        len += (size_t)r;

        /* Echo every complete frame in one send: as soon as it is all here. */
        size_t done = 0;
        while (len - done >= TP_HEADER) {
            uint32_t body = get_be32(buf + done);
            if (body > TP_BODY_MAX) fail("frame longer than 16 MiB");
            if (len - done - TP_HEADER < body) break;
            done += TP_HEADER + body;
        }
        if (done > 0) {
            write_all(fd, buf, done);
            memmove(buf, buf + done, len - done);
            len -= done;
        }
    }
    free(buf);
    if (close(fd) != 0) die("close");
    return 0;
}

/* ---- client ------------------------------------------------------------- */

static int connect_to(const char *host, const char *port) {
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "tcp_pingpong: cannot resolve %s:%s: %s\n", host, port, gai_strerror(rc));
        exit(1);
    }
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    int saved = errno;
    freeaddrinfo(res);
    errno = saved;
    if (fd < 0) die("connect");
    set_nodelay(fd);
    return fd;
}

typedef struct client {
    int fd;
    size_t frame;   /* header + body */
    uint8_t *sendb; /* `nframes` copies of the frame, back to back */
    size_t nframes;
    uint8_t *recvb; /* one frame, or TP_IO_CHUNK for pipe mode, whichever is larger */
    size_t recvcap;
} client;

/* Round-trip times of a seq run for its median (the first TP_SAMPLES_MAX). */
#define TP_SAMPLES_MAX 10000000L
static double *samples;
static long nsamples;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void seq_round_trips(client *c, long n) {
    for (long i = 0; i < n; i++) {
        double t0 = samples ? now_s() : 0;
        write_all(c->fd, c->sendb, c->frame);
        if (!read_all(c->fd, c->recvb, c->frame)) fail("server closed the connection");
        if (memcmp(c->recvb, c->sendb, c->frame) != 0) fail("echo differs from the frame sent");
        if (samples && nsamples < TP_SAMPLES_MAX) samples[nsamples++] = now_s() - t0;
    }
}

/* The byte stream both ways is the same frame repeated, so a received chunk
 * is checked against the send run at the same offset within a frame. */
static void check_echo(const client *c, uint64_t stream_off, const uint8_t *p, size_t n) {
    while (n > 0) {
        size_t at = (size_t)(stream_off % c->frame);
        size_t k = c->frame - at < n ? c->frame - at : n;
        if (memcmp(p, c->sendb + at, k) != 0) fail("echo differs from the frames sent");
        p += k;
        n -= k;
        stream_off += k;
    }
}

/* poll + MSG_DONTWAIT so that the client never blocks in send while the
 * server blocks sending echoes back to it: no deadlock for large frames. */
static void pipe_round_trips(client *c, long n) {
    uint64_t frame = c->frame, sent = 0, recvd = 0, total = (uint64_t)n * frame;
    while (recvd < total) {
        uint64_t limit = recvd / frame + (uint64_t)tp_window;
        if (limit > (uint64_t)n) limit = (uint64_t)n;
        limit *= frame;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (sent < limit) pfd.events |= POLLOUT;
        int pr = poll(&pfd, 1, -1);
        if (pr < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        if (pfd.revents & (POLLERR | POLLNVAL)) fail("socket error while pipelining");
        if (pfd.revents & POLLOUT) {
            size_t at = (size_t)(sent % frame);
            size_t run = c->nframes * c->frame - at;
            if (run > limit - sent) run = (size_t)(limit - sent);
            ssize_t w = send(c->fd, c->sendb + at, run, MSG_DONTWAIT);
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) die("send");
            if (w > 0) sent += (uint64_t)w;
        }
        if (pfd.revents & (POLLIN | POLLHUP)) {
            size_t want = c->recvcap;
            if (want > total - recvd) want = (size_t)(total - recvd);
            ssize_t r = recv(c->fd, c->recvb, want, MSG_DONTWAIT);
            if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) die("recv");
            if (r == 0) fail("server closed the connection");
            if (r > 0) {
                if ((uint64_t)r > sent - recvd) fail("server sent more than was sent to it");
                check_echo(c, recvd, c->recvb, (size_t)r);
                recvd += (uint64_t)r;
            }
        }
    }
}

static int run_client(const char *host, const char *port, const char *mode, long n, long size) {
    int pipelined;
    if (strcmp(mode, "seq") == 0)
        pipelined = 0;
    else if (strcmp(mode, "pipe") == 0)
        pipelined = 1;
    else
        usage();

    client c;
    c.frame = TP_HEADER + (size_t)size;
    c.nframes = TP_SENDBUF_MAX / c.frame;
    if (c.nframes > (size_t)tp_window) c.nframes = (size_t)tp_window;
    if (c.nframes < 1) c.nframes = 1;
    c.sendb = malloc(c.nframes * c.frame);
    c.recvcap = c.frame > TP_IO_CHUNK ? c.frame : TP_IO_CHUNK;
    c.recvb = malloc(c.recvcap);
    if (!c.sendb || !c.recvb) fail("out of memory for the frame buffers");
    for (size_t f = 0; f < c.nframes; f++) {
        uint8_t *p = c.sendb + f * c.frame;
        put_be32(p, (uint32_t)size);
        for (long i = 0; i < size; i++)
            p[TP_HEADER + i] = (uint8_t)(i * 131 + 7);
    }

    c.fd = connect_to(host, port);
    seq_round_trips(&c, TP_WARMUP); /* first-touch costs stay out of the figure */

    if (!pipelined) {
        samples = malloc((size_t)(n < TP_SAMPLES_MAX ? n : TP_SAMPLES_MAX) * sizeof *samples);
        if (!samples) fail("out of memory for the samples");
    }
    double t0 = now_s();
    if (pipelined)
        pipe_round_trips(&c, n);
    else
        seq_round_trips(&c, n);
    double secs = now_s() - t0;
    if (secs <= 0) secs = 1e-9;

    if (close(c.fd) != 0) die("close");
    free(c.sendb);
    free(c.recvb);

    double per_s = (double)n / secs;
    int pr;
    if (pipelined)
        pr = printf("pipe n=%ld size=%ld window=%ld seconds=%.3f per_s=%.0f mib_s=%.1f\n", n, size,
                    tp_window, secs, per_s, per_s * (double)size / (1024.0 * 1024.0));
    else {
        qsort(samples, (size_t)nsamples, sizeof *samples, cmp_double);
        pr = printf("seq n=%ld size=%ld seconds=%.3f rtt_us=%.1f p50_us=%.1f per_s=%.0f\n", n, size,
                    secs, secs * 1e6 / (double)n, samples[nsamples / 2] * 1e6, per_s);
        free(samples);
    }
    if (pr < 0 || fflush(stdout) != 0) die("writing the result to stdout");
    return 0;
}

int main(int argc, char **argv) {
    /* A peer that goes away must show up as EPIPE from send, not a silent kill. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) die("signal");
    if (argc >= 3 && argc <= 4 && strcmp(argv[1], "server") == 0) {
        long port = parse_long(argv[2], 0, 65535, "PORT");
        return run_server(argc == 4 ? argv[3] : "127.0.0.1", port);
    }
    if ((argc == 7 || argc == 8) && strcmp(argv[1], "client") == 0) {
        if (argc == 8) tp_window = parse_long(argv[7], 1, TP_WINDOW_MAX, "WINDOW");
        parse_long(argv[3], 1, 65535, "PORT");
        long n = parse_long(argv[5], 1, TP_N_MAX, "N");
        long size = parse_long(argv[6], 0, TP_BODY_MAX, "SIZE");
        return run_client(argv[2], argv[3], argv[4], n, size);
    }
    usage();
    return 2;
}
