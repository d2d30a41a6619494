/* The enterprise file (一企一档): the full record of a plant, its major
 * hazard sources, and the review workflow that keeps it trustworthy.
 *
 * The approved record is the enterprise's document in "enterprises" (the
 * same document org.c creates, so calls, patrols and presence keep reading
 * "name", "division" and "key"). An enterprise user edits a draft
 * ("enterprise_drafts", one per enterprise, status draft → submitted →
 * rejected or approved); a regulator approves or rejects it with a
 * comment. Approval copies the draft over the record, bumps "version",
 * sets "confirmed_at", and appends {version, who, when, changes, record}
 * to the sequence "enterprise_history:<id>". Bulk import writes approved
 * records directly and leaves the same history.
 *
 * Record fields (see docs/protocol.md): name, credit_code, division, park,
 * address, location (GeoJSON Point), boundary (GeoJSON Polygon),
 * principal {name, phone}, safety_managers [{name, phone}], licence
 * (production, operation, use), processes (names from the official list
 * of 18 key-supervised processes), key, hazard_sources (hazard.h).
 * Bookkeeping fields the server keeps: version, confirmed_at,
 * confirmed_by, review_status (none, draft, submitted, rejected,
 * approved), hazard_level (the highest level of its major sources, 0 if
 * none), updated_at. */
#ifndef YJT_ENTERPRISE_H
#define YJT_ENTERPRISE_H

#include "common/errors.h"
#include "records/store.h"

#include <stdbool.h>

#define ENTERPRISE_PROCESSES 18
#define ENTERPRISE_MAX_SOURCES 50
#define ENTERPRISE_MAX_MANAGERS 10
#define ENTERPRISE_COMMENT_MAX 2000

extern const char *const enterprise_processes[ENTERPRISE_PROCESSES];

int enterprise_init(struct store *st);

/* Validates the record fields present in patch (a JSON object; a null
 * value removes an optional field) and merges them, normalised, into rec.
 * Unknown fields are refused. Returns false with *why (static) on bad
 * input, leaving rec partly merged. */
bool enterprise_merge_fields(json_t *rec, const json_t *patch, const char **why);
/* True if rec has every field a submitted record needs; *why otherwise. */
bool enterprise_complete(const json_t *rec, const char **why);

/* The draft of enterprise id (a new reference), or NULL (none, or a store
 * error: *rc tells). */
json_t *enterprise_draft_get(struct store *st, const char *id, int *rc);

/* The workflow. Each returns ERR_NONE, or an error code with *why (static
 * text): not_found (no such enterprise or hazard source), conflict (the
 * draft is submitted and waits for review, or there is no submitted draft
 * to review, or a credit code already belongs to another enterprise),
 * bad_request (invalid fields), too_large, unavailable (store). The
 * caller checks who may act. *out (when given) gets a new reference to
 * the resulting draft (edit, submit, source calls) or record (review). */
enum err_code enterprise_edit(struct store *st, const char *id, const char *actor,
                              const json_t *patch, json_t **out, const char **why);
enum err_code enterprise_source_put(struct store *st, const char *id, const char *actor,
                                    const char *source_id, const json_t *src, json_t **out,
                                    const char **why);
enum err_code enterprise_source_delete(struct store *st, const char *id, const char *actor,
                                       const char *source_id, const char **why);
enum err_code enterprise_submit(struct store *st, const char *id, const char *actor, json_t **out,
                                const char **why);
enum err_code enterprise_review(struct store *st, const char *id, const char *actor, bool approve,
                                const char *comment, json_t **out, const char **why);
/* Approved versions, newest first, at most limit. *out gets an array. */
int enterprise_history(struct store *st, const char *id, int limit, json_t **out);

/* Writes rec (validated, complete) as the approved record of id, created
 * if new, with a history entry by actor ("import" source). Used by bulk
 * import. Returns as the workflow calls do. */
enum err_code enterprise_put_approved(struct store *st, const char *id, const json_t *fields,
                                      const char *actor, const char *source, const char **why);
/* The same from doc, the record as the caller read it (NULL: none), and,
 * with code_read, its new credit code found free by
 * enterprise_code_free(): it reads nothing, so that a request that read
 * all it needs first (a replayed import) writes without waiting. */
enum err_code enterprise_put_read(struct store *st, const char *id, json_t *doc,
                                  const json_t *fields, const char *actor, const char *source,
                                  bool code_read, const char **why);
/* Whether the credit code of rec (the record id is about to store) is
 * another enterprise's, read from the unique index (replayed where the
 * request is), so that the write need not wait for the index's answer:
 * it is sent as a kept write (store_doc_put_kept), a value taken
 * meanwhile failing its batch. STORE_OK (free, or id's own, or rec has
 * none), STORE_ECONFLICT, or a store code. */
int enterprise_code_free(struct store *st, const char *id, json_t *rec);

#endif
