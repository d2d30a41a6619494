/* Jurisdiction checks (see jurisdiction.h). Pure functions, no store. */
#include "records/jurisdiction.h"

#include <string.h>

bool division_normalize(const char *code, char *out, size_t out_len)
{
    if (!code || out_len < 7)
        return false;
    size_t n = strlen(code);
    if (n != 2 && n != 4 && n != 6)
        return false;
    for (size_t i = 0; i < n; i++)
        if (code[i] < '0' || code[i] > '9')
            return false;
    /* Strip trailing "00" pairs of the padded form, never the province. */
    while (n > 2 && code[n - 1] == '0' && code[n - 2] == '0')
        n -= 2;
    if (code[0] == '0' && code[1] == '0')
        return false; /* "00" is no province */
    memcpy(out, code, n);
    out[n] = '\0';
    return true;
}

bool division_valid(const char *code)
{
    char buf[8];
    return division_normalize(code, buf, sizeof(buf));
}

bool division_covers(const char *outer, const char *inner)
{
    char a[8], b[8];
    if (!division_normalize(outer, a, sizeof(a)) || !division_normalize(inner, b, sizeof(b)))
        return false;
    return strncmp(a, b, strlen(a)) == 0;
}

int juris_org_kind_of_role(const char *role)
{
    if (!role)
        return -1;
    if (strcmp(role, "gov") == 0)
        return ORG_DIVISION;
    if (strcmp(role, "corp") == 0)
        return ORG_ENTERPRISE;
    if (strcmp(role, "trs") == 0)
        return ORG_CARRIER;
    return -1;
}

bool juris_reaches(const struct principal *p, enum org_kind kind, const char *org_id,
                   const char *division)
{
    if (!p || !p->role || !org_id || !*org_id)
        return false;
    if (strcmp(p->role, "admin") == 0)
        return true;
    if (!p->org || !*p->org)
        return false;
    switch (juris_org_kind_of_role(p->role)) {
    case ORG_DIVISION:
        return division && division_covers(p->org, division);
    case ORG_ENTERPRISE:
        return kind == ORG_ENTERPRISE && strcmp(p->org, org_id) == 0;
    case ORG_CARRIER:
        return kind == ORG_CARRIER && strcmp(p->org, org_id) == 0;
    default:
        return false;
    }
}
