/* stub.c - the SDK calls not written yet: each fails with DVEC_EUNSUPPORTED. Temporary. */
#include <string.h>

#include "client_int.h"

#define STUB(name) return cl_failf(err, DVEC_EUNSUPPORTED, "%s: not implemented yet", name)

DVEC_API void dvec_collection_config_init(dvec_collection_config *cfg, uint32_t dim)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dim = dim;
}

DVEC_API int dvec_collection_create(dvec_client *c, const char *name,
                                    const dvec_collection_config *cfg, dvec_error *err)
{
    STUB("dvec_collection_create");
}

DVEC_API int dvec_collection_drop(dvec_client *c, const char *name, dvec_error *err)
{
    STUB("dvec_collection_drop");
}

DVEC_API int dvec_collection_list(dvec_client *c, char ***names, size_t *n, dvec_error *err)
{
    STUB("dvec_collection_list");
}

DVEC_API void dvec_strings_free(char **names, size_t n)
{
}

DVEC_API int dvec_collection_info_get(dvec_client *c, const char *name, dvec_collection_info *out,
                                      dvec_error *err)
{
    STUB("dvec_collection_info_get");
}

DVEC_API void dvec_collection_info_free(dvec_collection_info *info)
{
}

DVEC_API int dvec_payload_index_create(dvec_client *c, const char *coll, const char *key,
                                       const char *kind, dvec_error *err)
{
    STUB("dvec_payload_index_create");
}

DVEC_API int dvec_id_parse(const char *text, dvec_id *out)
{
    return DVEC_EUNSUPPORTED;
}

DVEC_API void dvec_id_format(const dvec_id *id, char *buf)
{
    buf[0] = '\0';
}

DVEC_API int dvec_upsert(dvec_client *c, const char *coll, const dvec_point *points, size_t n,
                         uint32_t dim, dvec_error *err)
{
    STUB("dvec_upsert");
}

DVEC_API int dvec_delete(dvec_client *c, const char *coll, const dvec_id *ids, size_t n,
                         uint64_t *deleted, dvec_error *err)
{
    STUB("dvec_delete");
}

DVEC_API void dvec_records_free(dvec_records *r)
{
}

DVEC_API int dvec_get(dvec_client *c, const char *coll, const dvec_id *ids, size_t n,
                      bool with_vector, bool with_payload, dvec_records *out, dvec_error *err)
{
    STUB("dvec_get");
}

DVEC_API int dvec_set_payload(dvec_client *c, const char *coll, dvec_payload_op op,
                              const dvec_id *ids, size_t n, const char *json, dvec_error *err)
{
    STUB("dvec_set_payload");
}

DVEC_API int dvec_count(dvec_client *c, const char *coll, const char *filter_json, uint64_t *out,
                        dvec_error *err)
{
    STUB("dvec_count");
}

DVEC_API int dvec_scroll(dvec_client *c, const char *coll, const dvec_scroll_params *p,
                         dvec_records *out, dvec_id *next, bool *has_next, dvec_error *err)
{
    STUB("dvec_scroll");
}

DVEC_API void dvec_search_params_init(dvec_search_params *p)
{
    memset(p, 0, sizeof *p);
    p->k = 10;
}

DVEC_API int dvec_search(dvec_client *c, const char *coll, const float *query, uint32_t dim,
                         const dvec_search_params *p, dvec_records *out, bool *partial,
                         dvec_error *err)
{
    STUB("dvec_search");
}

DVEC_API int dvec_search_batch(dvec_client *c, const char *coll, const float *queries, size_t nq,
                               uint32_t dim, const dvec_search_params *p, dvec_records *out,
                               bool *partial, dvec_error *err)
{
    STUB("dvec_search_batch");
}

DVEC_API int dvec_cluster_status(dvec_client *c, char **json, dvec_error *err)
{
    STUB("dvec_cluster_status");
}
