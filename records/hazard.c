/* GB 18218-2018 arithmetic and the validation of a hazard source (see
 * hazard.h). The tables are those of the standard, as summarised in the
 * project's design notes. */
#include "records/hazard.h"

#include <glib.h>
#include <math.h>
#include <string.h>

double hazard_alpha(int64_t people)
{
    if (people >= 100)
        return 2.0;
    if (people >= 50)
        return 1.5;
    if (people >= 30)
        return 1.2;
    if (people >= 1)
        return 1.0;
    return 0.5;
}

static const struct {
    const char *zh, *en;
    double beta;
} toxic_gases[] = {
    {"一氧化碳", "carbon monoxide", 2},
    {"二氧化硫", "sulphur dioxide", 2},
    {"氨", "ammonia", 2},
    {"环氧乙烷", "ethylene oxide", 2},
    {"氯化氢", "hydrogen chloride", 3},
    {"溴甲烷", "methyl bromide", 3},
    {"氯", "chlorine", 4},
    {"硫化氢", "hydrogen sulphide", 5},
    {"氟化氢", "hydrogen fluoride", 5},
    {"二氧化氮", "nitrogen dioxide", 10},
    {"氰化氢", "hydrogen cyanide", 10},
    {"碳酰氯", "phosgene", 20},
    {"磷化氢", "phosphine", 20},
    {"异氰酸甲酯", "methyl isocyanate", 20},
};

static const struct {
    const char *category;
    double beta;
} categories[] = {
    {"J1", 4},   {"J2", 1},   {"J3", 2},     {"J4", 2}, {"J5", 1},     {"W1.1", 2},   {"W1.2", 2},
    {"W1.3", 2}, {"W2", 1.5}, {"W5.1", 1.5}, {"W5", 1}, {"W6.1", 1.5}, {"W7.1", 1.5}, {"other", 1},
};

double hazard_beta(const char *name, const char *category)
{
    for (size_t i = 0; name && i < G_N_ELEMENTS(toxic_gases); i++)
        if (strcmp(name, toxic_gases[i].zh) == 0 ||
            g_ascii_strcasecmp(name, toxic_gases[i].en) == 0)
            return toxic_gases[i].beta;
    for (size_t i = 0; category && i < G_N_ELEMENTS(categories); i++)
        if (strcmp(category, categories[i].category) == 0)
            return categories[i].beta;
    return 0;
}

static bool category_known(const char *category)
{
    for (size_t i = 0; i < G_N_ELEMENTS(categories); i++)
        if (strcmp(category, categories[i].category) == 0)
            return true;
    return false;
}

static double round6(double v)
{
    return round(v * 1e6) / 1e6;
}

double hazard_s(const struct hazard_chem *c, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += c[i].q / c[i].Q;
    return round6(s);
}

double hazard_r(double alpha, const struct hazard_chem *c, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += c[i].beta * c[i].q / c[i].Q;
    return round6(alpha * sum);
}

int hazard_level(double r)
{
    if (r >= 100)
        return 1;
    if (r >= 50)
        return 2;
    if (r >= 10)
        return 3;
    return 4;
}

static bool text_ok(const char *s, size_t max)
{
    return s && s[0] && strlen(s) <= max && g_utf8_validate(s, -1, NULL);
}

/* A finite number field within [lo, hi]; absent gives false. */
static bool number_in(const json_t *obj, const char *key, double lo, double hi, double *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return isfinite(*out) && *out >= lo && *out <= hi;
}

static const char *const kinds[] = {"tank_farm", "warehouse", "production_unit"};

/* Validates one chemical and appends its normalised form to out. */
static bool chemical_eval(const json_t *in, json_t *out, struct hazard_chem *c, json_t *flags,
                          const char **why)
{
    const char *name = json_string_value(json_object_get(in, "name"));
    const char *cat = json_string_value(json_object_get(in, "category"));
    const char *cas = json_string_value(json_object_get(in, "cas"));
    if (!json_is_object(in) || !text_ok(name, HAZARD_NAME_MAX)) {
        *why = "each chemical needs a name (1 to 200 bytes)";
        return false;
    }
    if (json_object_get(in, "category") && (!cat || !category_known(cat))) {
        *why = "chemical category must be one of J1..J5, W1.1, W1.2, W1.3, W2, W5.1, W5, W6.1, "
               "W7.1, other";
        return false;
    }
    if (json_object_get(in, "cas") && !text_ok(cas, 32)) {
        *why = "chemical cas must be 1 to 32 bytes";
        return false;
    }
    if (!number_in(in, "max_qty_t", 0, 1e9, &c->q)) {
        *why = "chemical max_qty_t must be a number of tonnes, 0 to 1e9";
        return false;
    }
    if (!number_in(in, "critical_qty_t", 1e-6, 1e9, &c->Q)) {
        *why = "chemical critical_qty_t must be a positive number of tonnes, up to 1e9";
        return false;
    }
    double declared = 0;
    bool has_declared = json_object_get(in, "beta") != NULL;
    if (has_declared && !number_in(in, "beta", 0.1, 100, &declared)) {
        *why = "chemical beta must be a number in [0.1, 100]";
        return false;
    }
    double table = hazard_beta(name, cat);
    /* The standard's value wins; a chemical it does not name keeps the
     * declared β, or 1 ("everything else"). */
    c->beta = table > 0 ? table : has_declared ? declared : 1;
    json_t *o = json_pack("{s:s, s:f, s:f, s:f}", "name", name, "max_qty_t", c->q, "critical_qty_t",
                          c->Q, "beta", c->beta);
    if (cat)
        json_object_set_new(o, "category", json_string(cat));
    if (cas)
        json_object_set_new(o, "cas", json_string(cas));
    if (has_declared) {
        json_object_set_new(o, "declared_beta", json_real(declared));
        if (table > 0 && fabs(table - declared) > 1e-9) {
            json_object_set_new(o, "beta_differs", json_true());
            char *f = g_strdup_printf("beta_differs:%s", name);
            json_array_append_new(flags, json_string(f));
            g_free(f);
        }
    }
    json_array_append_new(out, o);
    return true;
}

json_t *hazard_source_eval(const json_t *in, const char **why)
{
    if (!json_is_object(in)) {
        *why = "a hazard source must be an object";
        return NULL;
    }
    const char *name = json_string_value(json_object_get(in, "name"));
    const char *kind = json_string_value(json_object_get(in, "kind"));
    json_t *people = json_object_get(in, "people_500m");
    const json_t *chems = json_object_get(in, "chemicals");
    if (!text_ok(name, HAZARD_NAME_MAX)) {
        *why = "hazard source name must be 1 to 200 bytes of UTF-8";
        return NULL;
    }
    bool kind_ok = false;
    for (size_t i = 0; kind && i < G_N_ELEMENTS(kinds); i++)
        kind_ok = kind_ok || strcmp(kind, kinds[i]) == 0;
    if (!kind_ok) {
        *why = "hazard source kind must be tank_farm, warehouse or production_unit";
        return NULL;
    }
    if (!json_is_integer(people) || json_integer_value(people) < 0 ||
        json_integer_value(people) > 10000000) {
        *why = "people_500m must be an integer, 0 to 10000000";
        return NULL;
    }
    size_t n = json_array_size(chems);
    if (!json_is_array(chems) || n < 1 || n > HAZARD_MAX_CHEMICALS) {
        *why = "chemicals must be an array of 1 to 100 chemicals";
        return NULL;
    }
    const json_t *dl = json_object_get(in, "declared_level");
    if (dl && (!json_is_integer(dl) || json_integer_value(dl) < 1 || json_integer_value(dl) > 4)) {
        *why = "declared_level must be 1, 2, 3 or 4";
        return NULL;
    }
    double declared_r = 0;
    bool has_r = json_object_get(in, "declared_r") != NULL;
    if (has_r && !number_in(in, "declared_r", 0, 1e12, &declared_r)) {
        *why = "declared_r must be a non-negative number";
        return NULL;
    }
    struct hazard_chem *c = g_new0(struct hazard_chem, n);
    json_t *flags = json_array();
    json_t *out_chems = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!chemical_eval(json_array_get(chems, i), out_chems, &c[i], flags, why)) {
            g_free(c);
            json_decref(flags);
            json_decref(out_chems);
            return NULL;
        }
    }
    double alpha = hazard_alpha(json_integer_value(people));
    double s = hazard_s(c, n), r = hazard_r(alpha, c, n);
    int level = hazard_level(r);
    g_free(c);
    json_t *out = json_pack("{s:s, s:s, s:I, s:o, s:f, s:f, s:f, s:i, s:b}", "name", name, "kind",
                            kind, "people_500m", json_integer_value(people), "chemicals", out_chems,
                            "alpha", alpha, "s", s, "r", r, "level", level, "major", s >= 1);
    const char *id = json_string_value(json_object_get(in, "id"));
    if (id)
        json_object_set_new(out, "id", json_string(id));
    if (dl) {
        json_object_set(out, "declared_level", (json_t *)dl);
        if (json_integer_value(dl) != level)
            json_array_append_new(flags, json_string("declared_level_differs"));
    }
    if (has_r) {
        json_object_set_new(out, "declared_r", json_real(declared_r));
        if (fabs(declared_r - r) > HAZARD_R_TOLERANCE)
            json_array_append_new(flags, json_string("declared_r_differs"));
    }
    if (s < 1)
        json_array_append_new(flags, json_string("below_threshold"));
    json_object_set_new(out, "flags", flags);
    return out;
}
