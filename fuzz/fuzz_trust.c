/*
 * Fuzz target: arbitrary bytes parsed as a trust file. Checks more than
 * "no crash": a file that parses must serialize back byte for byte, and
 * after an update, an add and a remove it must still parse, with the same
 * number of entries as the store holds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
    if (!ok) abort(); /* a fuzz harness may abort: that is how findings surface */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pn_trust *t = NULL, *t2 = NULL;
    pn_err e;
    char *out = NULL;
    size_t len = 0;
    if (sodium_init() < 0) return 0;
    if (pn_trust_new(&t, NULL, &e) != PN_OK) return 0;
    if (pn_trust_parse(t, data, size, "fuzz", &e) != PN_OK) {
        check(pn_trust_count(t) == 0 && e.msg[0] != '\0');
        pn_trust_free(t);
        return 0;
    }
    check(pn_trust_serialize(t, &out, &len, &e) == PN_OK);
    check(len == size && memcmp(out, data, size) == 0);
    free(out);

    /* Edit: relabel the first entry, add a fixed key, remove the first. */
    uint8_t key[PN_KEY_LEN];
    memset(key, 0xab, sizeof key);
    if (pn_trust_count(t) > 0) {
        uint8_t first[PN_KEY_LEN];
        memcpy(first, pn_trust_at(t, 0)->key, PN_KEY_LEN);
        (void)pn_trust_add(t, first, "fuzz-relabelled", "[::1]:4040", 0, &e);
    }
    (void)pn_trust_add(t, key, "-", "example.org:1", 1700000000, &e);
    if (pn_trust_count(t) > 1) {
        char hex[PN_KEY_HEX_LEN + 1];
        pn_key_hex(hex, pn_trust_at(t, 0)->key);
        check(pn_trust_remove(t, hex, &e) == PN_OK);
    }
    check(pn_trust_serialize(t, &out, &len, &e) == PN_OK);
    check(pn_trust_new(&t2, NULL, &e) == PN_OK);
    int rc = pn_trust_parse(t2, (const uint8_t *)out, len, "fuzz-rewritten", &e);
    /* Edits refuse anything that would not load again. */
    check(rc == PN_OK);
    check(pn_trust_count(t2) == pn_trust_count(t));
    for (size_t i = 0; i < pn_trust_count(t); i++) {
        const pn_trust_entry *a = pn_trust_at(t, i), *b = pn_trust_at(t2, i);
        check(memcmp(a->key, b->key, PN_KEY_LEN) == 0 && strcmp(a->label, b->label) == 0 &&
              strcmp(a->addr, b->addr) == 0 && a->added == b->added);
    }
    free(out);
    pn_trust_free(t2);
    pn_trust_free(t);
    return 0;
}
