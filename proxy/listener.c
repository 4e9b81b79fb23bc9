/* listener.c: bind, listen, accept. */
#include "listener.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <uv.h>

#include "cfg.h"
#include "conn.h"
#include "log.h"
#include "worker.h"

#define LISTENER_BACKLOG 1024

struct listener {
    uv_tcp_t tcp;
    struct worker *w; /* borrowed */
    size_t idx;       /* in w->snap->cfg->listeners: the current snapshot's, after a reload too */
};

static void connection_cb(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    const struct cfg_listener *cl = &l->w->snap->cfg->listeners[l->idx];

    if (status < 0) {
        log_msg(LOG_WARN, "listener=%s accept: %s", cl->name, uv_strerror(status));
        return;
    }
    conn_accept(l->w, server, cl);
}

static void free_cb(uv_handle_t *h)
{
    free(h->data);
}

int listener_start(struct worker *w, const struct cfg_listener *cl, struct listener **out)
{
    struct listener *l = calloc(1, sizeof(*l));
    int r;

    if (l == NULL)
        return UV_ENOMEM;
    l->w = w;
    l->idx = (size_t)(cl - w->snap->cfg->listeners);
    /* With several workers each binds every listener with SO_REUSEPORT and the kernel spreads
     * the connections; the socket must exist before bind() to set the option. */
    r = uv_tcp_init_ex(w->loop, &l->tcp, cl->listen.ss.ss_family);
    if (r < 0) {
        free(l);
        return r;
    }
    l->tcp.data = l;
    if (w->nworkers > 1) {
        uv_os_fd_t fd;
        int on = 1;

        r = uv_fileno((uv_handle_t *)&l->tcp, &fd);
        if (r == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0)
            r = -errno;
    }
    if (r == 0)
        r = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&cl->listen.ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&l->tcp, LISTENER_BACKLOG, connection_cb);
    if (r < 0) {
        log_msg(LOG_ERROR, "listener=%s cannot listen on %s: %s", cl->name, cl->listen.text,
                uv_strerror(r));
        uv_close((uv_handle_t *)&l->tcp, free_cb);
        return r;
    }
    log_msg(LOG_INFO, "listener=%s listening on %s kind=%s tls=%s", cl->name, cl->listen.text,
            cfg_kind_name(cl->kind), cfg_tls_name(cl->tls));
    *out = l;
    return 0;
}

void listener_stop(struct listener *l)
{
    if (l != NULL && !uv_is_closing((uv_handle_t *)&l->tcp))
        uv_close((uv_handle_t *)&l->tcp, free_cb);
}
