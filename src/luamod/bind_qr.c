/*
 * peernet.qr: a QR code for `peernet-host id --qr` (libqrencode).
 *
 *   peernet.qr(text [, level]) --> matrix | nil, err
 *
 * level is "L", "M" (default), "Q" or "H". The text is encoded as 8-bit
 * bytes (a lowercase hex key is not in QR's alphanumeric set). The matrix
 * is a table of rows, each a table of booleans (true = dark module),
 * INCLUDING the 4-module quiet zone a scanner needs around the symbol;
 * matrix.version is the QR version and matrix.size the side in modules.
 * Rendering (Unicode half blocks) is left to Lua.
 */
#include <errno.h>
#include <string.h>

#include <qrencode.h>

#include "bind.h"
#include "lua/glue.h"

#define QR_QUIET 4
#define QR_TEXT_MAX 1024 /* far beyond a key; well under QR's 2953-byte limit */

static int l_qr(lua_State *L) {
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    static const char *const levels[] = {"L", "M", "Q", "H", NULL};
    static const QRecLevel codes[] = {QR_ECLEVEL_L, QR_ECLEVEL_M, QR_ECLEVEL_Q, QR_ECLEVEL_H};
    QRecLevel level = codes[luaL_checkoption(L, 2, "M", levels)];
    pn_err e;
    if (len == 0 || len > QR_TEXT_MAX) {
        pn_err_set(&e, PN_EINVAL, "qr: text must be 1..%d bytes", QR_TEXT_MAX);
        return pn_glue_fail(L, &e);
    }
    QRcode *qr = QRcode_encodeData((int)len, (const unsigned char *)text, 0, level);
    if (!qr) {
        pn_err_set(&e, errno == ENOMEM ? PN_ENOMEM : PN_EINVAL, "qr: cannot encode: %s",
                   strerror(errno));
        return pn_glue_fail(L, &e);
    }
    int w = qr->width, side = w + 2 * QR_QUIET;
    lua_createtable(L, side, 2);
    lua_pushinteger(L, qr->version);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, side);
    lua_setfield(L, -2, "size");
    for (int y = 0; y < side; y++) {
        lua_createtable(L, side, 0);
        for (int x = 0; x < side; x++) {
            int in = x >= QR_QUIET && x < QR_QUIET + w && y >= QR_QUIET && y < QR_QUIET + w;
            lua_pushboolean(L, in && (qr->data[(y - QR_QUIET) * w + (x - QR_QUIET)] & 1));
            lua_rawseti(L, -2, x + 1);
        }
        lua_rawseti(L, -2, y + 1);
    }
    QRcode_free(qr);
    return 1;
}

void pn_bind_qr_open(lua_State *L) {
    lua_pushcfunction(L, l_qr);
    lua_setfield(L, -2, "qr");
}
