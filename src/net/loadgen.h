/*
 * A load generator: keeps N calls (or a stream of sends) going to one
 * handler of a connected peer for a while and reports the rate and the
 * latency percentiles. A pure client of the C API (peernet.h), in C so
 * that the caller is not what limits the figure (`peernet-host bench`).
 */
#ifndef PN_LOADGEN_H
#define PN_LOADGEN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "peernet/peernet.h"

#define PN_LOADGEN_INFLIGHT_MAX 65536 /* slots are allocated up front */

typedef struct pn_loadgen pn_loadgen;

typedef struct pn_loadgen_config {
    const uint8_t *peer; /* PN_KEY_LEN bytes; must be connected */
    const char *handle;
    const uint8_t *args; /* a term without the version byte */
    size_t args_len;
    uint32_t inflight;    /* calls kept outstanding, 1..PN_LOADGEN_INFLIGHT_MAX */
    uint32_t duration_ms; /* new calls stop after this; the outstanding ones are awaited */
    uint32_t timeout_ms;  /* per call; 0 = the host's default */
    int send;             /* 1: one-way sends instead of calls (no latency) */
} pn_loadgen_config;

typedef struct pn_loadgen_report {
    uint64_t ok;       /* calls answered {ok, _} / sends taken by the host */
    uint64_t errors;   /* {error, _} answers */
    uint64_t timeouts; /* calls that timed out */
    uint64_t closed;   /* calls failed by the connection closing */
    uint64_t elapsed_ns;
    /* Latency of answered calls (ok or error), from the histogram: each
     * figure is within PN_LOADGEN_PRECISION of the true one. 0 for sends. */
    uint64_t min_ns, p50_ns, p99_ns, p999_ns, max_ns;
    double mean_ns;
    char first_error[PN_ERR_MSG_MAX]; /* why the run stopped early, or "" */
} pn_loadgen_report;

/* Histogram buckets per power of two: a percentile is off by at most 1/32. */
#define PN_LOADGEN_SUB_BITS 5
#define PN_LOADGEN_PRECISION (1.0 / (1 << PN_LOADGEN_SUB_BITS))

typedef void (*pn_loadgen_done_fn)(pn_loadgen *g, const pn_loadgen_report *r, void *ud);

/* Starts at once; done runs exactly once, from the loop, when the
 * duration is over and nothing is outstanding (or the link failed). Free
 * g with pn_loadgen_free from done or later. */
pn_loadgen *pn_loadgen_start(pn_host *h, uv_loop_t *loop, const pn_loadgen_config *c,
                             pn_loadgen_done_fn done, void *ud, pn_err *e);
/* Releases g once done has run; it closes its loop handles, so the loop
 * must still run for the memory to go. */
void pn_loadgen_free(pn_loadgen *g);

#endif
