/* Unified social credit code check (see credit_code.h). */
#include "records/credit_code.h"

#include <string.h>

static const char charset[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
static const int weights[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};

/* The value (0..30) of character ch, or -1 outside the set. */
static int value_of(char ch)
{
    const char *p = ch ? strchr(charset, ch) : NULL;
    return p ? (int)(p - charset) : -1;
}

char credit_code_check_char(const char *code)
{
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        int v = value_of(code[i]);
        if (v < 0)
            return '\0';
        sum += v * weights[i];
    }
    return charset[(31 - sum % 31) % 31];
}

bool credit_code_valid(const char *code, const char **why)
{
    const char *reason = NULL;
    if (!code || strlen(code) != CREDIT_CODE_LEN)
        reason = "must be 18 characters";
    for (int i = 0; !reason && i < CREDIT_CODE_LEN; i++)
        if (value_of(code[i]) < 0)
            reason = "characters must be 0-9 or upper-case A-Y without I, O, S, V, Z";
    for (int i = 2; !reason && i < 8; i++)
        if (code[i] < '0' || code[i] > '9')
            reason = "characters 3 to 8 must be a division code (digits)";
    if (!reason && credit_code_check_char(code) != code[17])
        reason = "check character does not match (GB 32100-2015)";
    if (reason && why)
        *why = reason;
    return reason == NULL;
}
