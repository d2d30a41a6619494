/* Time. Wall-clock UTC milliseconds for stored times and messages, and a
 * monotonic clock for intervals. Tests may pin the wall clock. */
#ifndef YJT_CLOCK_H
#define YJT_CLOCK_H

#include <stdint.h>

int64_t clock_now_ms(void);
int64_t clock_mono_ms(void);
/* Pins clock_now_ms() to a fixed value (0 restores the real clock). */
void clock_set_fake_ms(int64_t ms);

/* Shifts clock_now_ms() by offset ms from the real clock (0 for none):
 * a test clock that still runs, set from the test_clock setting. */
void clock_set_offset_ms(int64_t ms);

#endif
