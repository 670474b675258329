/*
 * UTC time text (form in utc.h).
 */
#include "utc.h"

#include <string.h>

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m) {
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : dm[m - 1];
}

static int num(const char *s, int n) {
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int pn_utc_parse(const char *s, size_t len, int64_t *out, pn_err *e) {
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    if (len != PN_UTC_LEN) goto bad;
    for (size_t i = 0; i < len; i++) {
        if (shape[i] == 'd' ? !is_digit(s[i]) : s[i] != shape[i]) goto bad;
    }
    int y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2);
    int h = num(s + 11, 2), mi = num(s + 14, 2), sec = num(s + 17, 2);
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 59)
        goto bad;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return PN_OK;
bad:
    return pn_err_set(e, PN_EINVAL, "bad time: expected a UTC time like 2024-05-01T12:00:00Z");
}

#define TIME_MIN (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define TIME_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */

int pn_utc_format(int64_t t, char out[PN_UTC_LEN + 1], pn_err *e) {
    if (t < TIME_MIN || t > TIME_MAX)
        return pn_err_set(e, PN_EINVAL, "bad time: outside the years 0001..9999");
    int64_t days = t / 86400, secs = t % 86400, y;
    int m, d;
    if (secs < 0) {
        secs += 86400;
        days -= 1;
    }
    civil_from_days(days, &y, &m, &d);
    /* Digits by hand: every value is in range, which snprintf cannot know. */
    const int64_t v[6] = {y, m, d, secs / 3600, secs / 60 % 60, secs % 60};
    const int pos[6] = {0, 5, 8, 11, 14, 17}, width[6] = {4, 2, 2, 2, 2, 2};
    memcpy(out, "0000-00-00T00:00:00Z", PN_UTC_LEN + 1);
    for (int i = 0; i < 6; i++) {
        int64_t x = v[i];
        for (int j = width[i] - 1; j >= 0; j--, x /= 10)
            out[pos[i] + j] = (char)('0' + x % 10);
    }
    return PN_OK;
}
