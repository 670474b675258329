/*
 * zmq_bench: the CurveZMQ baseline of scripts/bench. libzmq with CURVE on
 * and a ZAP handler holding an allow-list of client keys: authenticated,
 * encrypted request/reply and one-way messages between keyed peers over
 * TCP, the job a PeerNet host does. Keys are Z85 text in the environment
 * (not argv: they stay out of ps).
 *
 *   zmq_bench keygen                        prints "public=Z85 secret=Z85"
 *   ZB_SECRET=.. ZB_ALLOW=PUB[,PUB..] zmq_bench server KIND
 *       binds 127.0.0.1 on a free port, prints "port=NNNN", serves until
 *       killed. KIND rep: REP echo. router: ROUTER echo (any number of
 *       DEALERs). pull: PULL counting; an empty message ends a run and
 *       prints "push n=.. seconds=.. per_s=.." (first to last message).
 *   ZB_SERVER=PUB ZB_PUBLIC=.. ZB_SECRET=.. zmq_bench client HOST PORT MODE N SIZE [W]
 *       MODE seq:     REQ, N round trips one after the other
 *       MODE pipe:    DEALER, W (default 256) requests in flight until N are back
 *       MODE push:    PUSH, N one-way messages then the empty one
 *       MODE connect: W threads (default 16) each looping: new REQ socket,
 *                     CURVE handshake, one round trip, close; N in all
 *       MODE idle:    N DEALERs, each handshaked and answered once; prints
 *                     "ready n=N" and holds them until stdin closes
 *       and prints a line like tcp_pingpong's (seq: rtt_us, others: per_s).
 *
 * Exit codes: 0 ok, 1 runtime failure (message on stderr), 2 usage.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define ZB_KEY_Z85 41 /* 40 characters and the NUL */
#define ZB_ALLOW_MAX 16384
#define ZB_SIZE_MAX (16u * 1024 * 1024)
#define ZB_WARMUP 100
#define ZB_SAMPLES_MAX 10000000L

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what) {
    fprintf(stderr, "zmq_bench: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *env_key(const char *name) {
    const char *v = getenv(name);
    if (!v || strlen(v) != ZB_KEY_Z85 - 1) {
        fprintf(stderr, "zmq_bench: %s must hold a 40-character Z85 key\n", name);
        exit(2);
    }
    return v;
}

static long parse_long(const char *s, long lo, long hi, const char *what) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "zmq_bench: %s must be %ld..%ld, got '%s'\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

/* ---- the ZAP handler: CURVE clients on the allow-list get in ---------- */

static uint8_t allow[ZB_ALLOW_MAX][32];
static size_t nallow;

static int recv_str(void *s, char *buf, size_t cap, size_t *len) {
    int n = zmq_recv(s, buf, cap, 0);
    if (n < 0) return -1;
    *len = (size_t)n < cap ? (size_t)n : cap;
    return 0;
}

static void *zap_thread(void *ctx) {
    void *s = zmq_socket(ctx, ZMQ_REP);
    if (!s || zmq_bind(s, "inproc://zeromq.zap.01") != 0) die("zap bind");
    for (;;) {
        char f[7][64];
        size_t len[7];
        int ok = 1;
        for (int i = 0; i < 7; i++) {
            if (recv_str(s, f[i], sizeof f[i], &len[i]) != 0) return NULL;
            int more = 0;
            size_t ml = sizeof more;
            zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
            if (i < 6 && !more) ok = 0;
        }
        int allowed = 0;
        if (ok && len[5] == 5 && memcmp(f[5], "CURVE", 5) == 0 && len[6] == 32)
            for (size_t i = 0; i < nallow && !allowed; i++)
                allowed = memcmp(allow[i], f[6], 32) == 0;
        zmq_send(s, f[0], len[0], ZMQ_SNDMORE); /* version */
        zmq_send(s, f[1], len[1], ZMQ_SNDMORE); /* request id */
        zmq_send(s, allowed ? "200" : "400", 3, ZMQ_SNDMORE);
        zmq_send(s, allowed ? "OK" : "not allowed", allowed ? 2 : 11, ZMQ_SNDMORE);
        zmq_send(s, "", 0, ZMQ_SNDMORE); /* user id */
        zmq_send(s, "", 0, 0);           /* metadata */
    }
}

static void load_allow(void) {
    const char *v = getenv("ZB_ALLOW");
    if (!v) {
        fprintf(stderr, "zmq_bench: ZB_ALLOW (Z85 client keys, comma separated) is not set\n");
        exit(2);
    }
    while (*v && nallow < ZB_ALLOW_MAX) {
        char k[ZB_KEY_Z85];
        size_t n = strcspn(v, ",");
        if (n != ZB_KEY_Z85 - 1) {
            fprintf(stderr, "zmq_bench: ZB_ALLOW: a key is not 40 Z85 characters\n");
            exit(2);
        }
        memcpy(k, v, n);
        k[n] = '\0';
        if (!zmq_z85_decode(allow[nallow], k)) {
            fprintf(stderr, "zmq_bench: ZB_ALLOW: bad Z85\n");
            exit(2);
        }
        nallow++;
        v += n;
        if (*v == ',') v++;
    }
}

static void curve_server(void *s, const char *secret) {
    int one = 1;
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, ZB_KEY_Z85 - 1) != 0 ||
        zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, "bench", 5) != 0)
        die("curve server options");
}

static void curve_client(void *s) {
    int zero = 0;
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, env_key("ZB_SERVER"), ZB_KEY_Z85 - 1) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, env_key("ZB_PUBLIC"), ZB_KEY_Z85 - 1) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, env_key("ZB_SECRET"), ZB_KEY_Z85 - 1) != 0 ||
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) != 0)
        die("curve client options");
}

static int run_server(const char *kind) {
    const char *secret = env_key("ZB_SECRET");
    load_allow();
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, ZB_ALLOW_MAX + 64);
    pthread_t zap;
    pthread_create(&zap, NULL, zap_thread, ctx);
    int type = strcmp(kind, "rep") == 0      ? ZMQ_REP
               : strcmp(kind, "router") == 0 ? ZMQ_ROUTER
               : strcmp(kind, "pull") == 0   ? ZMQ_PULL
                                             : -1;
    if (type < 0) {
        fprintf(stderr, "zmq_bench: KIND is rep, router or pull\n");
        return 2;
    }
    void *s = zmq_socket(ctx, type);
    if (!s) die("socket");
    curve_server(s, secret);
    int hwm = 0; /* unbounded queues: a pipelined client is never refused */
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0) die("bind");
    char ep[128];
    size_t epl = sizeof ep;
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &epl);
    printf("port=%s\n", strrchr(ep, ':') + 1);
    fflush(stdout);
    zmq_msg_t m;
    zmq_msg_init(&m);
    long count = 0;
    double t0 = 0;
    size_t last = 0;
    for (;;) {
        if (zmq_msg_recv(&m, s, 0) < 0) die("recv");
        if (type == ZMQ_PULL) {
            if (zmq_msg_size(&m) == 0) {
                double secs = now_s() - t0;
                printf("push n=%ld size=%zu seconds=%.3f per_s=%.0f\n", count, last, secs,
                       secs > 0 ? (double)count / secs : 0);
                fflush(stdout);
                count = 0;
                continue;
            }
            if (count++ == 0) t0 = now_s();
            last = zmq_msg_size(&m);
            continue;
        }
        int more = zmq_msg_more(&m);
        if (zmq_msg_send(&m, s, more ? ZMQ_SNDMORE : 0) < 0) die("send");
    }
}

/* ---- clients ------------------------------------------------------------ */

typedef struct {
    void *ctx;
    const char *ep;
    long n;
    size_t size;
    long done;
} conn_job;

static void *connect_loop(void *arg) {
    conn_job *j = arg;
    char *buf = malloc(j->size + 1);
    memset(buf, 7, j->size + 1);
    for (long i = 0; i < j->n; i++) {
        void *s = zmq_socket(j->ctx, ZMQ_REQ);
        if (!s) die("socket");
        curve_client(s);
        if (zmq_connect(s, j->ep) != 0) die("connect");
        if (zmq_send(s, buf, j->size, 0) < 0) die("send");
        if (zmq_recv(s, buf, j->size + 1, 0) != (int)j->size) die("recv");
        zmq_close(s);
        j->done++;
    }
    free(buf);
    return NULL;
}

static int run_client(const char *host, const char *port, const char *mode, long n, size_t size,
                      long w) {
    char ep[300];
    snprintf(ep, sizeof ep, "tcp://%s:%s", host, port);
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, (int)(n + 64 < 1000000 ? n + 64 : 1000000));
    char *buf = malloc(size + 1);
    memset(buf, 7, size + 1);
    if (strcmp(mode, "connect") == 0) {
        if (w < 1) w = 16;
        conn_job *jobs = calloc((size_t)w, sizeof *jobs);
        pthread_t *t = calloc((size_t)w, sizeof *t);
        double t0 = now_s();
        for (long i = 0; i < w; i++) {
            jobs[i] = (conn_job){ctx, ep, n / w + (i < n % w), size, 0};
            pthread_create(&t[i], NULL, connect_loop, &jobs[i]);
        }
        for (long i = 0; i < w; i++)
            pthread_join(t[i], NULL);
        double secs = now_s() - t0;
        printf("connect n=%ld size=%zu parallel=%ld seconds=%.3f per_s=%.0f\n", n, size, w, secs,
               (double)n / secs);
        return 0;
    }
    if (strcmp(mode, "idle") == 0) {
        void **ss = calloc((size_t)n, sizeof *ss);
        for (long i = 0; i < n; i++) {
            ss[i] = zmq_socket(ctx, ZMQ_DEALER);
            if (!ss[i]) die("socket");
            curve_client(ss[i]);
            if (zmq_connect(ss[i], ep) != 0) die("connect");
            if (zmq_send(ss[i], buf, size, 0) < 0) die("send");
            if (zmq_recv(ss[i], buf, size + 1, 0) != (int)size) die("recv");
        }
        printf("ready n=%ld\n", n);
        fflush(stdout);
        while (read(0, buf, 1) > 0) {
        }
        return 0;
    }
    int type = strcmp(mode, "seq") == 0    ? ZMQ_REQ
               : strcmp(mode, "pipe") == 0 ? ZMQ_DEALER
               : strcmp(mode, "push") == 0 ? ZMQ_PUSH
                                           : -1;
    if (type < 0) {
        fprintf(stderr, "zmq_bench: MODE is seq, pipe, push, connect or idle\n");
        return 2;
    }
    void *s = zmq_socket(ctx, type);
    if (!s) die("socket");
    curve_client(s);
    int hwm = 0;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_connect(s, ep) != 0) die("connect");
    if (type == ZMQ_PUSH) {
        double t0 = now_s();
        for (long i = 0; i < n; i++)
            if (zmq_send(s, buf, size ? size : 1, 0) < 0) die("send");
        if (zmq_send(s, "", 0, 0) < 0) die("send");
        double secs = now_s() - t0;
        printf("push_sent n=%ld seconds=%.3f per_s=%.0f\n", n, secs, (double)n / secs);
        int linger = -1; /* deliver everything before leaving */
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(s);
        zmq_ctx_term(ctx);
        return 0;
    }
    if (w < 1) w = 256;
    if (type == ZMQ_REQ) w = 1;
    for (int i = 0; i < ZB_WARMUP; i++) {
        if (zmq_send(s, buf, size, 0) < 0) die("send");
        if (zmq_recv(s, buf, size + 1, 0) != (int)size) die("recv");
    }
    /* seq: each round trip's time, for the median (the first ZB_SAMPLES_MAX) */
    long ns = type == ZMQ_REQ ? (n < ZB_SAMPLES_MAX ? n : ZB_SAMPLES_MAX) : 0, got = 0;
    double *rtt = ns ? malloc((size_t)ns * sizeof *rtt) : NULL;
    double t0 = now_s(), ts = t0;
    long sent = 0, recvd = 0;
    while (recvd < n) {
        while (sent < n && sent - recvd < w) {
            if (rtt) ts = now_s();
            if (zmq_send(s, buf, size, 0) < 0) die("send");
            sent++;
        }
        if (zmq_recv(s, buf, size + 1, 0) != (int)size) die("recv");
        if (rtt && got < ns) rtt[got++] = now_s() - ts;
        recvd++;
    }
    double secs = now_s() - t0;
    if (type == ZMQ_REQ) {
        qsort(rtt, (size_t)got, sizeof *rtt, cmp_double);
        printf("seq n=%ld size=%zu seconds=%.3f rtt_us=%.1f p50_us=%.1f per_s=%.0f\n", n, size,
               secs, secs * 1e6 / (double)n, rtt[got / 2] * 1e6, (double)n / secs);
        free(rtt);
    } else
        printf("pipe n=%ld size=%zu window=%ld seconds=%.3f per_s=%.0f mib_s=%.1f\n", n, size, w,
               secs, (double)n / secs, (double)n * (double)size / secs / (1024.0 * 1024.0));
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "keygen") == 0) {
        char pub[ZB_KEY_Z85], sec[ZB_KEY_Z85];
        if (zmq_curve_keypair(pub, sec) != 0) die("keygen (libzmq without CURVE?)");
        printf("public=%s secret=%s\n", pub, sec);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "server") == 0) return run_server(argv[2]);
    if ((argc == 7 || argc == 8) && strcmp(argv[1], "client") == 0) {
        parse_long(argv[3], 1, 65535, "PORT");
        long n = parse_long(argv[5], 1, 1000000000L, "N");
        long size = parse_long(argv[6], 0, ZB_SIZE_MAX, "SIZE");
        long w = argc == 8 ? parse_long(argv[7], 1, 65536, "W") : 0;
        return run_client(argv[2], argv[3], argv[4], n, (size_t)size, w);
    }
    fprintf(stderr, "usage: zmq_bench keygen | server rep|router|pull | client HOST PORT "
                    "seq|pipe|push|connect|idle N SIZE [W]\n");
    return 2;
}
