/* The unified social credit code (统一社会信用代码) of GB 32100-2015: 18
 * characters from the 31-character set 0-9 A-H J-N P-R T U W-Y (no I, O,
 * S, V, Z); characters 3 to 8 are the registering division's code (digits)
 * and the 18th is a check character over the first 17, weighted by 3^i
 * mod 31. Every enterprise record carries one. */
#ifndef YJT_CREDIT_CODE_H
#define YJT_CREDIT_CODE_H

#include <stdbool.h>

#define CREDIT_CODE_LEN 18

/* The check character for the first 17 characters of code, or '\0' if one
 * of them is outside the character set. */
char credit_code_check_char(const char *code);
/* True if code is a well-formed code whose check character is right. When
 * it is not and why is not NULL, *why gets the reason (static text). */
bool credit_code_valid(const char *code, const char **why);

#endif
