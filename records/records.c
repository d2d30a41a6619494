/* Store opening with the record modules' index declarations. */
#include "records/records.h"

#include "records/account.h"
#include "records/calls.h"
#include "records/selfeval.h"
#include "records/commitment.h"
#include "records/enterprise.h"
#include "records/org.h"

#include <glib.h>

struct store *records_open(const char *dir, const char *redis_url, const char *redis_prefix,
                           char **err)
{
    struct store *st = redis_url && *redis_url ? store_open_redis(redis_url, redis_prefix, err)
                                               : store_open_sqlite(dir, err);
    if (!st)
        return NULL;
    if (org_init(st) != STORE_OK || account_init(st) != STORE_OK || calls_init(st) != STORE_OK ||
        enterprise_init(st) != STORE_OK || commitment_init(st) != STORE_OK ||
        selfeval_init(st) != STORE_OK) {
        *err = g_strdup("cannot declare store indexes");
        store_close(st);
        return NULL;
    }
    return st;
}
