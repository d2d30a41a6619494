/* The demo data set (see demo.h). */
#include "server/demo.h"

#include "common/ids.h"
#include "common/log.h"
#include "records/account.h"
#include "records/audit.h"
#include "records/org.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>

static const struct {
    const char *code, *name;
} divisions[] = {
    {"44", "广东省"},     {"4401", "广州市"},   {"4403", "深圳市"},
    {"440106", "天河区"}, {"440113", "番禺区"}, {"440305", "南山区"},
};

static const struct {
    const char *id, *name, *division;
    bool key;
} enterprises[] = {
    {"E440106001", "广州天河精细化工有限公司", "440106", true},
    {"E440113001", "番禺石化储运有限公司", "440113", true},
    {"E440113002", "番禺涂料制造有限公司", "440113", false},
    {"E440305001", "南山气体科技有限公司", "440305", false},
};

static const struct {
    const char *role, *username, *org, *position, *display_name;
} accounts[] = {
    {"gov", "demo-gov", "4401", "inspector", "广州市应急管理局值班员"},
    {"corp", "demo-corp", "E440106001", "principal", "天河精细化工 主要负责人"},
    {"trs", "demo-trs", "C4401001", "driver", "穗通危货运输 驾驶员"},
};

static char *new_password(void)
{
    unsigned char raw[9];
    if (id_random_bytes(raw, sizeof(raw)) < 0)
        return NULL;
    return b64url_encode(raw, sizeof(raw)); /* 12 characters */
}

int demo_load(struct store *st, const char *data_dir, int hash_iterations)
{
    const char *why = NULL;
    struct account *existing = NULL;
    if (account_find(st, accounts[0].username, &existing) == STORE_OK) {
        account_free(existing);
        char *path = g_build_filename(data_dir, "demo-accounts.txt", NULL);
        log_info("demo", "demo data already loaded; passwords are in %s", path);
        g_free(path);
        return 0;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(divisions); i++)
        org_division_add(st, divisions[i].code, divisions[i].name, &why);
    for (size_t i = 0; i < G_N_ELEMENTS(enterprises); i++)
        org_enterprise_add(st, enterprises[i].id, enterprises[i].name, enterprises[i].division,
                           enterprises[i].key, &why);
    org_carrier_add(st, "C4401001", "广州穗通危险货物运输有限公司", "4401", &why);

    GString *listing = g_string_new("");
    int rc = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(accounts) && rc == 0; i++) {
        char *pw = new_password(), *id = NULL;
        struct account_new req = {.username = accounts[i].username,
                                  .password = pw,
                                  .role = accounts[i].role,
                                  .org = accounts[i].org,
                                  .position = accounts[i].position,
                                  .display_name = accounts[i].display_name,
                                  .hash_iterations = hash_iterations};
        if (!pw || account_create(st, &req, &id, &why) != STORE_OK) {
            log_error("demo", "cannot create demo account %s: %s", accounts[i].username,
                      why ? why : "store error");
            rc = -1;
        } else {
            audit_log(st, "demo", "user.add", id, "ok", NULL);
            g_string_append_printf(listing, "demo account: role=%s username=%s password=%s\n",
                                   accounts[i].role, accounts[i].username, pw);
        }
        g_free(pw);
        g_free(id);
    }
    if (rc == 0) {
        fputs(listing->str, stdout);
        fflush(stdout);
        char *path = g_build_filename(data_dir, "demo-accounts.txt", NULL);
        if (!g_file_set_contents(path, listing->str, -1, NULL) || g_chmod(path, 0600) != 0)
            log_warn("demo", "cannot write %s", path);
        g_free(path);
        log_info("demo", "demo data loaded: 6 divisions, 4 enterprises, 1 carrier, 3 accounts");
    }
    g_string_free(listing, TRUE);
    return rc;
}
