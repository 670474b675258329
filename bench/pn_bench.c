/*
 * pn_bench: peernet hosts through the C API (include/peernet/peernet.h)
 * for the scripts/bench rows a CLI cannot drive: a C-handler server, many
 * fresh connections, many idle ones. Keys are hex; secrets come from files
 * or the environment, never argv.
 *
 *   pn_bench keys N > FILE       N identities, one "SECRET PUBLIC" line each
 *   PN_BENCH_SECRET=HEX pn_bench server KEYSFILE
 *       trusts every public key of KEYSFILE, listens on 127.0.0.1:0 with no
 *       handshake budget and room for 20,000 connections, prints
 *       "port=NNNN key=HEX", serves until killed: echo (answers its args),
 *       note (counts, a send), count (answers the count).
 *   pn_bench connect ADDR SERVERKEY KEYSFILE N PARALLEL SIZE
 *       PARALLEL loops, loop i a host with identity i of KEYSFILE: new host,
 *       dial, handshake, one echo call of SIZE bytes, close; N in all.
 *       Prints "connect n=.. parallel=.. seconds=.. per_s=..".
 *   pn_bench idle ADDR SERVERKEY KEYSFILE N
 *       N hosts, identities 1..N, each connected and answered once; prints
 *       "ready n=N" and holds them until stdin closes.
 *
 * Exit codes: 0 ok, 1 runtime failure (message on stderr), 2 usage.
 */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/etf.h"
#include "peernet/peernet.h"

#define KEYS_MAX 20000
#define CONNS_MAX 20000
#define SIZE_MAX_B (1u << 20)

typedef struct ident {
    uint8_t secret[32], pub[32];
} ident;

static ident *ids;
static size_t nids;
static uv_loop_t *loop;

static void fail(const char *what, const char *msg) {
    fprintf(stderr, "pn_bench: %s: %s\n", what, msg);
    exit(1);
}

static long parse_long(const char *s, long lo, long hi, const char *what) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "pn_bench: %s must be %ld..%ld, got '%s'\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

static void hex32(const char *hex, uint8_t out[32], const char *what) {
    size_t n = 0;
    if (strlen(hex) != 64 || sodium_hex2bin(out, 32, hex, 64, NULL, &n, NULL) != 0 || n != 32) {
        fprintf(stderr, "pn_bench: %s must be 64 hex digits\n", what);
        exit(2);
    }
}

static void load_keys(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) fail(path, "cannot open");
    ids = calloc(KEYS_MAX, sizeof *ids);
    char s[80], p[80];
    while (nids < KEYS_MAX && fscanf(f, "%79s %79s", s, p) == 2) {
        hex32(s, ids[nids].secret, "a secret");
        hex32(p, ids[nids].pub, "a public key");
        nids++;
    }
    fclose(f);
}

static pn_host *new_host(const uint8_t secret[32], const char *listen) {
    pn_host_config c;
    pn_host_config_init(&c);
    c.secret = secret;
    c.listen = listen;
    c.discovery = 0;
    c.netmon = 0;
    c.handshake_rate = 0; /* the flood budget is a policy, not a cost: measured apart */
    c.max_connections = CONNS_MAX;
    c.max_pending_handshakes = CONNS_MAX;
    c.max_pending_per_source = CONNS_MAX;
    pn_err e;
    pn_host *h = pn_host_new(loop, &c, &e);
    if (!h) fail("host", e.msg);
    return h;
}

/* ---- server ----------------------------------------------------------- */

static uint64_t noted;

static void h_echo(pn_host *h, pn_request *req, void *ud) {
    (void)h, (void)ud;
    size_t len;
    const uint8_t *a = pn_request_args(req, &len);
    pn_request_reply(req, a, len, NULL);
}

static void h_note(pn_host *h, pn_request *req, void *ud) {
    (void)h, (void)req, (void)ud;
    noted++;
}

static void h_count(pn_host *h, pn_request *req, void *ud) {
    (void)h, (void)ud;
    pn_etf_buf b;
    pn_etf_buf_init(&b, 64);
    pn_etf_put_int(&b, (int64_t)noted, NULL);
    pn_request_reply(req, b.data, b.len, NULL);
    free(b.data);
}

static void expose(pn_host *h, const char *name, pn_handler_fn fn) {
    pn_handler_def d = {.handler = fn};
    pn_err e;
    if (pn_host_expose(h, name, &d, &e) != 0) fail(name, e.msg);
}

static int run_server(const char *keys) {
    const char *sx = getenv("PN_BENCH_SECRET");
    if (!sx) fail("PN_BENCH_SECRET", "not set");
    uint8_t secret[32];
    hex32(sx, secret, "PN_BENCH_SECRET");
    load_keys(keys);
    pn_host *h = new_host(secret, "127.0.0.1:0");
    for (size_t i = 0; i < nids; i++)
        if (pn_host_trust(h, ids[i].pub, NULL, NULL) != 0) fail("trust", "refused");
    expose(h, "echo", h_echo);
    expose(h, "note", h_note);
    expose(h, "count", h_count);
    uint8_t pub[32];
    char hex[65];
    pn_host_public_key(h, pub);
    printf("port=%d key=%s\n", pn_host_port(h), sodium_bin2hex(hex, sizeof hex, pub, 32));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- clients ---------------------------------------------------------- */

static const char *target;
static uint8_t server_key[32];
static uint8_t *args;
static size_t args_len;
static long todo, started, finished, ready;
static int idle_mode;

typedef struct lane {
    size_t id;
    pn_host *h;
    int tries;
    uv_timer_t retry;
} lane;

#define IDLE_AT_ONCE 64 /* connections being set up at once by idle */
#define RETRIES 50      /* a handshake the server cut short (its flood budget) is tried again */
#define RETRY_MS 20

static void lane_next(lane *l);

static void on_host_closed(void *ud) {
    lane *l = ud;
    finished++;
    if (started < todo) lane_next(l);
}

static void on_reply(pn_host *h, pn_call_status st, const uint8_t *t, size_t len, void *ud) {
    (void)h, (void)t, (void)len;
    lane *l = ud;
    if (st != PN_CALL_OK) fail("echo", "call failed");
    if (idle_mode) {
        if (++ready == todo) {
            printf("ready n=%ld\n", todo);
            fflush(stdout);
        }
        if (started < todo) { /* this one stays open; the lane moves on */
            lane *n = calloc(1, sizeof *n);
            n->id = (size_t)started;
            lane_next(n);
        }
        return;
    }
    pn_host_close(l->h, on_host_closed, l);
}

static void lane_dial(lane *l);

static void on_retry(uv_timer_t *t) {
    lane_dial(t->data);
}

static void on_connected(pn_host *h, int status, const char *msg, void *ud) {
    lane *l = ud;
    if (status != 0) {
        if (++l->tries > RETRIES) fail("connect", msg);
        if (!l->retry.data) {
            uv_timer_init(loop, &l->retry);
            l->retry.data = l;
        }
        uv_timer_start(&l->retry, on_retry, RETRY_MS, 0);
        return;
    }
    pn_err e;
    if (pn_host_call(h, server_key, "echo", args, args_len, 0, on_reply, l, &e) != 0)
        fail("call", e.msg);
}

static void lane_dial(lane *l) {
    pn_err e;
    if (pn_host_connect(l->h, server_key, target, on_connected, l, &e) != 0) fail("connect", e.msg);
}

static void lane_next(lane *l) {
    started++;
    l->tries = 0;
    l->h = new_host(ids[l->id].secret, "");
    pn_err e;
    if (pn_host_trust(l->h, server_key, NULL, &e) != 0) fail("trust", e.msg);
    lane_dial(l);
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    free(b->base);
    if (n < 0) {
        fprintf(stderr, "pn_bench: stdin closed with %ld of %ld ready\n", ready, todo);
        exit(ready == todo ? 0 : 1); /* the connections go with the process */
    }
    (void)s;
}

static void alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *b) {
    (void)h;
    *b = uv_buf_init(malloc(sz), (unsigned)sz);
}

static int run_client(int argc, char **argv) {
    target = argv[2];
    hex32(argv[3], server_key, "SERVERKEY");
    load_keys(argv[4]);
    todo = parse_long(argv[5], 1, 1000000000L, "N");
    long parallel = idle_mode ? (todo < IDLE_AT_ONCE ? todo : IDLE_AT_ONCE)
                              : parse_long(argv[6], 1, CONNS_MAX, "PARALLEL");
    size_t size = idle_mode ? 8 : (size_t)parse_long(argv[7], 0, SIZE_MAX_B, "SIZE");
    (void)argc;
    if ((size_t)(idle_mode ? todo : parallel) > nids) fail(argv[4], "too few identities");
    pn_etf_buf b;
    pn_etf_buf_init(&b, 2 * SIZE_MAX_B);
    char *body = calloc(1, size + 1);
    if (pn_etf_put_binary(&b, (const uint8_t *)body, size, NULL) != 0) fail("args", "too big");
    free(body);
    args = b.data;
    args_len = b.len;
    lane *lanes = calloc((size_t)parallel, sizeof *lanes);
    uint64_t t0 = uv_hrtime();
    for (long i = 0; i < parallel && started < todo; i++) {
        lanes[i].id = (size_t)i;
        lane_next(&lanes[i]);
    }
    if (idle_mode) {
        uv_pipe_t in;
        uv_pipe_init(loop, &in, 0);
        uv_pipe_open(&in, 0);
        uv_read_start((uv_stream_t *)&in, alloc_cb, on_stdin);
        return uv_run(loop, UV_RUN_DEFAULT);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    printf("connect n=%ld parallel=%ld size=%zu seconds=%.3f per_s=%.0f\n", finished, parallel,
           size, secs, (double)finished / secs);
    return finished == todo ? 0 : 1;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) fail("sodium", "init failed");
    loop = uv_default_loop();
    if (argc == 3 && strcmp(argv[1], "keys") == 0) {
        long n = parse_long(argv[2], 1, KEYS_MAX, "N");
        for (long i = 0; i < n; i++) {
            ident k;
            char hs[65], hp[65];
            randombytes_buf(k.secret, 32);
            crypto_scalarmult_base(k.pub, k.secret);
            printf("%s %s\n", sodium_bin2hex(hs, sizeof hs, k.secret, 32),
                   sodium_bin2hex(hp, sizeof hp, k.pub, 32));
        }
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "server") == 0) return run_server(argv[2]);
    if (argc == 8 && strcmp(argv[1], "connect") == 0) return run_client(argc, argv);
    if (argc == 6 && strcmp(argv[1], "idle") == 0) {
        idle_mode = 1;
        return run_client(argc, argv);
    }
    fprintf(stderr, "usage: pn_bench keys N | server KEYSFILE | connect ADDR SERVERKEY KEYSFILE N "
                    "PARALLEL SIZE | idle ADDR SERVERKEY KEYSFILE N\n");
    return 2;
}
