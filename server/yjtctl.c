/* yjtctl: bootstrap and administer a yjt data directory without a running
 * server (and safely while yjtd runs: both share the SQLite file in WAL
 * mode, and yjtd picks up account changes within a second, closing the
 * connections of a disabled user).
 *
 *   yjtctl --data-dir DIR user add --username U --password P --role R --org ORG
 *                                  [--position POS] [--display-name N] [--phone PHONE]
 *   yjtctl --data-dir DIR user list | passwd | disable | enable
 *   yjtctl --data-dir DIR enterprise add --id ID --name NAME --division CODE [--key]
 *   yjtctl --data-dir DIR enterprise list
 *   yjtctl --data-dir DIR carrier add --id ID --name NAME --division CODE
 *   yjtctl --data-dir DIR carrier list | division add --code C --name N | division list
 *   yjtctl --data-dir DIR audit list [--limit N]
 *   yjtctl --data-dir DIR import enterprises --file F [--format csv|json] [--dry-run]
 *   yjtctl --data-dir DIR import sensors --file F.json [--dry-run]
 *   yjtctl --data-dir DIR apikey create --enterprise ID [--label TEXT]
 *   yjtctl --data-dir DIR apikey list [--enterprise ID] | revoke --id KEYID
 *
 * import prints the per-row report (JSON) and exits 1 if any row was
 * rejected (the accepted ones are written).
 *
 * Exit status: 0 done, 1 refused (the reason on stderr), 2 usage error. */
#include "common/jsonx.h"
#include "records/redis_tls.h"
#include "records/account.h"
#include "records/audit.h"
#include "records/enterprise_import.h"
#include "records/org.h"
#include "records/password.h"
#include "records/records.h"
#include "server/yjtctl_sensors.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_HASH_ITERATIONS 100000

struct opts {
    GHashTable *kv; /* --name -> value ("" for flags) */
};

static const char *opt(struct opts *o, const char *name)
{
    return g_hash_table_lookup(o->kv, name);
}

static int usage(void)
{
    fputs("usage: yjtctl [--data-dir DIR | --redis URL [--redis-prefix P]] COMMAND ...\n"
          "  user add --username U --password P --role gov|corp|trs|admin --org ORG\n"
          "           [--count N: load-test accounts U0 .. U<N-1>]\n"
          "           [--position POS] [--display-name NAME] [--phone PHONE]\n"
          "  user list\n"
          "  user passwd --username U --password P\n"
          "  user disable --username U\n"
          "  user enable --username U\n"
          "  enterprise add --id ID --name NAME --division CODE [--key]\n"
          "  enterprise list\n"
          "  carrier add --id ID --name NAME --division CODE\n"
          "  carrier list\n"
          "  division add --code CODE --name NAME\n"
          "  division list\n"
          "  audit list [--limit N]\n"
          "  import enterprises --file FILE [--format csv|json] [--dry-run]\n"
          "  import sensors --file FILE.json [--dry-run]\n"
          "  apikey create --enterprise ID [--label TEXT]  (prints the new key once)\n"
          "  apikey list [--enterprise ID]\n"
          "  apikey revoke --id KEYID\n"
          "Environment: YJT_HASH_ITERATIONS sets the PBKDF2 work factor of new passwords.\n",
          stderr);
    return 2;
}

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "yjtctl: %s: %s\n", what, why);
    return 1;
}

static const char *store_why(int rc)
{
    switch (rc) {
    case STORE_ECONFLICT:
        return "already exists";
    case STORE_ENOTFOUND:
        return "not found";
    case STORE_EINVAL:
        return "invalid input";
    default:
        return "store error (is the data directory writable?)";
    }
}

static int hash_iterations(void)
{
    const char *v = getenv("YJT_HASH_ITERATIONS");
    long n = v ? strtol(v, NULL, 10) : 0;
    return n >= 1000 && n <= 10000000 ? (int)n : DEFAULT_HASH_ITERATIONS;
}

static int user_add(struct store *st, struct opts *o)
{
    struct account_new req = {.username = opt(o, "--username"),
                              .password = opt(o, "--password"),
                              .role = opt(o, "--role"),
                              .org = opt(o, "--org"),
                              .position = opt(o, "--position"),
                              .display_name = opt(o, "--display-name"),
                              .phone = opt(o, "--phone"),
                              .hash_iterations = hash_iterations()};
    if (!req.username || !req.password || !req.role || (!req.org && g_strcmp0(req.role, "admin")))
        return usage();
    const char *count = opt(o, "--count");
    if (count) {
        /* Load-test accounts: USERNAME0 .. USERNAME<N-1>, one password. */
        long n = strtol(count, NULL, 10);
        if (n < 1 || n > 1000000)
            return usage();
        char *base = g_strdup(req.username);
        int made = 0;
        for (long i = 0; i < n; i++) {
            char *name = g_strdup_printf("%s%ld", base, i);
            char *id = NULL;
            const char *why = NULL;
            req.username = name;
            int rc = account_create(st, &req, &id, &why);
            g_free(name);
            g_free(id);
            if (rc != STORE_OK) {
                g_free(base);
                return fail("user add", why ? why : store_why(rc));
            }
            made++;
        }
        audit_log(st, "yjtctl", "user.add", base, "ok", NULL);
        printf("%d\n", made);
        g_free(base);
        return 0;
    }
    char *id = NULL;
    const char *why = NULL;
    int rc = account_create(st, &req, &id, &why);
    if (rc != STORE_OK)
        return fail("user add", why ? why : store_why(rc));
    audit_log(st, "yjtctl", "user.add", id, "ok", NULL);
    printf("%s\n", id);
    g_free(id);
    return 0;
}

static bool print_user(struct account *a, void *ud)
{
    (void)ud;
    printf("%s\t%s\t%s\t%s\t%s\t%s\n", a->id, a->username, a->role, a->org,
           a->position[0] ? a->position : "-", a->disabled ? "disabled" : "active");
    return true;
}

/* Changes one account: "passwd", "disable" or "enable". Each bumps the
 * token version except enable, so the user's tokens stop working. */
static int user_change(struct store *st, struct opts *o, const char *what)
{
    const char *username = opt(o, "--username");
    if (!username)
        return usage();
    struct account *a = NULL;
    int rc = account_find(st, username, &a);
    if (rc != STORE_OK)
        return fail(what, rc == STORE_ENOTFOUND ? "no such user" : store_why(rc));
    if (strcmp(what, "passwd") == 0) {
        const char *pw = opt(o, "--password");
        if (!pw) {
            account_free(a);
            return usage();
        }
        const char *why = password_policy_error(pw);
        if (why) {
            account_free(a);
            return fail(what, why);
        }
        g_free(a->pw_hash);
        a->pw_hash = password_hash(pw, hash_iterations());
        a->token_ver++;
    } else if (strcmp(what, "disable") == 0) {
        a->disabled = true;
        a->token_ver++;
    } else {
        a->disabled = false;
    }
    rc = a->pw_hash ? account_save(st, a) : STORE_EIO;
    if (rc == STORE_OK && strcmp(what, "disable") != 0)
        rc = account_lockout_clear(st, a->id); /* a new password or enable unlocks */
    if (rc == STORE_OK) {
        char *action = g_strdup_printf("user.%s", what);
        audit_log(st, "yjtctl", action, a->id, "ok", NULL);
        g_free(action);
        printf("%s %s\n", a->username, strcmp(what, "passwd") == 0 ? "password changed" : what);
    }
    account_free(a);
    return rc == STORE_OK ? 0 : fail(what, store_why(rc));
}

static int org_add_cmd(struct store *st, struct opts *o, const char *kind)
{
    const char *why = NULL;
    int rc;
    if (strcmp(kind, "division") == 0) {
        if (!opt(o, "--code") || !opt(o, "--name"))
            return usage();
        rc = org_division_add(st, opt(o, "--code"), opt(o, "--name"), &why);
    } else {
        const char *id = opt(o, "--id"), *name = opt(o, "--name"), *div = opt(o, "--division");
        if (!id || !name || !div)
            return usage();
        rc = strcmp(kind, "enterprise") == 0
                 ? org_enterprise_add(st, id, name, div, opt(o, "--key") != NULL, &why)
                 : org_carrier_add(st, id, name, div, &why);
    }
    if (rc != STORE_OK)
        return fail(kind, why ? why : store_why(rc));
    char *action = g_strdup_printf("%s.add", kind);
    audit_log(st, "yjtctl", action, opt(o, strcmp(kind, "division") ? "--id" : "--code"), "ok",
              NULL);
    g_free(action);
    return 0;
}

static bool print_org(const char *id, json_t *doc, void *ud)
{
    const char *kind = ud;
    if (strcmp(kind, "enterprises") == 0)
        printf("%s\t%s\t%s\t%s\n", id, jx_str(doc, "name"), jx_str(doc, "division"),
               jx_bool(doc, "key", false) ? "key" : "-");
    else if (strcmp(kind, "carriers") == 0)
        printf("%s\t%s\t%s\n", id, jx_str(doc, "name"), jx_str(doc, "division"));
    else
        printf("%s\t%s\n", id, jx_str(doc, "name"));
    return true;
}

static bool print_audit(int64_t seq, json_t *ev, void *ud)
{
    (void)ud;
    (void)seq;
    time_t secs = (time_t)(jx_int(ev, "ts", 0) / 1000);
    struct tm tm;
    char ts[32];
    gmtime_r(&secs, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s\t%s\t%s\t%s\t%s\n", ts, jx_str(ev, "actor"), jx_str(ev, "action"),
           jx_str(ev, "target"), jx_str(ev, "result"));
    return true;
}

#define IMPORT_MAX_BYTES (16 * 1024 * 1024)

static bool allow_all(const char *division, const char *existing, void *ud)
{
    (void)division, (void)existing, (void)ud;
    return true;
}

/* Imports enterprise records from a CSV or JSON file and prints the
 * report. */
static int import_cmd(struct store *st, struct opts *o)
{
    const char *file = opt(o, "--file"), *format = opt(o, "--format");
    if (!file)
        return usage();
    if (!format)
        format = g_str_has_suffix(file, ".json") ? "json" : "csv";
    if (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0)
        return usage();
    gchar *text = NULL;
    gsize len = 0;
    GError *gerr = NULL;
    if (!g_file_get_contents(file, &text, &len, &gerr)) {
        int rc = fail("import", gerr->message);
        g_error_free(gerr);
        return rc;
    }
    if (len > IMPORT_MAX_BYTES) {
        g_free(text);
        return fail("import", "file larger than 16 MiB");
    }
    const char *why = NULL;
    json_t *rows = NULL;
    if (strcmp(format, "csv") == 0) {
        rows = import_csv_rows(text, len, &why);
    } else {
        json_error_t jerr;
        json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        rows = doc ? import_json_rows(doc, &why) : NULL;
        if (!doc)
            why = "file is not valid JSON";
        json_decref(doc);
    }
    g_free(text);
    if (!rows)
        return fail("import", why);
    bool dry = opt(o, "--dry-run") != NULL;
    json_t *report = import_apply(st, rows, "yjtctl", dry, allow_all, NULL);
    json_decref(rows);
    char *out = json_dumps(report, JSON_INDENT(2));
    printf("%s\n", out);
    free(out);
    json_int_t rejected = json_integer_value(json_object_get(report, "rejected"));
    if (!dry) {
        char *what = g_strdup_printf(
            "%s: %" JSON_INTEGER_FORMAT " accepted, %" JSON_INTEGER_FORMAT " rejected", file,
            json_integer_value(json_object_get(report, "accepted")), rejected);
        audit_log(st, "yjtctl", "enterprise.import", what, rejected ? "partial" : "ok", NULL);
        g_free(what);
    }
    json_decref(report);
    return rejected ? 1 : 0;
}

static int run(struct store *st, const char *noun, const char *verb, struct opts *o)
{
    if (strcmp(noun, "user") == 0) {
        if (strcmp(verb, "add") == 0)
            return user_add(st, o);
        if (strcmp(verb, "list") == 0)
            return account_each(st, print_user, NULL) == STORE_OK ? 0 : fail("user list", "store");
        if (strcmp(verb, "passwd") == 0 || strcmp(verb, "disable") == 0 ||
            strcmp(verb, "enable") == 0)
            return user_change(st, o, verb);
    } else if (strcmp(noun, "enterprise") == 0 || strcmp(noun, "carrier") == 0 ||
               strcmp(noun, "division") == 0) {
        if (strcmp(verb, "add") == 0)
            return org_add_cmd(st, o, noun);
        if (strcmp(verb, "list") == 0) {
            char *coll = g_strdup_printf("%ss", noun);
            int rc = store_doc_list(st, coll, print_org, coll);
            g_free(coll);
            return rc == STORE_OK ? 0 : fail("list", "store");
        }
    } else if (strcmp(noun, "import") == 0 && strcmp(verb, "enterprises") == 0) {
        return import_cmd(st, o);
    } else if (strcmp(noun, "import") == 0 && strcmp(verb, "sensors") == 0) {
        if (!opt(o, "--file"))
            return usage();
        return yjtctl_import_sensors(st, opt(o, "--file"), opt(o, "--dry-run") != NULL);
    } else if (strcmp(noun, "apikey") == 0) {
        return yjtctl_apikey(st, verb, opt(o, "--enterprise"), opt(o, "--label"), opt(o, "--id"));
    } else if (strcmp(noun, "audit") == 0 && strcmp(verb, "list") == 0) {
        const char *l = opt(o, "--limit");
        int limit = l ? atoi(l) : 100;
        return audit_each_recent(st, limit > 0 ? limit : 100, print_audit, NULL) == STORE_OK
                   ? 0
                   : fail("audit list", "store");
    }
    return usage();
}

int main(int argc, char **argv)
{
    const char *data_dir = "./data", *redis = NULL, *redis_prefix = NULL;
    int i = 1;
    for (;;) {
        if (i + 1 < argc && strcmp(argv[i], "--data-dir") == 0)
            data_dir = argv[i + 1];
        else if (i + 1 < argc && strcmp(argv[i], "--redis") == 0)
            redis = argv[i + 1];
        else if (i + 1 < argc && strcmp(argv[i], "--redis-prefix") == 0)
            redis_prefix = argv[i + 1];
        else
            break;
        i += 2;
    }
    if (argc - i < 2)
        return usage();
    const char *noun = argv[i], *verb = argv[i + 1];
    struct opts o = {g_hash_table_new(g_str_hash, g_str_equal)};
    for (i += 2; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            g_hash_table_destroy(o.kv);
            return usage();
        }
        bool flag = strcmp(argv[i], "--key") == 0 || strcmp(argv[i], "--dry-run") == 0;
        if (!flag && i + 1 >= argc) {
            fprintf(stderr, "yjtctl: %s needs a value\n", argv[i]);
            g_hash_table_destroy(o.kv);
            return 2;
        }
        g_hash_table_insert(o.kv, argv[i], flag ? "" : argv[i + 1]);
        if (!flag)
            i++;
    }
    char *err = NULL;
    struct store *st = records_open(data_dir, redis, redis_prefix, &err);
    if (!st) {
        fprintf(stderr, "yjtctl: %s\n", err);
        g_free(err);
        g_hash_table_destroy(o.kv);
        redis_tls_stop_all();
        return 1;
    }
    int rc = run(st, noun, verb, &o);
    store_close(st);
    redis_tls_stop_all();
    g_hash_table_destroy(o.kv);
    return rc;
}
