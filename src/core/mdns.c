/*
 * DNS message parser and builder for mDNS / DNS-SD (see mdns.h for the
 * bounds). The parser copies names out decompressed so nothing a caller
 * looks at later can reach outside the message again.
 */
#include <stdio.h>
#include <string.h>

#include "mdns.h"

static uint16_t rd16(const uint8_t *p) {
    return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int lower(int c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Reads the name at *pos into out (wire form, uncompressed). Bytes in place
 * end at inplace_end; a compression pointer may lead anywhere before the
 * start of the part being read, so every jump goes strictly backwards and
 * the chain ends. *pos moves past the in-place bytes only. */
static int read_name(const uint8_t *buf, size_t msglen, size_t inplace_end, size_t *pos,
                     uint8_t out[PN_MDNS_NAME_MAX], pn_err *e) {
    size_t p = *pos, o = 0, end = inplace_end, lim = *pos;
    int hops = 0, jumped = 0;
    for (;;) {
        if (p >= end) return pn_err_set(e, PN_EINVAL, "dns: name runs past its bytes");
        uint8_t c = buf[p];
        if ((c & 0xC0) == 0xC0) {
            if (p + 1 >= end) return pn_err_set(e, PN_EINVAL, "dns: truncated name pointer");
            size_t target = (size_t)(c & 0x3F) << 8 | buf[p + 1];
            if (target >= lim)
                return pn_err_set(e, PN_EINVAL, "dns: name pointer does not point backwards");
            if (++hops > PN_MDNS_PTR_HOPS)
                return pn_err_set(e, PN_ELIMIT, "dns: more than %d name pointers",
                                  PN_MDNS_PTR_HOPS);
            if (!jumped) *pos = p + 2;
            jumped = 1;
            p = lim = target;
            end = msglen;
            continue;
        }
        if (c & 0xC0) return pn_err_set(e, PN_EINVAL, "dns: unknown label type 0x%02x", c & 0xC0);
        if (o + 1 + c > PN_MDNS_NAME_MAX)
            return pn_err_set(e, PN_ETOOBIG, "dns: name longer than %d bytes", PN_MDNS_NAME_MAX);
        if (c == 0) {
            out[o] = 0;
            if (!jumped) *pos = p + 1;
            return PN_OK;
        }
        if (p + 1 + c > end) return pn_err_set(e, PN_EINVAL, "dns: label runs past its bytes");
        memcpy(out + o, buf + p, 1 + (size_t)c);
        o += 1 + (size_t)c;
        p += 1 + (size_t)c;
    }
}

static int check_txt(const uint8_t *r, size_t n, pn_err *e) {
    for (size_t i = 0; i < n; i += 1 + (size_t)r[i])
        if (i + 1 + r[i] > n) return pn_err_set(e, PN_EINVAL, "dns: TXT string runs past rdata");
    return PN_OK;
}

static int read_rdata(const uint8_t *buf, size_t len, size_t at, pn_mdns_record *r, pn_err *e) {
    size_t end = at + r->rdlen, p = at;
    switch (r->type) {
        case PN_DNS_A:
        case PN_DNS_AAAA: {
            size_t want = r->type == PN_DNS_A ? 4 : 16;
            if (r->rdlen != want)
                return pn_err_set(e, PN_EINVAL, "dns: %s rdata of %u bytes",
                                  r->type == PN_DNS_A ? "A" : "AAAA", r->rdlen);
            memcpy(r->addr, buf + at, want);
            return PN_OK;
        }
        case PN_DNS_SRV:
            if (r->rdlen < 7) return pn_err_set(e, PN_EINVAL, "dns: SRV rdata too short");
            r->priority = rd16(buf + at);
            r->weight = rd16(buf + at + 2);
            r->port = rd16(buf + at + 4);
            p += 6;
            /* fallthrough */
        case PN_DNS_PTR: {
            int rc = read_name(buf, len, end, &p, r->target, e);
            if (rc != PN_OK) return rc;
            if (p != end) return pn_err_set(e, PN_EINVAL, "dns: bytes after the name in rdata");
            return PN_OK;
        }
        case PN_DNS_TXT:
            return check_txt(buf + at, r->rdlen, e);
        default:
            return PN_OK;
    }
}

int pn_mdns_parse(pn_mdns_msg *m, const uint8_t *buf, size_t len, pn_err *e) {
    if (len < PN_MDNS_HEADER)
        return pn_err_set(e, PN_EINVAL, "dns: %zu bytes, shorter than a header", len);
    if (len > PN_MDNS_MSG_MAX)
        return pn_err_set(e, PN_ETOOBIG, "dns: message over %d bytes", PN_MDNS_MSG_MAX);
    m->id = rd16(buf);
    m->flags = rd16(buf + 2);
    size_t nq = rd16(buf + 4), nrr = (size_t)rd16(buf + 6) + rd16(buf + 8) + rd16(buf + 10);
    size_t bounds[3] = {rd16(buf + 6), (size_t)rd16(buf + 6) + rd16(buf + 8), nrr};
    /* A question takes at least 5 bytes and a record 11: claims that the
     * message cannot hold are refused before anything is read. */
    if (nq * 5 + nrr * 11 > len - PN_MDNS_HEADER)
        return pn_err_set(e, PN_EINVAL, "dns: counts claim more than the message holds");
    if (nq > PN_MDNS_QUESTIONS_MAX || nrr > PN_MDNS_RECORDS_MAX)
        return pn_err_set(e, PN_ELIMIT, "dns: %zu questions, %zu records (at most %d, %d)", nq, nrr,
                          PN_MDNS_QUESTIONS_MAX, PN_MDNS_RECORDS_MAX);
    m->nquestions = m->nrecords = 0;
    size_t p = PN_MDNS_HEADER;
    for (size_t i = 0; i < nq; i++) {
        pn_mdns_question *q = &m->questions[i];
        int rc = read_name(buf, len, len, &p, q->name, e);
        if (rc != PN_OK) return rc;
        if (p + 4 > len) return pn_err_set(e, PN_EINVAL, "dns: truncated question");
        q->type = rd16(buf + p);
        q->unicast = buf[p + 2] >> 7;
        q->klass = rd16(buf + p + 2) & 0x7FFF;
        p += 4;
        m->nquestions++;
    }
    for (size_t i = 0; i < nrr; i++) {
        pn_mdns_record *r = &m->records[i];
        memset(r, 0, sizeof *r); /* no field left over from an earlier message */
        int rc = read_name(buf, len, len, &p, r->name, e);
        if (rc != PN_OK) return rc;
        if (p + 10 > len) return pn_err_set(e, PN_EINVAL, "dns: truncated record");
        r->type = rd16(buf + p);
        r->flush = buf[p + 2] >> 7;
        r->klass = rd16(buf + p + 2) & 0x7FFF;
        r->ttl = rd32(buf + p + 4);
        r->rdlen = rd16(buf + p + 8);
        p += 10;
        if (r->rdlen > len - p) return pn_err_set(e, PN_EINVAL, "dns: rdata runs past the message");
        r->section = i < bounds[0]   ? PN_MDNS_ANSWER
                     : i < bounds[1] ? PN_MDNS_AUTHORITY
                                     : PN_MDNS_ADDITIONAL;
        r->rdata = buf + p;
        rc = read_rdata(buf, len, p, r, e);
        if (rc != PN_OK) return rc;
        p += r->rdlen;
        m->nrecords++;
    }
    if (p != len) return pn_err_set(e, PN_EINVAL, "dns: %zu bytes after the last record", len - p);
    return PN_OK;
}

/* ---- names ---------------------------------------------------------- */

/* Wire length of a well-formed name, 0 when malformed or over the bound. */
static size_t name_check(const uint8_t *n) {
    size_t o = 0;
    while (o < PN_MDNS_NAME_MAX) {
        uint8_t c = n[o];
        if (c == 0) return o + 1;
        if (c > PN_MDNS_LABEL_MAX) return 0;
        o += 1 + (size_t)c;
    }
    return 0;
}

size_t pn_mdns_name_len(const uint8_t *name) {
    return name_check(name);
}

int pn_mdns_name_eq(const uint8_t *a, const uint8_t *b) {
    size_t la = name_check(a), lb = name_check(b);
    if (la == 0 || la != lb) return 0;
    for (size_t i = 0; i < la; i++) /* length bytes are < 64: lower() leaves them */
        if (lower(a[i]) != lower(b[i])) return 0;
    return 1;
}

int pn_mdns_name_child_of(const uint8_t *name, const uint8_t *parent, const uint8_t **label,
                          size_t *len) {
    if (name_check(name) == 0 || name[0] == 0) return 0;
    if (!pn_mdns_name_eq(name + 1 + name[0], parent)) return 0;
    if (label) *label = name + 1;
    if (len) *len = name[0];
    return 1;
}

int pn_mdns_name_prepend(uint8_t out[PN_MDNS_NAME_MAX], const uint8_t *label, size_t len,
                         const uint8_t *rest, pn_err *e) {
    size_t rl = name_check(rest);
    if (len == 0 || len > PN_MDNS_LABEL_MAX)
        return pn_err_set(e, PN_EINVAL, "dns: a label must be 1..%d bytes", PN_MDNS_LABEL_MAX);
    if (rl == 0 || 1 + len + rl > PN_MDNS_NAME_MAX)
        return pn_err_set(e, PN_ETOOBIG, "dns: name longer than %d bytes", PN_MDNS_NAME_MAX);
    memmove(out + 1 + len, rest, rl);
    out[0] = (uint8_t)len;
    memcpy(out + 1, label, len);
    return PN_OK;
}

int pn_mdns_name_from_text(uint8_t out[PN_MDNS_NAME_MAX], const char *text, pn_err *e) {
    size_t o = 0, lab = 0; /* lab: where the current label's length byte is */
    const char *s = text;
    if (s[0] == '.' && s[1] == '\0') s++;
    out[0] = 0;
    if (*s == '\0') return PN_OK;
    for (;;) {
        if (o + 1 >= PN_MDNS_NAME_MAX)
            return pn_err_set(e, PN_ETOOBIG, "dns: name longer than %d bytes", PN_MDNS_NAME_MAX);
        lab = o++;
        size_t n = 0;
        while (*s && *s != '.') {
            int c = (unsigned char)*s++;
            if (c == '\\') {
                if (s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
                    s[2] <= '9') {
                    c = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
                    if (c > 255) return pn_err_set(e, PN_EINVAL, "dns: bad \\DDD escape");
                    s += 3;
                } else if (*s) {
                    c = (unsigned char)*s++;
                } else {
                    return pn_err_set(e, PN_EINVAL, "dns: name ends with a backslash");
                }
            }
            if (++n > PN_MDNS_LABEL_MAX)
                return pn_err_set(e, PN_ETOOBIG, "dns: label longer than %d bytes",
                                  PN_MDNS_LABEL_MAX);
            if (o + 1 >= PN_MDNS_NAME_MAX)
                return pn_err_set(e, PN_ETOOBIG, "dns: name longer than %d bytes",
                                  PN_MDNS_NAME_MAX);
            out[o++] = (uint8_t)c;
        }
        if (n == 0) return pn_err_set(e, PN_EINVAL, "dns: empty label in '%s'", text);
        out[lab] = (uint8_t)n;
        if (*s == '\0' || (s[0] == '.' && s[1] == '\0')) break;
        s++;
    }
    out[o] = 0;
    return PN_OK;
}

void pn_mdns_name_to_text(const uint8_t *name, char out[PN_MDNS_TEXT_MAX]) {
    size_t o = 0, p = 0;
    out[0] = '\0';
    if (name_check(name) == 0) {
        snprintf(out, PN_MDNS_TEXT_MAX, "(bad name)");
        return;
    }
    if (name[0] == 0) {
        snprintf(out, PN_MDNS_TEXT_MAX, ".");
        return;
    }
    /* At most 255 bytes, 4 characters each: always fits. */
    while (name[p]) {
        size_t n = name[p++];
        if (o) out[o++] = '.';
        for (size_t i = 0; i < n; i++, p++) {
            uint8_t c = name[p];
            if (c == '.' || c == '\\') {
                out[o++] = '\\';
                out[o++] = (char)c;
            } else if (c < 0x20 || c == 0x7F) {
                o += (size_t)snprintf(out + o, 5, "\\%03u", c);
            } else {
                out[o++] = (char)c;
            }
        }
    }
    out[o] = '\0';
}

/* ---- TXT ------------------------------------------------------------ */

int pn_mdns_txt_add(uint8_t *buf, size_t cap, size_t *len, const char *entry, pn_err *e) {
    size_t n = strlen(entry);
    if (n == 0 || n > 255) return pn_err_set(e, PN_EINVAL, "dns: a TXT string is 1..255 bytes");
    if (*len + 1 + n > cap) return pn_err_set(e, PN_ETOOBIG, "dns: TXT rdata full");
    buf[*len] = (uint8_t)n;
    memcpy(buf + *len + 1, entry, n);
    *len += 1 + n;
    return PN_OK;
}

int pn_mdns_txt_get(const uint8_t *rdata, size_t rdlen, const char *key, const uint8_t **val,
                    size_t *vlen) {
    size_t kl = strlen(key);
    for (size_t i = 0; i < rdlen && i + 1 + rdata[i] <= rdlen; i += 1 + (size_t)rdata[i]) {
        const uint8_t *s = rdata + i + 1;
        size_t n = rdata[i], k = 0;
        while (k < n && s[k] != '=')
            k++;
        if (k != kl) continue;
        size_t j = 0;
        while (j < kl && lower(s[j]) == lower((unsigned char)key[j]))
            j++;
        if (j != kl) continue;
        *val = k < n ? s + k + 1 : s + n;
        *vlen = k < n ? n - k - 1 : 0;
        return 1;
    }
    return 0;
}

/* ---- building --------------------------------------------------------- */

void pn_mdns_out_init(pn_mdns_out *o, uint8_t *buf, size_t cap, uint16_t id, uint16_t flags) {
    memset(o, 0, sizeof *o);
    o->buf = buf;
    o->cap = cap;
    o->err = cap < PN_MDNS_HEADER;
    if (o->err) return;
    memset(buf, 0, PN_MDNS_HEADER);
    buf[0] = (uint8_t)(id >> 8);
    buf[1] = (uint8_t)id;
    buf[2] = (uint8_t)(flags >> 8);
    buf[3] = (uint8_t)flags;
    o->len = PN_MDNS_HEADER;
}

static int put(pn_mdns_out *o, const void *p, size_t n, pn_err *e) {
    if (o->err || n > o->cap - o->len) {
        o->err = 1;
        return pn_err_set(e, PN_ETOOBIG, "dns: message does not fit %zu bytes", o->cap);
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return PN_OK;
}

static int put16(pn_mdns_out *o, uint16_t v, pn_err *e) {
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return put(o, b, 2, e);
}

static int put_name(pn_mdns_out *o, const uint8_t *name, pn_err *e) {
    size_t n = name_check(name);
    if (n == 0) {
        o->err = 1;
        return pn_err_set(e, PN_EINVAL, "dns: malformed name");
    }
    return put(o, name, n, e);
}

int pn_mdns_out_question(pn_mdns_out *o, const pn_mdns_question *q, pn_err *e) {
    if (o->section > 0 || o->counts[0] == UINT16_MAX) {
        o->err = 1;
        return pn_err_set(e, PN_ESTATE, "dns: questions come before records");
    }
    if (put_name(o, q->name, e) || put16(o, q->type, e) ||
        put16(o, (uint16_t)((q->unicast ? 0x8000 : 0) | (q->klass & 0x7FFF)), e))
        return PN_ETOOBIG;
    o->counts[0]++;
    return PN_OK;
}

int pn_mdns_out_record(pn_mdns_out *o, const pn_mdns_record *r, pn_err *e) {
    int sec = r->section + 1;
    if (sec < 1 || sec > 3 || sec < o->section || o->counts[sec] == UINT16_MAX) {
        o->err = 1;
        return pn_err_set(e, PN_ESTATE, "dns: records must come section by section");
    }
    o->section = sec;
    uint8_t hdr[8] = {(uint8_t)(r->type >> 8),
                      (uint8_t)r->type,
                      (uint8_t)((r->flush ? 0x80 : 0) | ((r->klass >> 8) & 0x7F)),
                      (uint8_t)r->klass,
                      (uint8_t)(r->ttl >> 24),
                      (uint8_t)(r->ttl >> 16),
                      (uint8_t)(r->ttl >> 8),
                      (uint8_t)r->ttl};
    if (put_name(o, r->name, e) || put(o, hdr, sizeof hdr, e)) return PN_ETOOBIG;
    size_t at = o->len;
    if (put16(o, 0, e)) return PN_ETOOBIG; /* rdlen, filled in below */
    int rc = PN_OK;
    switch (r->type) {
        case PN_DNS_A:
            rc = put(o, r->addr, 4, e);
            break;
        case PN_DNS_AAAA:
            rc = put(o, r->addr, 16, e);
            break;
        case PN_DNS_SRV:
            rc = put16(o, r->priority, e) || put16(o, r->weight, e) || put16(o, r->port, e);
            if (rc == PN_OK) rc = put_name(o, r->target, e);
            break;
        case PN_DNS_PTR:
            rc = put_name(o, r->target, e);
            break;
        case PN_DNS_TXT:
            if (check_txt(r->rdata, r->rdlen, e) != PN_OK) {
                o->err = 1;
                return PN_EINVAL;
            }
            /* fallthrough */
        default:
            if (r->rdlen) rc = put(o, r->rdata, r->rdlen, e);
            break;
    }
    if (rc != PN_OK) {
        o->err = 1;
        return PN_ETOOBIG;
    }
    size_t n = o->len - at - 2;
    o->buf[at] = (uint8_t)(n >> 8);
    o->buf[at + 1] = (uint8_t)n;
    o->counts[sec]++;
    return PN_OK;
}

size_t pn_mdns_out_finish(pn_mdns_out *o) {
    if (o->err) return 0;
    for (int i = 0; i < 4; i++) {
        o->buf[4 + 2 * i] = (uint8_t)(o->counts[i] >> 8);
        o->buf[5 + 2 * i] = (uint8_t)o->counts[i];
    }
    return o->len;
}
