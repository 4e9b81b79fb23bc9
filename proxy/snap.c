/* snap.c: the reference-counted configuration snapshot of worker.h. */
#include "snap.h"

#include <stdlib.h>

#include "cfg.h"
#include "tls.h"

struct snap *snap_new(struct cfg *cfg, struct tls_server *tls)
{
    struct snap *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->refs = 1;
    s->cfg = cfg;
    s->tls = tls;
    return s;
}

struct snap *snap_ref(struct snap *s)
{
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    return s;
}

void snap_unref(struct snap *s)
{
    if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    tls_server_free(s->tls);
    cfg_unref(s->cfg);
    free(s);
}
