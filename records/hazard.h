/* Major hazard sources (重大危险源) graded by GB 18218-2018.
 *
 * A unit (tank farm, warehouse, production unit) holds chemicals i with
 * maximum quantity q_i and critical quantity Q_i (tonnes). It is a major
 * hazard source when S = Σ q_i/Q_i ≥ 1. Its grading index is
 * R = α · Σ β_i q_i/Q_i, with β_i the correction of chemical i (Table 3 for
 * the named toxic gases, Table 4 by hazard category, 1 otherwise) and α
 * from the people exposed within 500 m (Table 5). R is rounded to 6
 * decimal places and graded (Table 6): level 1 R ≥ 100, level 2 50 ≤ R <
 * 100, level 3 10 ≤ R < 50, level 4 R < 10.
 *
 * hazard_source_eval() takes a source as an enterprise submits it, checks
 * every field, and returns it with the computed values and the flags a
 * reviewer must look at: a declared level or R or β that disagrees with the
 * computed one, and a unit below the threshold (S < 1). */
#ifndef YJT_HAZARD_H
#define YJT_HAZARD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HAZARD_MAX_CHEMICALS 100
#define HAZARD_NAME_MAX 200
/* A declared R this far from the computed one is flagged. */
#define HAZARD_R_TOLERANCE 0.01

struct hazard_chem {
    double q;    /* maximum quantity held, t */
    double Q;    /* critical quantity, t (> 0) */
    double beta; /* correction */
};

/* α for the number of people exposed within 500 m. */
double hazard_alpha(int64_t people);
/* β from Table 3 for a named toxic gas (Chinese or English name), else
 * from Table 4 for a hazard category ("J1".."J5", "W1.1".."W1.3", "W2",
 * "W5.1", "W5" (other flammable liquids), "W6.1", "W7.1", "other"); 0 if
 * neither is known (category NULL or unknown, name not in Table 3). */
double hazard_beta(const char *name, const char *category);
/* S = Σ q/Q, and R = α Σ β q/Q rounded to 6 decimals. */
double hazard_s(const struct hazard_chem *c, size_t n);
double hazard_r(double alpha, const struct hazard_chem *c, size_t n);
/* The level (1..4) of an R value. */
int hazard_level(double r);

/* Validates a hazard source (see docs/protocol.md for its fields) and
 * returns a new object with the normalised input plus "alpha", "s", "r",
 * "level", "major" (S ≥ 1) and "flags" (array of strings). NULL with *why
 * (static text) for bad input. */
json_t *hazard_source_eval(const json_t *in, const char **why);

#endif
