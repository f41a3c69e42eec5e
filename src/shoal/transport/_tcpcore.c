/*
 * shoal.transport._tcpcore: the engine's one-call paths for a small message between hosts.
 *
 * One type, Fast, made by TcpEndpoint.bind_fast_paths for an engine: its send_fast and
 * receive_fast are the engine's (as the compiled rings' are on one host; see
 * Engine.send_fast).  They do in C what the engine's Python one-step paths do through
 * four layers (engine, endpoint, record layer): check the engine's state (its lock free,
 * nothing queued towards the peer, nothing posted or waiting on the context, no body half
 * read) and the link's (nothing queued, cut, failed, ended or read into in place), then
 * seal and send the frame, or read, open and match it straight into the receive's buffer,
 * with the compiled record core's own calls (Direction.seal_send, recv_take and
 * spin_readable; see shoal/security/_recordcore.c).  Every other case is the Python
 * code's: send_fast says False (the engine's general send), receive_fast hands the call to
 * the engine's Python one-step path (which handles what came, then the general receive).
 *
 * The engine's lock is taken (without waiting) around each step, as the Python path does:
 * the record layer's sequence numbers and the link's state are the lock's.  No state lives
 * here but references: the link objects stay the truth.  The pure-Python paths stay the
 * fallback, chosen when this module or the compiled record core is missing, or with
 * SHOAL_PURE_PYTHON set; the tests run both.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#define HEADER_SIZE 48   /* shoal.wire.header: little-endian <BBHIqqQQQ */
#define LENGTH_AT 40     /* the body's length in the header */
#define KIND_DATA 1
#define FLAG_SYNC 0x02
#define SEND_MOST (128 * 1024 - HEADER_SIZE)  /* seal_send's most; the link's one_frame says */

typedef struct {
    PyObject_HEAD
    PyObject *links;        /* the endpoint's list of _Link (or None), one per rank */
    PyObject *view;         /* the endpoint's receive buffer */
    PyObject *head;         /* bytearray(48): a matched header, decrypted */
    PyObject *frame_type;   /* what a received message is made as */
    PyObject *endpoint;     /* its helpers: _took, _queue_rest, _send_error */
    PyObject *lock;         /* the engine's */
    PyObject *posted, *unexpected, *queues, *reading;
    PyObject *acknowledge;  /* engine._acknowledge(frame), for a synchronous send's frame */
    PyObject *fallback;     /* engine._receive_fast: the Python one-step receive */
    Py_ssize_t size;
    long long want_ctx, want_tag;  /* the match last asked for, and its bytes */
    PyObject *want, *mask;
} Fast;

static PyObject *s_out, *s_failure, *s_peer_closed, *s_eof, *s_partial, *s_sink, *s_inbox,
    *s_size, *s_channel, *s_parts, *s_sendable, *s_seal_send, *s_recv_take,
    *s_spin_readable, *s_fd, *s_whole_limit, *s_ready, *s_acquire, *s_release, *s_took,
    *s_queue_rest, *s_send_error, *s_one_frame;

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put_le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* -- the engine's lock and state ------------------------------------------------------ */

/* 1 taken, 0 busy, -1 error. */
static int take_lock(Fast *self) {
    PyObject *args[2] = {self->lock, Py_False};
    PyObject *got = PyObject_VectorcallMethod(s_acquire, args, 2, NULL);
    if (got == NULL) return -1;
    int taken = got == Py_True;
    Py_DECREF(got);
    return taken;
}

static int drop_lock(Fast *self) {
    PyObject *got = PyObject_CallMethodNoArgs(self->lock, s_release);
    if (got == NULL) return -1;
    Py_DECREF(got);
    return 0;
}

/* 1 if d.get(ctx) is a non-empty list, 0 if not, -1 on error. */
static int waiting_on(PyObject *d, long long ctx) {
    PyObject *key = PyLong_FromLongLong(ctx);
    if (key == NULL) return -1;
    PyObject *item = PyDict_GetItemWithError(d, key); /* borrowed */
    Py_DECREF(key);
    if (item == NULL) return PyErr_Occurred() ? -1 : 0;
    return PyObject_IsTrue(item);
}

/* 1 if the engine's state lets a one-step receive from src on ctx go now. */
static int engine_allows(Fast *self, Py_ssize_t src, long long ctx) {
    int busy = waiting_on(self->posted, ctx);
    if (busy != 0) return busy < 0 ? -1 : 0;
    busy = waiting_on(self->unexpected, ctx);
    if (busy != 0) return busy < 0 ? -1 : 0;
    PyObject *reading = PyList_GetItem(self->reading, src); /* borrowed */
    if (reading == NULL) return -1;
    return reading == Py_None;
}

/* -- the link's state ------------------------------------------------------------------ */

/* The attribute's truth (1/0), or -1 on error. */
static int truth(PyObject *obj, PyObject *name) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) return -1;
    int t = PyObject_IsTrue(v);
    Py_DECREF(v);
    return t;
}

static int is_none(PyObject *obj, PyObject *name) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) return -1;
    int none = v == Py_None;
    Py_DECREF(v);
    return none;
}

/* 1 if nothing waits to go on the link, it has not failed and its peer has not closed. */
static int link_sendable(PyObject *link) {
    int t;
    if ((t = truth(link, s_out)) != 0) return t < 0 ? -1 : 0;
    if ((t = is_none(link, s_failure)) != 1) return t;
    if ((t = truth(link, s_peer_closed)) != 0) return t < 0 ? -1 : 0;
    PyObject *channel = PyObject_GetAttr(link, s_channel);
    if (channel == NULL) return -1;
    t = truth(channel, s_sendable);
    Py_DECREF(channel);
    return t;
}

/* 1 if the link is in its plain state for a read: nothing in its inbox, queued, cut,
 * failed, ended or being read into in place, and no message half opened. */
static int link_plain(PyObject *link) {
    int t;
    PyObject *inbox = PyObject_GetAttr(link, s_inbox);
    if (inbox == NULL) return -1;
    t = truth(inbox, s_size);
    Py_DECREF(inbox);
    if (t != 0) return t < 0 ? -1 : 0;
    if ((t = truth(link, s_out)) != 0) return t < 0 ? -1 : 0;
    if ((t = is_none(link, s_partial)) != 1) return t;
    if ((t = is_none(link, s_failure)) != 1) return t;
    if ((t = truth(link, s_eof)) != 0) return t < 0 ? -1 : 0;
    if ((t = is_none(link, s_sink)) != 1) return t;
    PyObject *channel = PyObject_GetAttr(link, s_channel);
    if (channel == NULL) return -1;
    t = truth(channel, s_parts);
    Py_DECREF(channel);
    return t < 0 ? -1 : !t;
}

/* -- sending ------------------------------------------------------------------------- */

/* send_fast(dst, ctx, tag, payload, flags) -> bool
 * A standard (not synchronous) send of one small payload (contiguous bytes) as one DATA
 * frame, sealed and sent now, when nothing waits before it towards dst; False: nothing
 * was done, the engine's send does it. */
static PyObject *Fast_send_fast(Fast *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) return PyErr_Format(PyExc_TypeError, "send_fast(dst, ctx, tag, payload, flags)");
    Py_ssize_t dst = PyLong_AsSsize_t(args[0]);
    long long ctx = PyLong_AsLongLong(args[1]);
    long long tag = PyLong_AsLongLong(args[2]);
    long flags = PyLong_AsLong(args[4]);
    if (PyErr_Occurred()) return NULL;
    if (self->lock == NULL || dst < 0 || dst >= self->size || (flags & FLAG_SYNC))
        Py_RETURN_FALSE;
    PyObject *link = PyList_GET_ITEM(self->links, dst); /* borrowed */
    if (link == Py_None) Py_RETURN_FALSE;  /* (this rank's own, or no link) */
    Py_buffer payload;
    if (PyObject_GetBuffer(args[3], &payload, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();  /* the general path says what is wrong with it */
        Py_RETURN_FALSE;
    }
    PyObject *result = NULL;
    if (payload.len > SEND_MOST) {
        PyBuffer_Release(&payload);
        Py_RETURN_FALSE;
    }
    int taken = take_lock(self);
    if (taken <= 0) {
        PyBuffer_Release(&payload);
        if (taken < 0) return NULL;
        Py_RETURN_FALSE;
    }
    PyObject *queue = PyList_GetItem(self->queues, dst); /* borrowed */
    int ok = queue == NULL ? -1 : !PyObject_IsTrue(queue);
    if (ok == 1) ok = link_sendable(link);
    if (ok == 1) {  /* the most this link sends in one frame */
        PyObject *most = PyObject_GetAttr(link, s_one_frame);
        Py_ssize_t one_frame = most == NULL ? -1 : PyLong_AsSsize_t(most);
        Py_XDECREF(most);
        if (one_frame == -1 && PyErr_Occurred()) ok = -1;
        else if (payload.len > one_frame) ok = 0;
    }
    PyObject *seal_send = NULL, *fd = NULL, *header = NULL;
    if (ok == 1) {
        seal_send = PyObject_GetAttr(link, s_seal_send);
        fd = seal_send == NULL ? NULL : PyObject_GetAttr(link, s_fd);
        if (fd == NULL) ok = -1;
        else if (seal_send == Py_None) ok = 0;
    }
    if (ok == 1) {
        header = PyBytes_FromStringAndSize(NULL, HEADER_SIZE);
        if (header == NULL) ok = -1;
    }
    if (ok == 1) {
        unsigned char *h = (unsigned char *)PyBytes_AS_STRING(header);
        memset(h, 0, HEADER_SIZE);
        h[0] = KIND_DATA;
        h[1] = (unsigned char)flags;
        put_le(h + 2, 1, 2);  /* one part */
        put_le(h + 8, (uint64_t)tag, 8);
        put_le(h + 16, (uint64_t)ctx, 8);
        put_le(h + 32, now_ns(), 8);
        put_le(h + LENGTH_AT, (uint64_t)payload.len, 8);
        PyObject *call[3] = {fd, header, args[3]};
        PyObject *rest = PyObject_Vectorcall(seal_send, call, 3, NULL);
        if (rest == NULL) {
            /* The Python path's handling: a SecurityError fails the link and raises, an
             * OSError marks it broken (the send is then done, as a lost peer's is). */
            PyObject *type, *value, *trace;
            PyErr_Fetch(&type, &value, &trace);
            PyErr_NormalizeException(&type, &value, &trace);
            if (trace != NULL && value != NULL) PyException_SetTraceback(value, trace);
            PyObject *handled = value == NULL ? NULL : PyObject_CallMethodObjArgs(
                self->endpoint, s_send_error, link, value, NULL);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(trace);
            if (handled == NULL) ok = -1;
            else Py_DECREF(handled);
        } else {
            if (rest != Py_None) {  /* what the socket did not take: the link's queue */
                PyObject *queued = PyObject_CallMethodObjArgs(self->endpoint, s_queue_rest,
                                                              link, rest, NULL);
                if (queued == NULL) ok = -1;
                else Py_DECREF(queued);
            }
            Py_DECREF(rest);
        }
    }
    Py_XDECREF(seal_send);
    Py_XDECREF(fd);
    Py_XDECREF(header);
    PyBuffer_Release(&payload);
    if (ok < 0) {
        PyObject *type, *value, *trace;
        PyErr_Fetch(&type, &value, &trace);
        drop_lock(self);
        PyErr_Restore(type, value, trace);
        return NULL;
    }
    if (drop_lock(self) < 0) return NULL;
    result = ok ? Py_True : Py_False;
    Py_INCREF(result);
    return result;
}

/* -- receiving ------------------------------------------------------------------------ */

enum { TOOK_FRAME, TOOK_NOTHING, TOOK_NONE, TOOK_PYTHON, TOOK_ERROR };

/* The want/mask bytes of recv_take for (ctx, tag): kind DATA, the tag (unless -1: any)
 * and the context; the rest of the header left out. */
static int wanted(Fast *self, long long ctx, long long tag) {
    if (self->want != NULL && self->want_ctx == ctx && self->want_tag == tag) return 0;
    PyObject *want = PyBytes_FromStringAndSize(NULL, HEADER_SIZE);
    PyObject *mask = PyBytes_FromStringAndSize(NULL, HEADER_SIZE);
    if (want == NULL || mask == NULL) {
        Py_XDECREF(want);
        Py_XDECREF(mask);
        return -1;
    }
    unsigned char *w = (unsigned char *)PyBytes_AS_STRING(want);
    unsigned char *m = (unsigned char *)PyBytes_AS_STRING(mask);
    memset(w, 0, HEADER_SIZE);
    memset(m, 0, HEADER_SIZE);
    w[0] = KIND_DATA;
    m[0] = 0xFF;
    if (tag != -1) {
        put_le(w + 8, (uint64_t)tag, 8);
        memset(m + 8, 0xFF, 8);
    }
    put_le(w + 16, (uint64_t)ctx, 8);
    memset(m + 16, 0xFF, 8);
    Py_XSETREF(self->want, want);
    Py_XSETREF(self->mask, mask);
    self->want_ctx = ctx;
    self->want_tag = tag;
    return 0;
}

/* The frame of the header in self->head, from src, its body in the receive's buffer. */
static PyObject *frame_of_head(Fast *self, Py_ssize_t src) {
    const unsigned char *h = (const unsigned char *)PyByteArray_AS_STRING(self->head);
    PyObject *fields[10];
    fields[0] = PyLong_FromSsize_t(src);
    fields[1] = PyLong_FromLongLong((long long)get_le(h + 8, 8));   /* tag */
    fields[2] = PyLong_FromLongLong((long long)get_le(h + 16, 8));  /* ctx */
    fields[3] = PyLong_FromLong(h[1]);                               /* flags */
    fields[4] = PyLong_FromLong((long)get_le(h + 2, 2));             /* nparts */
    fields[5] = PyLong_FromUnsignedLongLong(get_le(h + 24, 8));      /* seq */
    fields[6] = PyLong_FromUnsignedLongLong(get_le(h + 32, 8));      /* stamp */
    fields[7] = PyLong_FromUnsignedLongLong(get_le(h + LENGTH_AT, 8));
    fields[8] = Py_None;
    Py_INCREF(Py_None);
    fields[9] = PyLong_FromLong(h[0]);                               /* kind */
    PyObject *frame = NULL;
    int complete = 1;
    for (int i = 0; i < 10; i++) complete &= fields[i] != NULL;
    if (complete) frame = PyObject_Vectorcall(self->frame_type, fields, 10, NULL);
    for (int i = 0; i < 10; i++) Py_XDECREF(fields[i]);
    return frame;
}

/* One look at src's link, the engine's lock held around it: *frame set (TOOK_FRAME), or
 * nothing came (TOOK_NOTHING), or the general path (TOOK_NONE), or the Python one-step
 * path must look (TOOK_PYTHON: what was read is in the inbox, or the link is not plain). */
static int take_once(Fast *self, Py_ssize_t src, long long ctx, long long tag,
                     PyObject *buffer, PyObject *link, PyObject **frame) {
    int taken = take_lock(self);
    if (taken <= 0) return taken < 0 ? TOOK_ERROR : TOOK_NONE;
    int outcome = TOOK_ERROR;
    PyObject *recv_take = NULL, *fd = NULL, *limit = NULL, *got = NULL;
    int allowed = engine_allows(self, src, ctx);
    if (allowed <= 0) {
        outcome = allowed < 0 ? TOOK_ERROR : TOOK_NONE;
        goto done;
    }
    int plain = link_plain(link);
    if (plain <= 0) {
        outcome = plain < 0 ? TOOK_ERROR : TOOK_PYTHON;
        goto done;
    }
    recv_take = PyObject_GetAttr(link, s_recv_take);
    fd = recv_take == NULL ? NULL : PyObject_GetAttr(link, s_fd);
    limit = fd == NULL ? NULL : PyObject_GetAttr(link, s_whole_limit);
    if (limit == NULL || wanted(self, ctx, tag) < 0) goto done;
    if (recv_take == Py_None) {
        outcome = TOOK_PYTHON;
        goto done;
    }
    PyObject *length_at = PyLong_FromLong(LENGTH_AT);
    if (length_at == NULL) goto done;
    PyObject *call[8] = {fd, self->view, limit, self->want, self->mask, length_at, self->head,
                         buffer};
    got = PyObject_Vectorcall(recv_take, call, 8, NULL);
    Py_DECREF(length_at);
    if (got == NULL) {
        /* A failed read (the socket broke): the Python path reads again and says so. */
        PyErr_Clear();
        outcome = TOOK_PYTHON;
        goto done;
    }
    if (got == Py_True) {
        if (PyObject_SetAttr(link, s_ready, Py_False) < 0) goto done;
        *frame = frame_of_head(self, src);
        if (*frame == NULL) goto done;
        if (PyByteArray_AS_STRING(self->head)[1] & FLAG_SYNC) {
            PyObject *acked = PyObject_CallOneArg(self->acknowledge, *frame);
            if (acked == NULL) {
                Py_CLEAR(*frame);
                goto done;
            }
            Py_DECREF(acked);
        }
        outcome = TOOK_FRAME;
    } else if (PyLong_CheckExact(got) && PyLong_AsLong(got) == -1) {
        if (PyObject_SetAttr(link, s_ready, Py_False) < 0) goto done;
        outcome = TOOK_NOTHING;
    } else {  /* another frame, several, or the end: the Python path's to handle */
        PyObject *handled = PyObject_CallMethodObjArgs(self->endpoint, s_took, link, got, NULL);
        if (handled == NULL) goto done;
        Py_DECREF(handled);
        outcome = TOOK_PYTHON;
    }
done:
    Py_XDECREF(got);
    Py_XDECREF(limit);
    Py_XDECREF(fd);
    Py_XDECREF(recv_take);
    if (outcome == TOOK_ERROR) {
        PyObject *type, *value, *trace;
        PyErr_Fetch(&type, &value, &trace);
        drop_lock(self);
        PyErr_Restore(type, value, trace);
        return TOOK_ERROR;
    }
    if (drop_lock(self) < 0) {
        Py_CLEAR(*frame);
        return TOOK_ERROR;
    }
    return outcome;
}

/* Peek at the link's socket until a byte waits or spin_ns pass (spin_readable). */
static int spin(PyObject *link, long long spin_ns) {
    PyObject *peek = PyObject_GetAttr(link, s_spin_readable);
    if (peek == NULL) return -1;
    if (peek == Py_None) {
        Py_DECREF(peek);
        return 0;
    }
    PyObject *fd = PyObject_GetAttr(link, s_fd);
    PyObject *ns = PyLong_FromLongLong(spin_ns);
    PyObject *got = NULL;
    if (fd != NULL && ns != NULL) {
        PyObject *call[2] = {fd, ns};
        got = PyObject_Vectorcall(peek, call, 2, NULL);
    }
    Py_DECREF(peek);
    Py_XDECREF(fd);
    Py_XDECREF(ns);
    if (got == NULL) return -1;
    int ready = got == Py_True;
    Py_DECREF(got);
    if (ready && PyObject_SetAttr(link, s_ready, Py_True) < 0) return -1;
    return ready;
}

/* receive_fast(src, ctx, tag, buffer, spin_ns) -> Frame | None
 * The next message from src, if it is this receive's (DATA on ctx with tag, -1 any,
 * nothing else posted or waiting on ctx) and came whole in one frame: its body decrypted
 * straight into buffer (writable contiguous bytes; the frame's body is None), spinning up
 * to spin_ns for it.  None: the engine's general receive.  Without a buffer, or whenever
 * the link is not in its plain state, the engine's Python one-step path answers. */
static PyObject *Fast_receive_fast(Fast *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) return PyErr_Format(PyExc_TypeError, "receive_fast(src, ctx, tag, buffer, spin_ns)");
    if (self->lock == NULL) Py_RETURN_NONE;
    Py_ssize_t src = PyLong_AsSsize_t(args[0]);
    long long ctx = PyLong_AsLongLong(args[1]);
    long long tag = PyLong_AsLongLong(args[2]);
    long long spin_ns = PyLong_AsLongLong(args[4]);
    if (PyErr_Occurred()) return NULL;
    if (src < 0 || src >= self->size) Py_RETURN_NONE;
    PyObject *link = PyList_GET_ITEM(self->links, src); /* borrowed */
    if (args[3] == Py_None || link == Py_None)
        return PyObject_Vectorcall(self->fallback, args, 5, NULL);
    if (!PyObject_CheckBuffer(args[3])) Py_RETURN_NONE;  /* the general path says why */
    Py_INCREF(link);
    PyObject *frame = NULL;
    PyObject *result = NULL;
    for (int attempt = 0;; attempt++) {
        int outcome = take_once(self, src, ctx, tag, args[3], link, &frame);
        if (outcome == TOOK_FRAME) {
            result = frame;
            break;
        }
        if (outcome == TOOK_ERROR) {
            if (PyErr_ExceptionMatches(PyExc_BufferError)) {  /* a read-only buffer... */
                PyErr_Clear();
                Py_INCREF(Py_None);
                result = Py_None;  /* ...is the general path's to refuse */
            }
            break;
        }
        if (outcome == TOOK_PYTHON) {
            result = PyObject_Vectorcall(self->fallback, args, 5, NULL);
            break;
        }
        if (outcome == TOOK_NONE || attempt || spin_ns <= 0) {
            Py_INCREF(Py_None);
            result = Py_None;
            break;
        }
        int ready = spin(link, spin_ns);
        if (ready <= 0) {
            if (ready == 0) {
                Py_INCREF(Py_None);
                result = Py_None;
            }
            break;
        }
    }
    Py_DECREF(link);
    return result;
}

/* -- the type ------------------------------------------------------------------------- */

static int Fast_init(Fast *self, PyObject *args, PyObject *kwds) {
    PyObject *links, *view, *head, *frame_type, *endpoint, *lock, *posted, *unexpected,
        *queues, *reading, *acknowledge, *fallback;
    if (!PyArg_ParseTuple(args, "O!OO!OOOO!O!O!O!OO:Fast", &PyList_Type, &links, &view,
                          &PyByteArray_Type, &head, &frame_type, &endpoint, &lock,
                          &PyDict_Type, &posted, &PyDict_Type, &unexpected, &PyList_Type,
                          &queues, &PyList_Type, &reading, &acknowledge, &fallback))
        return -1;
    Py_ssize_t size = PyList_GET_SIZE(links);
    if (PyByteArray_GET_SIZE(head) != HEADER_SIZE || PyList_GET_SIZE(queues) != size
            || PyList_GET_SIZE(reading) != size) {
        PyErr_SetString(PyExc_ValueError, "Fast: a 48-byte head, and one queue and one "
                        "reading slot per link");
        return -1;
    }
    PyObject **slots[] = {&self->links, &self->view, &self->head, &self->frame_type,
                          &self->endpoint, &self->lock, &self->posted, &self->unexpected,
                          &self->queues, &self->reading, &self->acknowledge, &self->fallback};
    PyObject *values[] = {links, view, head, frame_type, endpoint, lock, posted, unexpected,
                          queues, reading, acknowledge, fallback};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        Py_INCREF(values[i]);
        Py_XSETREF(*slots[i], values[i]);
    }
    self->size = size;
    return 0;
}

static int Fast_traverse(Fast *self, visitproc visit, void *arg) {
    Py_VISIT(self->links);
    Py_VISIT(self->view);
    Py_VISIT(self->head);
    Py_VISIT(self->frame_type);
    Py_VISIT(self->endpoint);
    Py_VISIT(self->lock);
    Py_VISIT(self->posted);
    Py_VISIT(self->unexpected);
    Py_VISIT(self->queues);
    Py_VISIT(self->reading);
    Py_VISIT(self->acknowledge);
    Py_VISIT(self->fallback);
    return 0;
}

static int Fast_clear(Fast *self) {
    Py_CLEAR(self->links);
    Py_CLEAR(self->view);
    Py_CLEAR(self->head);
    Py_CLEAR(self->frame_type);
    Py_CLEAR(self->endpoint);
    Py_CLEAR(self->lock);
    Py_CLEAR(self->posted);
    Py_CLEAR(self->unexpected);
    Py_CLEAR(self->queues);
    Py_CLEAR(self->reading);
    Py_CLEAR(self->acknowledge);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->want);
    Py_CLEAR(self->mask);
    return 0;
}

static void Fast_dealloc(Fast *self) {
    PyObject_GC_UnTrack(self);
    Fast_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Fast_methods[] = {
    {"send_fast", (PyCFunction)(void (*)(void))Fast_send_fast, METH_FASTCALL,
     "send_fast(dst, ctx, tag, payload, flags) -> bool: one small standard send, sealed and "
     "sent now when nothing waits before it (False: nothing done, the engine's send)"},
    {"receive_fast", (PyCFunction)(void (*)(void))Fast_receive_fast, METH_FASTCALL,
     "receive_fast(src, ctx, tag, buffer, spin_ns) -> Frame | None: the awaited small "
     "message, read, opened and matched straight into buffer, spinning up to spin_ns"},
    {NULL}
};

static PyTypeObject FastType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shoal.transport._tcpcore.Fast",
    .tp_doc = "Fast(links, view, head, frame_type, endpoint, lock, posted, unexpected, "
              "queues, reading, acknowledge, fallback): an engine's one-call paths over TCP.",
    .tp_basicsize = sizeof(Fast),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Fast_init,
    .tp_dealloc = (destructor)Fast_dealloc,
    .tp_traverse = (traverseproc)Fast_traverse,
    .tp_clear = (inquiry)Fast_clear,
    .tp_methods = Fast_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "shoal.transport._tcpcore",
    .m_doc = "The engine's one-call paths for small messages between hosts (see tcp.py).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__tcpcore(void) {
    struct { PyObject **slot; const char *text; } names[] = {
        {&s_out, "out"}, {&s_failure, "failure"}, {&s_peer_closed, "peer_closed"},
        {&s_eof, "eof"}, {&s_partial, "partial"}, {&s_sink, "sink"}, {&s_inbox, "inbox"},
        {&s_size, "size"}, {&s_channel, "channel"}, {&s_parts, "_parts"},
        {&s_sendable, "_sendable"}, {&s_seal_send, "seal_send"}, {&s_recv_take, "recv_take"},
        {&s_spin_readable, "spin_readable"}, {&s_fd, "fd"}, {&s_whole_limit, "whole_limit"},
        {&s_ready, "ready"}, {&s_acquire, "acquire"}, {&s_release, "release"},
        {&s_took, "_took"}, {&s_queue_rest, "_queue_rest"}, {&s_send_error, "_send_error"},
        {&s_one_frame, "one_frame"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].text);
        if (*names[i].slot == NULL) return NULL;
    }
    if (PyType_Ready(&FastType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&FastType);
    if (PyModule_AddObject(m, "Fast", (PyObject *)&FastType) < 0) {
        Py_DECREF(&FastType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
