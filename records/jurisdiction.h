/* Jurisdiction: the one function that says whether a principal (a logged-in
 * user) reaches a target (an enterprise, a carrier, a division, or another
 * user seen through the organisation it belongs to). Every capability asks
 * here; none re-implements the rule.
 *
 * Division codes are 2 (province), 4 (city) or 6 (district) digits; the
 * zero-padded 6-digit forms ("440000", "440100") mean the same as the short
 * ones. A gov user of division D reaches everything whose division code
 * starts with D. A corp user reaches only its own enterprise, a trs user
 * only its own carrier; admin reaches everything. */
#ifndef YJT_JURISDICTION_H
#define YJT_JURISDICTION_H

#include <stdbool.h>
#include <stddef.h>

enum org_kind { ORG_DIVISION, ORG_ENTERPRISE, ORG_CARRIER };

struct principal {
    const char *role; /* gov, corp, trs, admin */
    const char *org;  /* division code, enterprise id, carrier id */
};

/* True if code is a valid division code (2, 4 or 6 digits, or their
 * zero-padded 6-digit forms). */
bool division_valid(const char *code);
/* Writes the short form of a valid code into out (at least 7 bytes);
 * returns false for an invalid code. */
bool division_normalize(const char *code, char *out, size_t out_len);
/* True if division outer covers division inner (inner starts with outer). */
bool division_covers(const char *outer, const char *inner);

/* True if p reaches a target of kind, identified by org_id (division code,
 * enterprise id or carrier id) and located in division (its division code;
 * for ORG_DIVISION the same as org_id). Unknown or empty values never
 * reach anything. */
bool juris_reaches(const struct principal *p, enum org_kind kind, const char *org_id,
                   const char *division);

/* The org kind a user of role belongs to, or -1 for admin/unknown. */
int juris_org_kind_of_role(const char *role);

#endif
