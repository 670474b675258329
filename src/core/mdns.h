/*
 * DNS messages as mDNS (RFC 6762) and DNS-SD (RFC 6763) use them: a
 * bounded parser and an uncompressed builder, no I/O.
 *
 * Names are kept in wire form without compression: length-prefixed labels
 * ending with a zero byte, at most PN_MDNS_NAME_MAX bytes in all. Labels
 * are raw bytes (an instance label may hold dots or UTF-8), so names are
 * compared label by label, ASCII case-insensitively, never as dotted text.
 *
 * Every count in a message is a stranger's claim: the parser checks it
 * against the bytes that remain and against the bounds below, follows at
 * most PN_MDNS_PTR_HOPS compression pointers per name, and only backwards,
 * so no message can make it loop or read out of bounds.
 */
#ifndef PN_MDNS_H
#define PN_MDNS_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"

#define PN_MDNS_MSG_MAX 9000     /* RFC 6762 §17: the largest mDNS message */
#define PN_MDNS_NAME_MAX 255     /* wire form, length bytes and final zero included */
#define PN_MDNS_LABEL_MAX 63     /* one label */
#define PN_MDNS_PTR_HOPS 16      /* compression pointers followed in one name */
#define PN_MDNS_QUESTIONS_MAX 32 /* questions kept from one message */
#define PN_MDNS_RECORDS_MAX 64   /* answer + authority + additional records */
#define PN_MDNS_TEXT_MAX 1024    /* a name as escaped dotted text, NUL included */
#define PN_MDNS_HEADER 12
#define PN_MDNS_PORT 5353 /* RFC 6762 §3 */

enum {
    PN_DNS_A = 1,
    PN_DNS_PTR = 12,
    PN_DNS_TXT = 16,
    PN_DNS_AAAA = 28,
    PN_DNS_SRV = 33,
    PN_DNS_NSEC = 47,
    PN_DNS_ANY = 255
};
#define PN_DNS_CLASS_IN 1
#define PN_DNS_FLAG_QR 0x8000 /* a response */
#define PN_DNS_FLAG_AA 0x0400 /* authoritative: set on every mDNS response */

enum { PN_MDNS_ANSWER, PN_MDNS_AUTHORITY, PN_MDNS_ADDITIONAL };

typedef struct pn_mdns_question {
    uint8_t name[PN_MDNS_NAME_MAX];
    uint16_t type, klass; /* klass without the top bit */
    int unicast;          /* the QU bit: the asker wants a unicast answer */
} pn_mdns_question;

typedef struct pn_mdns_record {
    uint8_t name[PN_MDNS_NAME_MAX];
    uint16_t type, klass; /* klass without the top bit */
    int flush;            /* the cache-flush bit: never on shared records (PTR) */
    uint32_t ttl;         /* 0 in a response: a goodbye */
    int section;          /* PN_MDNS_ANSWER, ... */
    /* Decoded rdata, by type. */
    uint8_t addr[16];                 /* A: 4 bytes, AAAA: 16 */
    uint8_t target[PN_MDNS_NAME_MAX]; /* PTR, SRV */
    uint16_t priority, weight, port;  /* SRV */
    const uint8_t *rdata;             /* raw rdata (TXT is read from here); */
    uint16_t rdlen;                   /* parsed: points into the message */
} pn_mdns_record;

typedef struct pn_mdns_msg {
    uint16_t id, flags;
    size_t nquestions, nrecords;
    pn_mdns_question questions[PN_MDNS_QUESTIONS_MAX];
    pn_mdns_record records[PN_MDNS_RECORDS_MAX];
} pn_mdns_msg;

/* Parses a whole message (trailing bytes are an error). Record rdata
 * pointers point into buf, which must outlive m's use. */
int pn_mdns_parse(pn_mdns_msg *m, const uint8_t *buf, size_t len, pn_err *e);

/* ---- names ---------------------------------------------------------- */

/* "a.b.local" (a trailing dot is allowed; "\." and "\\" escape) to wire form. */
int pn_mdns_name_from_text(uint8_t out[PN_MDNS_NAME_MAX], const char *text, pn_err *e);
/* Wire form to dotted text with '.' and '\' inside labels escaped. */
void pn_mdns_name_to_text(const uint8_t *name, char out[PN_MDNS_TEXT_MAX]);
/* label (1..63 raw bytes) prepended to rest. */
int pn_mdns_name_prepend(uint8_t out[PN_MDNS_NAME_MAX], const uint8_t *label, size_t len,
                         const uint8_t *rest, pn_err *e);
size_t pn_mdns_name_len(const uint8_t *name); /* wire bytes, final zero included */
int pn_mdns_name_eq(const uint8_t *a, const uint8_t *b);
/* 1 when name is one label followed by parent; *label, *len give that label. */
int pn_mdns_name_child_of(const uint8_t *name, const uint8_t *parent, const uint8_t **label,
                          size_t *len);

/* ---- TXT ------------------------------------------------------------ */

/* Appends one "key=value" string (at most 255 bytes) to a TXT rdata. */
int pn_mdns_txt_add(uint8_t *buf, size_t cap, size_t *len, const char *entry, pn_err *e);
/* 1 and the value when key (case-insensitive, RFC 6763 §6.4) is present
 * (a key without '=' has an empty value), 0 when absent. The first
 * occurrence wins. rdata must have passed pn_mdns_parse. */
int pn_mdns_txt_get(const uint8_t *rdata, size_t rdlen, const char *key, const uint8_t **val,
                    size_t *vlen);

/* ---- building --------------------------------------------------------- */

typedef struct pn_mdns_out {
    uint8_t *buf;
    size_t cap, len;
    uint16_t counts[4]; /* questions, answers, authority, additional */
    int section;        /* sections are written in order */
    int err;
} pn_mdns_out;

void pn_mdns_out_init(pn_mdns_out *o, uint8_t *buf, size_t cap, uint16_t id, uint16_t flags);
int pn_mdns_out_question(pn_mdns_out *o, const pn_mdns_question *q, pn_err *e);
/* Writes r into r->section; TXT and unknown types take r->rdata. */
int pn_mdns_out_record(pn_mdns_out *o, const pn_mdns_record *r, pn_err *e);
/* The message length, or 0 when a write failed (the message is unusable). */
size_t pn_mdns_out_finish(pn_mdns_out *o);

#endif
