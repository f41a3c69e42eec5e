/*
 * shoal.transport._shmcore: the data plane of the shared-memory rings, compiled.
 *
 * One type, Rings: one rank's view of the job's segment (the layout is documented in
 * shoal/transport/shm.py) and the frame format of shoal/wire/header.py.  It is the
 * compiled twin of shoal.transport.shm.PyRings, method for method; ShmEndpoint uses
 * whichever is available (SHOAL_PURE_PYTHON=1 forces the Python one), and the tests run
 * both.  Nothing here knows about matching, requests or communicators.
 *
 * What C buys over Python here:
 *   - a whole small frame is written (header packed in place, stamped, payload copied,
 *     tail published, peer woken) or taken (header parsed, body copied out) in one call;
 *   - waiting spins with the GIL released, so other threads of the rank run meanwhile
 *     (THREAD_MULTIPLE), and sleeps in poll(2) on the doorbell;
 *   - real memory barriers: the tail/head are published with release stores and read with
 *     acquire loads, and the sleep/wake handshake has a full fence on both sides, so the
 *     rings are correct on weakly ordered CPUs too.
 *
 * Ring control block (u64 little-endian): head at +0 (consumer's count), tail at +64
 * (producer's count), data at +128.  Sleep flags: one u64 per rank, 64 bytes apart.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "shoal's shared-memory frames are little-endian; use the pure-Python path here"
#endif

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define CPU_RELAX() __asm__ __volatile__("yield" ::: "memory")
#else
#define CPU_RELAX() do {} while (0)
#endif

#define HEADER_SIZE 48
#define FAST_SMALL (16 * 1024)  /* bodies the one-call fast paths take until bind_engine */
#define RING_CONTROL 128
#define SLEEP_STRIDE 8 /* u64s between two ranks' sleep flags (64 bytes) */

#pragma pack(push, 1)
typedef struct {
    uint8_t kind;
    uint8_t flags;
    uint16_t nparts;
    uint32_t reserved;
    int64_t tag;
    int64_t ctx;
    uint64_t seq;
    uint64_t stamp;
    uint64_t length;
} header_t;
#pragma pack(pop)

_Static_assert(sizeof(header_t) == HEADER_SIZE, "the frame header is 48 bytes");

typedef struct {
    uint64_t *head;      /* consumer's count, in shared memory */
    uint64_t *tail;      /* producer's count, in shared memory */
    unsigned char *data;
    uint64_t cap;
    uint64_t pos;        /* this side's own count (tail for outgoing, head for incoming) */
} ring_t;

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    int has_view;
    int rank;
    int size;
    ring_t *out;
    ring_t *in;
    uint64_t *sleep;     /* sleep flags, SLEEP_STRIDE apart */
    int *doorbells;      /* write ends, one per rank */
    int doorbell_read;
    int waiting;         /* calls running with the GIL released: close() must wait */
    /* The engine's state that the one-call fast paths must respect (bind_engine): */
    PyObject *locked;    /* the engine lock's bound locked() */
    PyObject *posted;    /* matcher.posted: ctx -> list of posted receives */
    PyObject *unexpected;/* matcher.unexpected: ctx -> list of waiting messages */
    PyObject *queues;    /* engine._queues: list (per rank) of deques of queued sends */
    PyObject *reading;   /* engine._reading: list (per rank) of a body being read, or None */
    uint64_t fast_limit; /* the largest body the one-call fast paths take (bind_engine) */
    uint32_t reductions[128]; /* allreduce_fast: format character -> a bit per op code */
} Rings;

static inline uint64_t load_acquire(uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t load_relaxed(uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int check_open(Rings *self) {
    if (!self->has_view) {
        PyErr_SetString(PyExc_ValueError, "the rings are closed");
        return -1;
    }
    return 0;
}

static int peer_index(Rings *self, PyObject *arg, int *peer) {
    long value = PyLong_AsLong(arg);
    if (value == -1 && PyErr_Occurred()) return -1;
    if (value < 0 || value >= self->size || value == self->rank) {
        PyErr_Format(PyExc_IndexError, "rank %ld has no ring with rank %d", value, self->rank);
        return -1;
    }
    *peer = (int)value;
    return 0;
}

/* Copy n bytes into the ring at count `at`, wrapping at the end. */
static inline void ring_put(ring_t *r, uint64_t at, const void *src, uint64_t n) {
    uint64_t start = at % r->cap;
    uint64_t first = r->cap - start;
    if (n <= first) {
        memcpy(r->data + start, src, n);
    } else {
        memcpy(r->data + start, src, first);
        memcpy(r->data, (const unsigned char *)src + first, n - first);
    }
}

/* Copy n bytes out of the ring from count `at`, wrapping at the end. */
static inline void ring_get(ring_t *r, uint64_t at, void *dest, uint64_t n) {
    uint64_t start = at % r->cap;
    uint64_t first = r->cap - start;
    if (n <= first) {
        memcpy(dest, r->data + start, n);
    } else {
        memcpy(dest, r->data + start, first);
        memcpy((unsigned char *)dest + first, r->data, n - first);
    }
}

static void ring_doorbell(Rings *self, int peer) {
    ssize_t rc;
    /* A full pipe already holds a wake-up; a closed one belongs to a rank that is gone. */
    do {
        rc = write(self->doorbells[peer], "\x01", 1);
    } while (rc < 0 && errno == EINTR);
}

/* After publishing a count the peer waits on: wake it if it sleeps.  The full fence
 * orders our store of the count before our load of its flag; the sleeper does the
 * mirror image (store flag, fence, load counts), so one of the two sees the other. */
static inline void wake_if_sleeping(Rings *self, int peer) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (load_relaxed(&self->sleep[peer * SLEEP_STRIDE])) ring_doorbell(self, peer);
}

static inline void publish_tail(Rings *self, int dst, ring_t *r, uint64_t tail) {
    __atomic_store_n(&r->pos, tail, __ATOMIC_RELAXED);
    store_release(r->tail, tail);
    wake_if_sleeping(self, dst);
}

static inline void publish_head(Rings *self, int src, ring_t *r, uint64_t head) {
    __atomic_store_n(&r->pos, head, __ATOMIC_RELAXED);
    store_release(r->head, head);
    wake_if_sleeping(self, src);
}


/* -- Frame: one received frame (the compiled twin of shoal.wire.frame.Frame) ---------- */

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    long long source;
    long long tag;
    long long ctx;
    long long flags;
    long long nparts;
    unsigned long long seq;
    unsigned long long stamp;
    unsigned long long length;
    long long kind;
    PyObject *body;
    PyObject *remote;
} Frame;

static PyMemberDef Frame_members[] = {
    {"source", T_LONGLONG, offsetof(Frame, source), 0, "the rank it came from"},
    {"tag", T_LONGLONG, offsetof(Frame, tag), 0, NULL},
    {"ctx", T_LONGLONG, offsetof(Frame, ctx), 0, NULL},
    {"flags", T_LONGLONG, offsetof(Frame, flags), 0, NULL},
    {"nparts", T_LONGLONG, offsetof(Frame, nparts), 0, NULL},
    {"seq", T_ULONGLONG, offsetof(Frame, seq), 0, NULL},
    {"stamp", T_ULONGLONG, offsetof(Frame, stamp), 0, NULL},
    {"length", T_ULONGLONG, offsetof(Frame, length), 0, NULL},
    {"kind", T_LONGLONG, offsetof(Frame, kind), 0, NULL},
    {"body", T_OBJECT, offsetof(Frame, body), 0, "the body (None once copied into a buffer)"},
    {"remote", T_OBJECT, offsetof(Frame, remote), 0, "(pid, pieces) of a rendezvous message"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject FrameType;

static void Frame_dealloc(Frame *self) {
    Py_XDECREF(self->body);
    Py_XDECREF(self->remote);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Frame_init(Frame *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"source", "tag", "ctx", "flags", "nparts", "seq", "stamp",
                               "length", "body", "kind", NULL};
    PyObject *body = Py_None;
    self->kind = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "LLLLLKKK|OL", keywords, &self->source,
                                     &self->tag, &self->ctx, &self->flags, &self->nparts,
                                     &self->seq, &self->stamp, &self->length, &body, &self->kind))
        return -1;
    Py_INCREF(body);
    Py_XSETREF(self->body, body);
    Py_INCREF(Py_None);
    Py_XSETREF(self->remote, Py_None);
    return 0;
}

static PyObject *Frame_repr(Frame *self) {
    return PyUnicode_FromFormat("Message(source=%lld, tag=%lld, ctx=%lld, length=%llu)",
                                self->source, self->tag, self->ctx, self->length);
}

static PyTypeObject FrameType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shoal.transport._shmcore.Frame",
    .tp_doc = "One received frame: header fields, source rank, body (see shoal.wire.frame).",
    .tp_basicsize = sizeof(Frame),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Frame_init,
    .tp_dealloc = (destructor)Frame_dealloc,
    .tp_members = Frame_members,
    .tp_repr = (reprfunc)Frame_repr,
};

static Frame *new_frame(int source, const header_t *h, PyObject *body /* stolen */) {
    Frame *f = PyObject_New(Frame, &FrameType);
    if (f == NULL) {
        Py_XDECREF(body);
        return NULL;
    }
    f->source = source;
    f->tag = h->tag;
    f->ctx = h->ctx;
    f->flags = h->flags;
    f->nparts = h->nparts;
    f->seq = h->seq;
    f->stamp = h->stamp;
    f->length = h->length;
    f->kind = h->kind;
    f->body = body;
    Py_INCREF(Py_None);
    f->remote = Py_None;
    return f;
}

/* -- construction ------------------------------------------------------------------ */

static void Rings_release(Rings *self) {
    Py_CLEAR(self->locked);
    Py_CLEAR(self->posted);
    Py_CLEAR(self->unexpected);
    Py_CLEAR(self->queues);
    Py_CLEAR(self->reading);
    if (self->has_view) {
        PyBuffer_Release(&self->view);
        self->has_view = 0;
    }
    PyMem_Free(self->out);
    PyMem_Free(self->in);
    PyMem_Free(self->doorbells);
    self->out = self->in = NULL;
    self->doorbells = NULL;
}

static void Rings_dealloc(Rings *self) {
    Rings_release(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Rings_init(Rings *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"segment", "rank", "size", "ring_bytes", "rings_off", "sleep_off",
                               "doorbell_read", "doorbells", NULL};
    PyObject *segment, *doorbells;
    int rank, size, doorbell_read;
    unsigned long long ring_bytes, rings_off, sleep_off;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OiiKKKiO", keywords, &segment, &rank, &size,
                                     &ring_bytes, &rings_off, &sleep_off, &doorbell_read,
                                     &doorbells))
        return -1;
    Rings_release(self);
    if (size < 1 || rank < 0 || rank >= size || ring_bytes < 64) {
        PyErr_SetString(PyExc_ValueError, "bad rank, size or ring size");
        return -1;
    }
    PyObject *fds = PySequence_Fast(doorbells, "doorbells must be a sequence of fds");
    if (fds == NULL) return -1;
    if (PySequence_Fast_GET_SIZE(fds) != size) {
        Py_DECREF(fds);
        PyErr_SetString(PyExc_ValueError, "one doorbell per rank is needed");
        return -1;
    }
    if (PyObject_GetBuffer(segment, &self->view, PyBUF_WRITABLE) < 0) {
        Py_DECREF(fds);
        return -1;
    }
    self->has_view = 1;
    self->fast_limit = FAST_SMALL;
    uint64_t total = rings_off + (uint64_t)size * (uint64_t)(size - 1) * (RING_CONTROL + ring_bytes);
    if ((uint64_t)self->view.len < total || (uint64_t)self->view.len < sleep_off + (uint64_t)size * 64) {
        Py_DECREF(fds);
        Rings_release(self);
        PyErr_SetString(PyExc_ValueError, "the segment is smaller than its layout says");
        return -1;
    }
    self->rank = rank;
    self->size = size;
    self->doorbell_read = doorbell_read;
    self->out = PyMem_Calloc(size, sizeof(ring_t));
    self->in = PyMem_Calloc(size, sizeof(ring_t));
    self->doorbells = PyMem_Calloc(size, sizeof(int));
    if (!self->out || !self->in || !self->doorbells) {
        Py_DECREF(fds);
        Rings_release(self);
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < size; i++) {
        long fd = PyLong_AsLong(PySequence_Fast_GET_ITEM(fds, i));
        if (fd == -1 && PyErr_Occurred()) {
            Py_DECREF(fds);
            Rings_release(self);
            return -1;
        }
        self->doorbells[i] = (int)fd;
    }
    Py_DECREF(fds);
    unsigned char *base = self->view.buf;
    self->sleep = (uint64_t *)(base + sleep_off);
    for (int peer = 0; peer < size; peer++) {
        if (peer == rank) continue;
        /* Same arithmetic as shm.Layout.ring_offset(src, dst). */
        uint64_t index_out = (uint64_t)rank * (size - 1) + (peer < rank ? peer : peer - 1);
        uint64_t index_in = (uint64_t)peer * (size - 1) + (rank < peer ? rank : rank - 1);
        unsigned char *o = base + rings_off + index_out * (RING_CONTROL + ring_bytes);
        unsigned char *n = base + rings_off + index_in * (RING_CONTROL + ring_bytes);
        self->out[peer] = (ring_t){(uint64_t *)o, (uint64_t *)(o + 64), o + RING_CONTROL,
                                   ring_bytes, 0};
        self->out[peer].pos = load_acquire(self->out[peer].tail);
        self->in[peer] = (ring_t){(uint64_t *)n, (uint64_t *)(n + 64), n + RING_CONTROL,
                                  ring_bytes, 0};
        self->in[peer].pos = load_acquire(self->in[peer].head);
    }
    return 0;
}

/* -- the byte streams (the Endpoint interface) ----------------------------------------- */

static PyObject *Rings_write(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    int dst;
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "write(dst, data)");
    if (check_open(self) < 0 || peer_index(self, args[0], &dst) < 0) return NULL;
    Py_buffer src;
    if (PyObject_GetBuffer(args[1], &src, PyBUF_SIMPLE) < 0) return NULL;
    ring_t *r = &self->out[dst];
    uint64_t tail = r->pos;
    uint64_t room = r->cap - (tail - load_acquire(r->head));
    uint64_t n = (uint64_t)src.len < room ? (uint64_t)src.len : room;
    if (n) {
        ring_put(r, tail, src.buf, n);
        publish_tail(self, dst, r, tail + n);
    }
    PyBuffer_Release(&src);
    return PyLong_FromUnsignedLongLong(n);
}

static PyObject *Rings_readable(Rings *self, PyObject *arg) {
    int src;
    if (check_open(self) < 0 || peer_index(self, arg, &src) < 0) return NULL;
    ring_t *r = &self->in[src];
    return PyLong_FromUnsignedLongLong(load_acquire(r->tail) - r->pos);
}

static PyObject *Rings_read_into(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    int src;
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "read_into(src, dest, n)");
    if (check_open(self) < 0 || peer_index(self, args[0], &src) < 0) return NULL;
    long long n = PyLong_AsLongLong(args[2]);
    if (n == -1 && PyErr_Occurred()) return NULL;
    Py_buffer dest;
    if (PyObject_GetBuffer(args[1], &dest, PyBUF_WRITABLE) < 0) return NULL;
    ring_t *r = &self->in[src];
    uint64_t head = r->pos;
    if (n < 0 || n > dest.len || (uint64_t)n > load_acquire(r->tail) - head) {
        PyBuffer_Release(&dest);
        return PyErr_Format(PyExc_ValueError, "cannot read %lld bytes here", n);
    }
    ring_get(r, head, dest.buf, (uint64_t)n);
    PyBuffer_Release(&dest);
    publish_head(self, src, r, head + (uint64_t)n);
    Py_RETURN_NONE;
}

static PyObject *Rings_read_bytes(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    int src;
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "read_bytes(src, n)");
    if (check_open(self) < 0 || peer_index(self, args[0], &src) < 0) return NULL;
    long long n = PyLong_AsLongLong(args[1]);
    if (n == -1 && PyErr_Occurred()) return NULL;
    ring_t *r = &self->in[src];
    uint64_t head = r->pos;
    if (n < 0 || (uint64_t)n > load_acquire(r->tail) - head)
        return PyErr_Format(PyExc_ValueError, "cannot read %lld bytes here", n);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (out == NULL) return NULL;
    ring_get(r, head, PyBytes_AS_STRING(out), (uint64_t)n);
    publish_head(self, src, r, head + (uint64_t)n);
    return out;
}

/* -- whole frames ---------------------------------------------------------------------- */

/* send_frame(dst, kind, flags, nparts, tag, ctx, seq, payload, limit) -> bool
 * Writes header + payload (any object exporting contiguous bytes) as one frame if the
 * payload is at most `limit` bytes and it all fits in the ring now; else writes nothing. */
static PyObject *Rings_send_frame(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    int dst;
    if (nargs != 9)
        return PyErr_Format(PyExc_TypeError,
                            "send_frame(dst, kind, flags, nparts, tag, ctx, seq, payload, limit)");
    if (check_open(self) < 0 || peer_index(self, args[0], &dst) < 0) return NULL;
    header_t h;
    long kind = PyLong_AsLong(args[1]);
    long flags = PyLong_AsLong(args[2]);
    long nparts = PyLong_AsLong(args[3]);
    long long tag = PyLong_AsLongLong(args[4]);
    long long ctx = PyLong_AsLongLong(args[5]);
    unsigned long long seq = PyLong_AsUnsignedLongLong(args[6]);
    long long limit = PyLong_AsLongLong(args[8]);
    if (PyErr_Occurred()) return NULL;
    Py_buffer payload;
    if (PyObject_GetBuffer(args[7], &payload, PyBUF_SIMPLE) < 0) return NULL;
    ring_t *r = &self->out[dst];
    uint64_t tail = r->pos;
    uint64_t total = HEADER_SIZE + (uint64_t)payload.len;
    if (payload.len > limit || r->cap - (tail - load_acquire(r->head)) < total) {
        PyBuffer_Release(&payload);
        Py_RETURN_FALSE;
    }
    h.kind = (uint8_t)kind;
    h.flags = (uint8_t)flags;
    h.nparts = (uint16_t)nparts;
    h.reserved = 0;
    h.tag = tag;
    h.ctx = ctx;
    h.seq = seq;
    h.stamp = now_ns();
    h.length = (uint64_t)payload.len;
    ring_put(r, tail, &h, HEADER_SIZE);
    if (payload.len) ring_put(r, tail + HEADER_SIZE, payload.buf, (uint64_t)payload.len);
    PyBuffer_Release(&payload);
    publish_tail(self, dst, r, tail + total);
    Py_RETURN_TRUE;
}

/* Parse the header at the ring's head into h; 0 if fewer than a header's bytes wait. */
static inline int peek_header(ring_t *r, uint64_t available, header_t *h) {
    if (available < HEADER_SIZE) return 0;
    ring_get(r, r->pos, h, HEADER_SIZE);
    return 1;
}

/* Take the whole frame with header h at the head of ring src: its body goes into `dest`
 * (a writable buffer) when one is given and large enough, else into new bytes.  The
 * general path calls this with the engine's lock held, so Python code that an
 * allocation may run (the collector) cannot take the frame meanwhile. */
static PyObject *take_whole(Rings *self, int src, const header_t *h, PyObject *dest) {
    ring_t *r = &self->in[src];
    PyObject *body = NULL;
    if (dest != Py_None) {
        Py_buffer view;
        if (PyObject_GetBuffer(dest, &view, PyBUF_WRITABLE) < 0) return NULL;
        if ((uint64_t)view.len >= h->length) {
            if (h->length) ring_get(r, r->pos + HEADER_SIZE, view.buf, h->length);
            Py_INCREF(Py_None);
            body = Py_None;
        }
        PyBuffer_Release(&view);
    }
    if (body == NULL) { /* no buffer, or one too small: the caller reports the truncation */
        body = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)h->length);
        if (body == NULL) return NULL;
        if (h->length) ring_get(r, r->pos + HEADER_SIZE, PyBytes_AS_STRING(body), h->length);
    }
    Frame *frame = new_frame(src, h, body);
    if (frame == NULL) return NULL;
    publish_head(self, src, r, r->pos + HEADER_SIZE + h->length);
    return (PyObject *)frame;
}

/* take_message(src, limit) -> Frame | None
 * Takes the next frame, whatever its kind, if it is whole and its body is at most
 * `limit` bytes. */
static PyObject *Rings_take_message(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    int src;
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "take_message(src, limit)");
    if (check_open(self) < 0 || peer_index(self, args[0], &src) < 0) return NULL;
    long long limit = PyLong_AsLongLong(args[1]);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    ring_t *r = &self->in[src];
    uint64_t available = load_acquire(r->tail) - r->pos;
    header_t h;
    if (!peek_header(r, available, &h)) Py_RETURN_NONE;
    if (h.length > (uint64_t)limit || HEADER_SIZE + h.length > available) Py_RETURN_NONE;
    return take_whole(self, src, &h, Py_None);
}

/* take_match(src, ctx, tag, limit, buffer) -> Frame | None
 * The fast path of a receive: takes the next frame only if it is a whole DATA frame on
 * context `ctx` with tag `tag` (-1: any), body at most `limit` bytes.  With a writable
 * `buffer` (anything exporting contiguous bytes) a body that fits is copied straight into
 * it and the frame's body is None; a longer one is returned as bytes (the caller reports
 * the truncation).  Anything else is left in place for the general path. */
static PyObject *Rings_take_match(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    int src;
    if (nargs != 5) return PyErr_Format(PyExc_TypeError, "take_match(src, ctx, tag, limit, buffer)");
    if (check_open(self) < 0 || peer_index(self, args[0], &src) < 0) return NULL;
    long long ctx = PyLong_AsLongLong(args[1]);
    long long tag = PyLong_AsLongLong(args[2]);
    long long limit = PyLong_AsLongLong(args[3]);
    if (PyErr_Occurred()) return NULL;
    ring_t *r = &self->in[src];
    uint64_t available = load_acquire(r->tail) - r->pos;
    header_t h;
    if (!peek_header(r, available, &h)) Py_RETURN_NONE;
    if (h.kind != 1 || h.ctx != ctx || (tag != -1 && h.tag != tag) ||
        h.length > (uint64_t)limit || HEADER_SIZE + h.length > available)
        Py_RETURN_NONE;
    return take_whole(self, src, &h, args[4]);
}

/* take_frame(src, header_size, length_offset, limit) -> bytes | None: the whole frame. */
static PyObject *Rings_take_frame(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    int src;
    if (nargs != 4)
        return PyErr_Format(PyExc_TypeError, "take_frame(src, header_size, length_offset, limit)");
    if (check_open(self) < 0 || peer_index(self, args[0], &src) < 0) return NULL;
    long long header_size = PyLong_AsLongLong(args[1]);
    long long length_offset = PyLong_AsLongLong(args[2]);
    long long limit = PyLong_AsLongLong(args[3]);
    if (PyErr_Occurred()) return NULL;
    if (header_size < 0 || length_offset < 0 || length_offset + 8 > header_size)
        return PyErr_Format(PyExc_ValueError, "bad header geometry");
    ring_t *r = &self->in[src];
    uint64_t available = load_acquire(r->tail) - r->pos;
    if (available < (uint64_t)header_size) Py_RETURN_NONE;
    uint64_t length;
    ring_get(r, r->pos + (uint64_t)length_offset, &length, 8);
    uint64_t total = (uint64_t)header_size + length;
    if (length > (uint64_t)limit || total > available) Py_RETURN_NONE;
    PyObject *frame = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (frame == NULL) return NULL;
    ring_get(r, r->pos, PyBytes_AS_STRING(frame), total);
    publish_head(self, src, r, r->pos + total);
    return frame;
}


/* -- the one-call fast paths (used when bound to an engine) -------------------------------
 *
 * A C function that holds the GIL and calls no Python code runs as one step for the
 * process's other threads.  The two functions below use that: each checks the engine's
 * state that matters (its lock free, nothing posted or waiting on the context, no queued
 * send or half-read body on the stream) and acts in the same step, so a rank's threads
 * need no lock for the common case.  Everything that may run Python code (taking the
 * caller's buffer, allocating) happens before the checks, which are then made again.  */

static int engine_bound(Rings *self) {
    return self->locked != NULL && self->posted != NULL && self->unexpected != NULL &&
           self->queues != NULL && self->reading != NULL;
}

/* 1 if the engine's lock is held (a thread is inside the engine's Python code), 0 if
 * free, -1 on error. */
static int engine_busy(Rings *self) {
    PyObject *held = PyObject_CallNoArgs(self->locked);
    if (held == NULL) return -1;
    int busy = PyObject_IsTrue(held);
    Py_DECREF(held);
    return busy;
}

static int list_nonempty(PyObject *dict, long long ctx) {
    PyObject *key = PyLong_FromLongLong(ctx);
    if (key == NULL) return -1;
    PyObject *items = PyDict_GetItemWithError(dict, key); /* borrowed */
    Py_DECREF(key);
    if (items == NULL) return PyErr_Occurred() ? -1 : 0;
    Py_ssize_t n = PyObject_Length(items);
    return n < 0 ? -1 : n > 0;
}

/* 1 if sends to `peer` are queued (engine._queues[peer], a deque, is not empty). */
static int queue_busy(Rings *self, int peer) {
    PyObject *queue = PyList_GetItem(self->queues, peer); /* borrowed */
    if (queue == NULL) return -1;
    Py_ssize_t n = PyObject_Length(queue);
    return n < 0 ? -1 : n > 0;
}

/* 1 if a body from `peer` is half read (engine._reading[peer] is not None). */
static int reading_busy(Rings *self, int peer) {
    PyObject *item = PyList_GetItem(self->reading, peer); /* borrowed */
    if (item == NULL) return -1;
    return item != Py_None;
}

/* send_fast(dst, ctx, tag, payload, flags) -> bool
 * A standard (not synchronous) send of one small payload as one DATA frame, if nothing is
 * queued towards dst and the frame fits now; else nothing happens and False is returned
 * (the engine's send does the rest).  A payload that is not contiguous bytes also gives
 * False: the general path says what is wrong with it. */
static PyObject *Rings_send_fast(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) return PyErr_Format(PyExc_TypeError, "send_fast(dst, ctx, tag, payload, flags)");
    if (!self->has_view || !engine_bound(self)) Py_RETURN_FALSE;
    long dst = PyLong_AsLong(args[0]);
    long long ctx = PyLong_AsLongLong(args[1]);
    long long tag = PyLong_AsLongLong(args[2]);
    long flags = PyLong_AsLong(args[4]);
    if (PyErr_Occurred()) return NULL;
    if (dst < 0 || dst >= self->size || dst == self->rank || (flags & 0x02 /* SYNC */))
        Py_RETURN_FALSE;
    Py_buffer payload;
    if (PyObject_GetBuffer(args[3], &payload, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    /* From here on no Python code runs until the frame is published. */
    int queued = queue_busy(self, (int)dst);
    ring_t *r = &self->out[dst];
    uint64_t tail = r->pos;
    uint64_t total = HEADER_SIZE + (uint64_t)payload.len;
    if (queued != 0 || (uint64_t)payload.len > self->fast_limit
            || r->cap - (tail - load_acquire(r->head)) < total) {
        PyBuffer_Release(&payload);
        if (queued < 0) return NULL;
        Py_RETURN_FALSE;
    }
    header_t h = {1 /* DATA */, (uint8_t)flags, 1, 0, tag, ctx, 0, now_ns(), (uint64_t)payload.len};
    ring_put(r, tail, &h, HEADER_SIZE);
    if (payload.len) ring_put(r, tail + HEADER_SIZE, payload.buf, (uint64_t)payload.len);
    publish_tail(self, (int)dst, r, tail + total);
    PyBuffer_Release(&payload);
    Py_RETURN_TRUE;
}

/* Whether the frame at the head of ring `src` is a whole DATA frame for (ctx, tag) that the
 * fast path may take: not synchronous, body at most `limit` (and, with a buffer, at most
 * its size).  Fills h. */
static int fast_candidate(ring_t *r, long long ctx, long long tag, Py_ssize_t room,
                          uint64_t limit, header_t *h) {
    uint64_t available = load_acquire(r->tail) - r->pos;
    if (!peek_header(r, available, h)) return 0;
    return h->kind == 1 && h->ctx == ctx && (tag == -1 || h->tag == tag) && !(h->flags & 0x02) &&
           h->length <= limit && HEADER_SIZE + h->length <= available &&
           (room < 0 || (uint64_t)room >= h->length);
}

/* Whether the engine lets the fast path take from `src` on `ctx` now: 1 yes, 0 no, -1 error. */
static int engine_allows(Rings *self, int src, long long ctx) {
    int busy = engine_busy(self);
    if (busy != 0) return busy < 0 ? -1 : 0;
    int posted = list_nonempty(self->posted, ctx);
    if (posted != 0) return posted < 0 ? -1 : 0;
    int waiting = list_nonempty(self->unexpected, ctx);
    if (waiting != 0) return waiting < 0 ? -1 : 0;
    int reading = reading_busy(self, src);
    if (reading != 0) return reading < 0 ? -1 : 0;
    return 1;
}

/* Spin (GIL released) up to spin_ns for a whole frame at the head of ring r, or for
 * anything that is not one (a body over `limit`: then the general path looks). */
static void spin_for_frame(Rings *self, ring_t *r, uint64_t limit, long long spin) {
    self->waiting++;
    Py_BEGIN_ALLOW_THREADS
    uint64_t deadline = now_ns() + (uint64_t)spin;
    for (unsigned long round = 1;; round++) {
        uint64_t available = load_acquire(r->tail) - load_relaxed(&r->pos);
        if (available >= HEADER_SIZE) {
            header_t peek;
            ring_get(r, load_relaxed(&r->pos), &peek, HEADER_SIZE);
            if (HEADER_SIZE + peek.length <= available || peek.length > limit) break;
        }
        CPU_RELAX();
        if ((round & 15) == 0 && now_ns() >= deadline) break;
    }
    Py_END_ALLOW_THREADS
    self->waiting--;
}

/* receive_fast(src, ctx, tag, buffer, spin_ns) -> Frame | None
 * The fast path of a blocking receive from one source: spin (GIL released) up to spin_ns
 * for a whole frame from src, then take it if it is the answer: a DATA frame on ctx with
 * tag (-1: any), not synchronous, its body within bind_engine's limit, and nothing else
 * posted or waiting on ctx (MPI's order).  With a buffer (writable contiguous bytes) the
 * body is copied into it (the frame's body is then None) and must fit.  None: the
 * engine's receive does the rest. */
static PyObject *Rings_receive_fast(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) return PyErr_Format(PyExc_TypeError, "receive_fast(src, ctx, tag, buffer, spin_ns)");
    if (!self->has_view || !engine_bound(self)) Py_RETURN_NONE;
    long src = PyLong_AsLong(args[0]);
    long long ctx = PyLong_AsLongLong(args[1]);
    long long tag = PyLong_AsLongLong(args[2]);
    long long spin = PyLong_AsLongLong(args[4]);
    if (PyErr_Occurred()) return NULL;
    if (src < 0 || src >= self->size || src == self->rank) Py_RETURN_NONE;
    ring_t *r = &self->in[src];
    Py_buffer dest;
    int has_dest = 0;
    if (args[3] != Py_None) {
        if (PyObject_GetBuffer(args[3], &dest, PyBUF_WRITABLE) < 0) {
            PyErr_Clear();
            Py_RETURN_NONE; /* the general path says what is wrong with the buffer */
        }
        has_dest = 1;
    }
    Py_ssize_t room = has_dest ? dest.len : -1;
    uint64_t limit = self->fast_limit;
    header_t h;
    PyObject *result = NULL;
    /* What the engine holds goes first (a message it already took out of the ring waits
     * in `unexpected`): then spinning on the ring would only delay the general path. */
    int allowed_now = engine_allows(self, (int)src, ctx);
    if (allowed_now < 0) goto done;
    if (!allowed_now) goto none;
    if (!fast_candidate(r, ctx, tag, room, limit, &h) && spin > 0)
        spin_for_frame(self, r, limit, spin);
    if (!fast_candidate(r, ctx, tag, room, limit, &h)) goto none;
    /* Allocate first (that may run Python code: the collector), then check again. */
    uint64_t pos = r->pos;
    PyObject *body = Py_None;
    if (has_dest) {
        Py_INCREF(body);
    } else {
        body = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)h.length);
        if (body == NULL) goto done;
    }
    Frame *frame = new_frame((int)src, &h, body);
    if (frame == NULL) goto done;
    header_t again;
    int allowed = engine_allows(self, (int)src, ctx);
    if (allowed < 0) {
        Py_DECREF(frame);
        goto done;
    }
    if (!allowed || r->pos != pos || !fast_candidate(r, ctx, tag, room, limit, &again) ||
        again.seq != h.seq || again.stamp != h.stamp || again.length != h.length) {
        Py_DECREF(frame);
        goto none;
    }
    /* No Python code runs from here until the frame is consumed. */
    void *target = has_dest ? dest.buf : (void *)PyBytes_AS_STRING(frame->body);
    if (h.length) ring_get(r, pos + HEADER_SIZE, target, h.length);
    publish_head(self, (int)src, r, pos + HEADER_SIZE + h.length);
    result = (PyObject *)frame;
    goto done;
none:
    Py_INCREF(Py_None);
    result = Py_None;
done:
    if (has_dest) PyBuffer_Release(&dest);
    return result;
}

/* bind_engine(locked, posted, unexpected, queues, reading, limit): what the fast paths check,
 * and the largest body they take (the engine decides: its eager messages, up to a MiB). */
static PyObject *Rings_bind_engine(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6)
        return PyErr_Format(PyExc_TypeError,
                            "bind_engine(locked, posted, unexpected, queues, reading, limit)");
    long long limit = PyLong_AsLongLong(args[5]);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    if (limit < 0) return PyErr_Format(PyExc_ValueError, "bind_engine: a limit >= 0");
    if (!PyCallable_Check(args[0]) || !PyDict_Check(args[1]) || !PyDict_Check(args[2]) ||
        !PyList_Check(args[3]) || !PyList_Check(args[4]) ||
        PyList_GET_SIZE(args[3]) != self->size || PyList_GET_SIZE(args[4]) != self->size)
        return PyErr_Format(PyExc_TypeError, "bind_engine: a callable, two dicts and two lists "
                                             "of one entry per rank");
    Py_INCREF(args[0]);
    Py_XSETREF(self->locked, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(self->posted, args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(self->unexpected, args[2]);
    Py_INCREF(args[3]);
    Py_XSETREF(self->queues, args[3]);
    Py_INCREF(args[4]);
    Py_XSETREF(self->reading, args[4]);
    self->fast_limit = (uint64_t)limit;
    Py_RETURN_NONE;
}

/* -- a short Allreduce in one call ----------------------------------------------------------
 *
 * Recursive doubling on a small contiguous buffer of C numbers with a predefined op: each
 * step is send_fast's frame to the partner, receive_fast's take of the partner's frame and
 * the reduction, all here.  Which (element type, op) pairs are taken is Python's choice,
 * handed over once by set_reductions (shoal.spmd.bufcoll: the pairs its short path reduces
 * exactly as the general path does); the frames, tags and tree are the short path's, so
 * a partner on any path meets them. */

#define REDUCE_MOST 4096 /* the largest buffer taken (the short path's, bufcoll._SHORT_BYTES) */

enum { R_SUM = 1, R_PROD, R_MAX, R_MIN, R_LAND, R_LOR, R_LXOR, R_BAND, R_BOR, R_BXOR, R_OPS };

/* set_reductions({format: (op code, ...)}): the (element type, op) pairs allreduce_fast takes. */
static PyObject *Rings_set_reductions(Rings *self, PyObject *table) {
    if (!PyDict_Check(table)) return PyErr_Format(PyExc_TypeError, "set_reductions(dict)");
    uint32_t fresh[128] = {0};
    PyObject *key, *codes;
    Py_ssize_t pos = 0;
    while (PyDict_Next(table, &pos, &key, &codes)) {
        const char *fmt = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        if (fmt == NULL || strlen(fmt) != 1 || strchr("bBhHiIlLqQfd", fmt[0]) == NULL) {
            PyErr_Clear();
            return PyErr_Format(PyExc_ValueError, "set_reductions: %R is not one of the formats "
                                "bBhHiIlLqQfd", key);
        }
        PyObject *seq = PySequence_Fast(codes, "set_reductions: a sequence of op codes");
        if (seq == NULL) return NULL;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
            long code = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
            if (code < R_SUM || code >= R_OPS) {
                Py_DECREF(seq);
                if (!PyErr_Occurred())
                    PyErr_Format(PyExc_ValueError, "set_reductions: op code %ld", code);
                return NULL;
            }
            if ((fmt[0] == 'f' || fmt[0] == 'd') && code != R_SUM && code != R_PROD) {
                Py_DECREF(seq);
                return PyErr_Format(PyExc_ValueError, "set_reductions: floats take SUM and "
                                    "PROD only (NaN and signed zeros)");
            }
            fresh[(unsigned char)fmt[0]] |= 1u << code;
        }
        Py_DECREF(seq);
    }
    memcpy(self->reductions, fresh, sizeof fresh);
    Py_RETURN_NONE;
}

/* Integers: arithmetic in unsigned 64 bits, cut to the type (it wraps as C's does). */
#define REDUCE_INT(T, U)                                                                     \
    do {                                                                                     \
        T *o = (T *)out;                                                                     \
        const T *in = (const T *)theirs;                                                     \
        for (Py_ssize_t k = 0; k < count; k++) {                                             \
            T a = in[k], b = o[k];                                                           \
            uint64_t x = (uint64_t)(U)a, y = (uint64_t)(U)b;                                 \
            switch (op) {                                                                    \
            case R_SUM: o[k] = (T)(U)(x + y); break;                                         \
            case R_PROD: o[k] = (T)(U)(x * y); break;                                        \
            case R_MAX: o[k] = a > b ? a : b; break;                                         \
            case R_MIN: o[k] = a < b ? a : b; break;                                         \
            case R_LAND: o[k] = (T)((a != 0) & (b != 0)); break;                             \
            case R_LOR: o[k] = (T)((a != 0) | (b != 0)); break;                              \
            case R_LXOR: o[k] = (T)((a != 0) ^ (b != 0)); break;                             \
            case R_BAND: o[k] = (T)(U)(x & y); break;                                        \
            case R_BOR: o[k] = (T)(U)(x | y); break;                                         \
            case R_BXOR: o[k] = (T)(U)(x ^ y); break;                                        \
            }                                                                                \
        }                                                                                    \
    } while (0)

#define REDUCE_FLOAT(T)                                                                      \
    do {                                                                                     \
        T *o = (T *)out;                                                                     \
        const T *in = (const T *)theirs;                                                     \
        if (op == R_SUM)                                                                     \
            for (Py_ssize_t k = 0; k < count; k++) o[k] = in[k] + o[k];                      \
        else                                                                                 \
            for (Py_ssize_t k = 0; k < count; k++) o[k] = in[k] * o[k];                      \
    } while (0)

/* out = theirs op out, element by element. */
static void reduce_into(char type, int op, void *out, const void *theirs, Py_ssize_t count) {
    switch (type) {
    case 'b': REDUCE_INT(signed char, unsigned char); break;
    case 'B': REDUCE_INT(unsigned char, unsigned char); break;
    case 'h': REDUCE_INT(short, unsigned short); break;
    case 'H': REDUCE_INT(unsigned short, unsigned short); break;
    case 'i': REDUCE_INT(int, unsigned int); break;
    case 'I': REDUCE_INT(unsigned int, unsigned int); break;
    case 'l': REDUCE_INT(long, unsigned long); break;
    case 'L': REDUCE_INT(unsigned long, unsigned long); break;
    case 'q': REDUCE_INT(long long, unsigned long long); break;
    case 'Q': REDUCE_INT(unsigned long long, unsigned long long); break;
    case 'f': REDUCE_FLOAT(float); break;
    case 'd': REDUCE_FLOAT(double); break;
    }
}

static Py_ssize_t c_itemsize(char type) {
    switch (type) {
    case 'b': case 'B': return 1;
    case 'h': case 'H': return (Py_ssize_t)sizeof(short);
    case 'i': case 'I': return (Py_ssize_t)sizeof(int);
    case 'l': case 'L': return (Py_ssize_t)sizeof(long);
    case 'q': case 'Q': return (Py_ssize_t)sizeof(long long);
    case 'f': return (Py_ssize_t)sizeof(float);
    case 'd': return (Py_ssize_t)sizeof(double);
    }
    return 0;
}

/* The element type of a buffer allreduce_fast takes (a single format character it was
 * given a reduction for, native size), or 0. */
static char reduce_type(Rings *self, const Py_buffer *b, int op) {
    const char *fmt = b->format != NULL ? b->format : "B";
    char type = fmt[0];
    if (type == '\0' || fmt[1] != '\0' || (unsigned char)type >= 128) return 0;
    if (!(self->reductions[(unsigned char)type] & (1u << op))) return 0;
    return b->itemsize == c_itemsize(type) ? type : 0;
}

/* One step's send: send_fast's frame of `data` to `dst`, if nothing is queued before it
 * and it fits now.  1 sent, 0 not, -1 error. */
static int step_send(Rings *self, int dst, long long ctx, long long tag, const void *data,
                     Py_ssize_t n) {
    int queued = queue_busy(self, dst);
    if (queued != 0) return queued < 0 ? -1 : 0;
    ring_t *r = &self->out[dst];
    uint64_t tail = r->pos;
    uint64_t total = HEADER_SIZE + (uint64_t)n;
    if ((uint64_t)n > self->fast_limit || r->cap - (tail - load_acquire(r->head)) < total) return 0;
    header_t h = {1 /* DATA */, 0, 1, 0, tag, ctx, 0, now_ns(), (uint64_t)n};
    ring_put(r, tail, &h, HEADER_SIZE);
    if (n) ring_put(r, tail + HEADER_SIZE, data, (uint64_t)n);
    publish_tail(self, dst, r, tail + total);
    return 1;
}

/* One step's receive: receive_fast's take of src's frame (DATA on ctx with tag, exactly n
 * bytes) into `into`, spinning up to spin_ns (GIL released) for it.  1 taken, 0 not (the
 * caller's general receive takes it), -1 error. */
static int step_receive(Rings *self, int src, long long ctx, long long tag, void *into,
                        Py_ssize_t n, long long spin) {
    ring_t *r = &self->in[src];
    uint64_t limit = self->fast_limit;
    header_t h;
    int allowed = engine_allows(self, src, ctx);
    if (allowed <= 0) return allowed;
    if (!fast_candidate(r, ctx, tag, n, limit, &h) && spin > 0) {
        spin_for_frame(self, r, limit, spin);
        /* Another thread may have used the engine meanwhile: ask again. */
        allowed = engine_allows(self, src, ctx);
        if (allowed <= 0) return allowed;
    }
    if (!fast_candidate(r, ctx, tag, n, limit, &h) || h.length != (uint64_t)n) return 0;
    /* No Python code runs from here until the frame is consumed. */
    uint64_t pos = r->pos;
    if (n) ring_get(r, pos + HEADER_SIZE, into, (uint64_t)n);
    publish_head(self, src, r, pos + HEADER_SIZE + (uint64_t)n);
    return 1;
}

/* allreduce_fast(partners, ctx, tag, sendbuf, recvbuf, op, spin_ns) -> int
 * A recursive-doubling Allreduce of recvbuf (sendbuf None: in place; else sendbuf is
 * copied into it first) with the op of code `op`, partners[k] being step k's partner (a
 * rank of this segment).  -1: not taken (a buffer or op it does not take, or not bound
 * to an engine): nothing was done, another path does it all.  Else 2 * the steps done,
 * plus 1 if the next step's send went: 2 * len(partners) is the whole Allreduce;
 * anything less, the caller goes on from that step on recvbuf (in place). */
static PyObject *Rings_allreduce_fast(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7)
        return PyErr_Format(PyExc_TypeError,
                            "allreduce_fast(partners, ctx, tag, sendbuf, recvbuf, op, spin_ns)");
    if (!PyTuple_Check(args[0]))
        return PyErr_Format(PyExc_TypeError, "allreduce_fast: partners is a tuple of ranks");
    long long ctx = PyLong_AsLongLong(args[1]);
    long long tag = PyLong_AsLongLong(args[2]);
    long op = PyLong_AsLong(args[5]);
    long long spin = PyLong_AsLongLong(args[6]);
    if (PyErr_Occurred()) return NULL;
    if (!self->has_view || !engine_bound(self) || op < R_SUM || op >= R_OPS)
        return PyLong_FromLong(-1);
    Py_ssize_t steps = PyTuple_GET_SIZE(args[0]);
    Py_buffer out, in;
    if (PyObject_GetBuffer(args[4], &out, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        return PyLong_FromLong(-1); /* the other paths say what is wrong with it */
    }
    long result = -1;
    int has_in = 0;
    char type = reduce_type(self, &out, (int)op);
    if (type == 0 || out.len > REDUCE_MOST) goto done;
    if (args[3] != Py_None) {
        if (PyObject_GetBuffer(args[3], &in, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
            PyErr_Clear();
            goto done;
        }
        has_in = 1;
        if (reduce_type(self, &in, (int)op) != type || in.len != out.len) goto done;
    }
    int partners[64];
    if (steps > 64) goto done;
    for (Py_ssize_t k = 0; k < steps; k++) {
        long p = PyLong_AsLong(PyTuple_GET_ITEM(args[0], k));
        if (p < 0 || p >= self->size || p == self->rank) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "allreduce_fast: rank %ld is no partner", p);
            result = -2;
            goto done;
        }
        partners[k] = (int)p;
    }
    if (has_in && in.buf != out.buf) memmove(out.buf, in.buf, (size_t)out.len);
    Py_ssize_t count = out.len / out.itemsize;
    unsigned char theirs[REDUCE_MOST];
    result = 0;
    for (Py_ssize_t k = 0; k < steps; k++) {
        int sent = step_send(self, partners[k], ctx, tag, out.buf, out.len);
        if (sent <= 0) {
            result = sent < 0 ? -2 : 2 * (long)k;
            goto done;
        }
        int got = step_receive(self, partners[k], ctx, tag, theirs, out.len, spin);
        if (got <= 0) {
            result = got < 0 ? -2 : 2 * (long)k + 1;
            goto done;
        }
        reduce_into(type, (int)op, out.buf, theirs, count);
        result = 2 * (long)(k + 1);
    }
done:
    if (has_in) PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    if (result == -2) return NULL;
    return PyLong_FromLong(result);
}

/* -- waiting ----------------------------------------------------------------------------- */

typedef struct {
    int src;              /* the ring to watch, or -1 for every incoming ring */
    int nbusy;
    int busy[64];         /* outgoing rings whose space we wait for */
    uint64_t heads[64];   /* ... and their heads when we started */
} watch_t;

static int parse_watch(Rings *self, PyObject *src_obj, PyObject *busy_obj, watch_t *w) {
    long src = PyLong_AsLong(src_obj);
    if (src == -1 && PyErr_Occurred()) return -1;
    if (src >= self->size || src < -1 || src == self->rank) {
        PyErr_Format(PyExc_IndexError, "cannot watch rank %ld", src);
        return -1;
    }
    w->src = (int)src;
    w->nbusy = 0;
    if (busy_obj == Py_None) return 0;
    PyObject *it = PyObject_GetIter(busy_obj);
    if (it == NULL) return -1;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        long dst = PyLong_AsLong(item);
        Py_DECREF(item);
        if (dst == -1 && PyErr_Occurred()) break;
        if (dst < 0 || dst >= self->size || dst == self->rank || w->nbusy >= 64) continue;
        w->busy[w->nbusy] = (int)dst;
        w->heads[w->nbusy] = load_acquire(self->out[dst].head);
        w->nbusy++;
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* Whether anything we watch has moved.  Runs without the GIL: it only loads shared counts
 * and this side's positions, which are written under the GIL by the thread that owns the
 * ring operation (atomic 64-bit loads). */
static int watched_moved(Rings *self, watch_t *w) {
    if (w->src >= 0) {
        ring_t *r = &self->in[w->src];
        if (load_acquire(r->tail) != load_relaxed(&r->pos)) return 1;
    } else {
        for (int peer = 0; peer < self->size; peer++) {
            if (peer == self->rank) continue;
            ring_t *r = &self->in[peer];
            if (load_acquire(r->tail) != load_relaxed(&r->pos)) return 1;
        }
    }
    for (int i = 0; i < w->nbusy; i++)
        if (load_acquire(self->out[w->busy[i]].head) != w->heads[i]) return 1;
    return 0;
}

/* wait(src, busy, timeout_ns, yield_every) -> bool
 * Spin with the GIL released until data waits in ring `src` (any ring with -1), or a ring
 * in `busy` gained space, or `timeout_ns` passed.  yield_every: sched_yield every that
 * many rounds (1: every round, for jobs with more ranks than cores; 0: never). */
static PyObject *Rings_wait(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) return PyErr_Format(PyExc_TypeError, "wait(src, busy, timeout_ns, yield_every)");
    if (check_open(self) < 0) return NULL;
    watch_t w;
    if (parse_watch(self, args[0], args[1], &w) < 0) return NULL;
    long long timeout = PyLong_AsLongLong(args[2]);
    long yield_every = PyLong_AsLong(args[3]);
    if (PyErr_Occurred()) return NULL;
    if (watched_moved(self, &w)) Py_RETURN_TRUE;
    if (timeout <= 0) Py_RETURN_FALSE;
    int moved = 0;
    self->waiting++;
    Py_BEGIN_ALLOW_THREADS
    uint64_t deadline = now_ns() + (uint64_t)timeout;
    for (unsigned long round = 1;; round++) {
        if (watched_moved(self, &w)) { moved = 1; break; }
        if (yield_every > 0 && round % (unsigned long)yield_every == 0) sched_yield();
        else CPU_RELAX();
        if ((round & 15) == 0 && now_ns() >= deadline) break;
    }
    Py_END_ALLOW_THREADS
    self->waiting--;
    return PyBool_FromLong(moved);
}

/* sleep(src, busy, timeout_ms) -> bool
 * Announce that this rank sleeps, look once more, then block in poll(2) on the doorbell
 * until a peer rings it or the timeout passes (GIL released).  True if woken or if what
 * is watched moved before sleeping. */
static PyObject *Rings_sleep(Rings *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "sleep(src, busy, timeout_ms)");
    if (check_open(self) < 0) return NULL;
    watch_t w;
    if (parse_watch(self, args[0], args[1], &w) < 0) return NULL;
    long timeout = PyLong_AsLong(args[2]);
    if (timeout == -1 && PyErr_Occurred()) return NULL;
    uint64_t *flag = &self->sleep[self->rank * SLEEP_STRIDE];
    __atomic_store_n(flag, 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    int woken = watched_moved(self, &w);
    int interrupted = 0;
    if (!woken) {
        self->waiting++;
        Py_BEGIN_ALLOW_THREADS
        struct pollfd p = {self->doorbell_read, POLLIN, 0};
        int rc = poll(&p, 1, (int)timeout);
        if (rc > 0) {
            char drain[256];
            while (read(self->doorbell_read, drain, sizeof drain) > 0) {
            }
            woken = 1;
        } else if (rc < 0 && errno == EINTR) {
            interrupted = 1;
        }
        Py_END_ALLOW_THREADS
        self->waiting--;
    }
    __atomic_store_n(flag, 0, __ATOMIC_RELAXED);
    /* A signal (Ctrl-C, a test's timer): let Python's handler run now, as time.sleep does. */
    if (interrupted && PyErr_CheckSignals() < 0) return NULL;
    return PyBool_FromLong(woken);
}

static PyObject *Rings_ring_doorbell(Rings *self, PyObject *arg) {
    long peer = PyLong_AsLong(arg);
    if (peer == -1 && PyErr_Occurred()) return NULL;
    if (check_open(self) < 0) return NULL;
    if (peer < 0 || peer >= self->size) return PyErr_Format(PyExc_IndexError, "no rank %ld", peer);
    ring_doorbell(self, (int)peer);
    Py_RETURN_NONE;
}

static PyObject *Rings_set_sleeping(Rings *self, PyObject *arg) {
    int flag = PyObject_IsTrue(arg);
    if (flag < 0 || check_open(self) < 0) return NULL;
    __atomic_store_n(&self->sleep[self->rank * SLEEP_STRIDE], (uint64_t)flag, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    Py_RETURN_NONE;
}

static PyObject *Rings_close(Rings *self, PyObject *Py_UNUSED(ignored)) {
    if (self->waiting) {
        PyErr_SetString(PyExc_RuntimeError, "the rings are closed while a thread waits on them");
        return NULL;
    }
    Rings_release(self);
    Py_RETURN_NONE;
}

static PyMethodDef Rings_methods[] = {
    {"write", (PyCFunction)(void (*)(void))Rings_write, METH_FASTCALL,
     "write(dst, data) -> int: copy as much of data as fits into the ring to dst."},
    {"readable", (PyCFunction)Rings_readable, METH_O, "readable(src) -> int: bytes waiting."},
    {"read_into", (PyCFunction)(void (*)(void))Rings_read_into, METH_FASTCALL,
     "read_into(src, dest, n): move exactly n waiting bytes into dest."},
    {"read_bytes", (PyCFunction)(void (*)(void))Rings_read_bytes, METH_FASTCALL,
     "read_bytes(src, n) -> bytes: take exactly n waiting bytes."},
    {"send_frame", (PyCFunction)(void (*)(void))Rings_send_frame, METH_FASTCALL,
     "send_frame(dst, kind, flags, nparts, tag, ctx, seq, payload, limit) -> bool: a whole "
     "frame (header stamped with CLOCK_MONOTONIC), or nothing when the payload is over "
     "limit bytes or the frame does not fit now."},
    {"take_message", (PyCFunction)(void (*)(void))Rings_take_message, METH_FASTCALL,
     "take_message(src, limit) -> Frame or None: the next frame, if whole and its body at "
     "most limit bytes."},
    {"take_match", (PyCFunction)(void (*)(void))Rings_take_match, METH_FASTCALL,
     "take_match(src, ctx, tag, limit, buffer) -> Frame or None: the next frame if it is a "
     "whole DATA frame matching ctx and tag (-1: any), its body copied into buffer if one "
     "is given and it fits."},
    {"take_frame", (PyCFunction)(void (*)(void))Rings_take_frame, METH_FASTCALL,
     "take_frame(src, header_size, length_offset, limit) -> bytes or None."},
    {"send_fast", (PyCFunction)(void (*)(void))Rings_send_fast, METH_FASTCALL,
     "send_fast(dst, ctx, tag, payload, flags) -> bool: a standard send of one small "
     "payload in one step, if the engine has nothing queued towards dst and it fits."},
    {"receive_fast", (PyCFunction)(void (*)(void))Rings_receive_fast, METH_FASTCALL,
     "receive_fast(src, ctx, tag, buffer, spin_ns) -> Frame or None: spin for and take the "
     "next message from src if it is the receive's answer and the engine allows."},
    {"allreduce_fast", (PyCFunction)(void (*)(void))Rings_allreduce_fast, METH_FASTCALL,
     "allreduce_fast(partners, ctx, tag, sendbuf, recvbuf, op, spin_ns) -> int: a short "
     "Allreduce by recursive doubling, -1 if not taken, else 2 * steps done + next sent"},
    {"set_reductions", (PyCFunction)Rings_set_reductions, METH_O,
     "set_reductions({format: (op code, ...)}): the pairs allreduce_fast takes"},
    {"bind_engine", (PyCFunction)(void (*)(void))Rings_bind_engine, METH_FASTCALL,
     "bind_engine(locked, posted, unexpected, queues, reading, limit): the engine state that the "
     "fast paths respect, and the largest body they take."},
    {"wait", (PyCFunction)(void (*)(void))Rings_wait, METH_FASTCALL,
     "wait(src, busy, timeout_ns, yield_every) -> bool: spin (GIL released) until data "
     "from src (-1: any), space towards a busy rank, or the timeout."},
    {"sleep", (PyCFunction)(void (*)(void))Rings_sleep, METH_FASTCALL,
     "sleep(src, busy, timeout_ms) -> bool: flag this rank asleep and poll the doorbell."},
    {"ring_doorbell", (PyCFunction)Rings_ring_doorbell, METH_O, "ring_doorbell(rank)"},
    {"set_sleeping", (PyCFunction)Rings_set_sleeping, METH_O, "set_sleeping(flag)"},
    {"close", (PyCFunction)Rings_close, METH_NOARGS, "Release the segment."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RingsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shoal.transport._shmcore.Rings",
    .tp_doc = "One rank's rings in a job's shared-memory segment (compiled).",
    .tp_basicsize = sizeof(Rings),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Rings_init,
    .tp_dealloc = (destructor)Rings_dealloc,
    .tp_methods = Rings_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "shoal.transport._shmcore",
    .m_doc = "The shared-memory rings' data plane, compiled (see shoal.transport.shm).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__shmcore(void) {
    if (PyType_Ready(&RingsType) < 0 || PyType_Ready(&FrameType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&RingsType);
    if (PyModule_AddObject(m, "Rings", (PyObject *)&RingsType) < 0) {
        Py_DECREF(&RingsType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&FrameType);
    if (PyModule_AddObject(m, "Frame", (PyObject *)&FrameType) < 0) {
        Py_DECREF(&FrameType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "HEADER_SIZE", HEADER_SIZE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
