/* Wall and monotonic clocks, with an override for unit tests. */
#include "common/clock.h"

#include <time.h>

static int64_t fake_ms;
static int64_t offset_ms;

int64_t clock_now_ms(void)
{
    if (fake_ms)
        return fake_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + offset_ms;
}

int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void clock_set_fake_ms(int64_t ms)
{
    fake_ms = ms;
}

void clock_set_offset_ms(int64_t ms)
{
    offset_ms = ms;
}
