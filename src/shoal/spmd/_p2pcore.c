/*
 * shoal.spmd._p2pcore: a communicator's object send and receive of a plain value, compiled.
 *
 * One type, ObjectPath (see shoal/spmd/objpath.py for what it does and why).  A
 * communicator holds one; comm.send and comm.recv ask it first, and do the general work in
 * Python when it answers False / NOT_TAKEN (where it is not built, their own first steps
 * in Python do what it does).  It adds no semantics of its own: the value is pickled with
 * the standard pickle as PICKLE says, and goes through the engine's own one-step paths
 * (send_fast, receive_fast), found through the world module on each call, so a finalized
 * or replaced engine is never used.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#define PICKLED 1
#define ANY_TAG (-1)

static PyObject *s_engine, *s_send_fast, *s_receive_fast, *s_fast_spin_ns, *s_oob,
    *s_protocol, *s_length, *s_nparts, *s_body;
static PyObject *pickle_dumps, *pickle_loads; /* the standard pickle's (_pickle) */
static PyObject *not_taken;                   /* NOT_TAKEN */
static PyObject *pickled_flag;                /* the int PICKLED */

/* -- Taken: a message taken that Python decodes (it would not unpickle here) --------- */

typedef struct {
    PyObject_HEAD
    PyObject *message;
} Taken;

static PyTypeObject TakenType;

static void Taken_dealloc(Taken *self) {
    Py_XDECREF(self->message);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef Taken_members[] = {
    {"message", T_OBJECT, offsetof(Taken, message), READONLY, "the message, as received"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject TakenType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shoal.spmd._p2pcore.Taken",
    .tp_basicsize = sizeof(Taken),
    .tp_dealloc = (destructor)Taken_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A message ObjectPath.recv took and left to Python to decode.",
    .tp_members = Taken_members,
};

static PyObject *taken(PyObject *message /* borrowed */) {
    Taken *t = PyObject_New(Taken, &TakenType);
    if (t == NULL) return NULL;
    Py_INCREF(message);
    t->message = message;
    return (PyObject *)t;
}

/* -- ObjectPath ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *ranks;        /* tuple: the world rank of each rank of the communicator */
    PyObject *ctx;          /* int: its point-to-point context */
    long long tag_bound;
    PyObject *world;        /* the world module's dict: _engine */
    PyObject *codec;        /* PICKLE: _oob, _protocol */
    PyObject *engine;       /* the engine last seen, and its paths */
    PyObject *send_fast, *receive_fast;
} ObjectPath;

static int ObjectPath_traverse(ObjectPath *self, visitproc visit, void *arg) {
    Py_VISIT(self->ranks);
    Py_VISIT(self->ctx);
    Py_VISIT(self->world);
    Py_VISIT(self->codec);
    Py_VISIT(self->engine);
    Py_VISIT(self->send_fast);
    Py_VISIT(self->receive_fast);
    return 0;
}

static int ObjectPath_clear(ObjectPath *self) {
    Py_CLEAR(self->ranks);
    Py_CLEAR(self->ctx);
    Py_CLEAR(self->world);
    Py_CLEAR(self->codec);
    Py_CLEAR(self->engine);
    Py_CLEAR(self->send_fast);
    Py_CLEAR(self->receive_fast);
    return 0;
}

static void ObjectPath_dealloc(ObjectPath *self) {
    PyObject_GC_UnTrack(self);
    ObjectPath_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ObjectPath_init(ObjectPath *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"ranks", "ctx", "tag_bound", "world", "codec", NULL};
    PyObject *ranks, *ctx, *world, *codec;
    long long tag_bound;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!LOO", keywords, &PyTuple_Type, &ranks,
                                     &PyLong_Type, &ctx, &tag_bound, &world, &codec))
        return -1;
    PyObject *dict = PyModule_Check(world) ? PyModule_GetDict(world) : NULL;
    if (dict == NULL) {
        PyErr_SetString(PyExc_TypeError, "world must be the module that holds _engine");
        return -1;
    }
    ObjectPath_clear(self);
    Py_INCREF(ranks);
    self->ranks = ranks;
    Py_INCREF(ctx);
    self->ctx = ctx;
    self->tag_bound = tag_bound;
    Py_INCREF(dict);
    self->world = dict;
    Py_INCREF(codec);
    self->codec = codec;
    return 0;
}

/* The engine now (borrowed), its paths bound in self; NULL with no error when there is
 * none yet (or no more), NULL with an error on failure. */
static PyObject *current_engine(ObjectPath *self) {
    PyObject *engine = PyDict_GetItemWithError(self->world, s_engine); /* borrowed */
    if (engine == NULL || engine == Py_None) return NULL;
    if (engine != self->engine) {
        PyObject *send = PyObject_GetAttr(engine, s_send_fast);
        if (send == NULL) return NULL;
        PyObject *receive = PyObject_GetAttr(engine, s_receive_fast);
        if (receive == NULL) {
            Py_DECREF(send);
            return NULL;
        }
        Py_INCREF(engine);
        Py_XSETREF(self->engine, engine);
        Py_XSETREF(self->send_fast, send);
        Py_XSETREF(self->receive_fast, receive);
    }
    return engine;
}

/* 1 if the codec is the standard pickle with its buffers out of band (PICKLE._oob). */
static int codec_standard(ObjectPath *self) {
    PyObject *oob = PyObject_GetAttr(self->codec, s_oob);
    if (oob == NULL) return -1;
    int yes = PyObject_IsTrue(oob);
    Py_DECREF(oob);
    return yes;
}

/* rank as a C index into ranks: -1 when it is not a plain int in range (no error). */
static Py_ssize_t rank_index(ObjectPath *self, PyObject *rank) {
    if (!PyLong_CheckExact(rank)) return -1;
    int overflow;
    long long r = PyLong_AsLongLongAndOverflow(rank, &overflow);
    if (overflow || r < 0 || r >= PyTuple_GET_SIZE(self->ranks)) return -1;
    return (Py_ssize_t)r;
}

/* 1 if tag is a plain int from 0 (from ANY_TAG with any) to the bound. */
static int tag_ok(ObjectPath *self, PyObject *tag, int any) {
    if (!PyLong_CheckExact(tag)) return 0;
    int overflow;
    long long t = PyLong_AsLongLongAndOverflow(tag, &overflow);
    return !overflow && ((t >= 0 && t <= self->tag_bound) || (any && t == ANY_TAG));
}

/* A plain value this path takes: nothing in it can go out of band, and a bytes or str is
 * at most PLAIN_MOST long (a longer one is likely too large for the engine's one-step
 * send, and comm.send would pickle it a second time). */
#define PLAIN_MOST (64 * 1024)
static int plain(PyObject *obj) {
    if (PyBytes_CheckExact(obj)) return PyBytes_GET_SIZE(obj) <= PLAIN_MOST;
    if (PyUnicode_CheckExact(obj)) return PyUnicode_GET_LENGTH(obj) <= PLAIN_MOST;
    return PyLong_CheckExact(obj) || PyFloat_CheckExact(obj) || PyBool_Check(obj) ||
           obj == Py_None;
}

/* send(obj, dest, tag) -> bool
 * Send obj to dest with tag in one step, if it is a plain value (bytes or str of at most
 * PLAIN_MOST, int, float, bool, None), dest and tag are plain ints in range, the codec is
 * the standard pickle and the engine's send_fast takes it; else False, nothing sent
 * (comm.send does the rest and says what is wrong, if anything is). */
static PyObject *ObjectPath_send(ObjectPath *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "send(obj, dest, tag)");
    PyObject *obj = args[0];
    Py_ssize_t dest = rank_index(self, args[1]);
    if (dest < 0 || !tag_ok(self, args[2], 0) || !plain(obj)) Py_RETURN_FALSE;
    if (current_engine(self) == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_FALSE;
    }
    int standard = codec_standard(self);
    if (standard <= 0) {
        if (standard < 0) return NULL;
        Py_RETURN_FALSE;
    }
    PyObject *protocol = PyObject_GetAttr(self->codec, s_protocol);
    if (protocol == NULL) return NULL;
    PyObject *dumps_args[2] = {obj, protocol};
    PyObject *head = PyObject_Vectorcall(pickle_dumps, dumps_args, 2, NULL);
    Py_DECREF(protocol);
    if (head == NULL) { /* comm.send pickles it again and says why it cannot */
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    PyObject *send_args[5] = {PyTuple_GET_ITEM(self->ranks, dest), self->ctx, args[2], head,
                              pickled_flag};
    PyObject *send_fast = self->send_fast; /* (held: another thread may bind a new engine's) */
    Py_INCREF(send_fast);
    PyObject *sent = PyObject_Vectorcall(send_fast, send_args, 5, NULL);
    Py_DECREF(send_fast);
    Py_DECREF(head);
    return sent;
}

/* recv(source, tag) -> object | Taken | NOT_TAKEN
 * Receive from source (a plain int in range, not ANY_SOURCE) with tag (or ANY_TAG) in one
 * step through the engine's receive_fast (spinning its fast_spin_ns): the value unpickled
 * (None for an empty message), or Taken(message) when the message was taken but is one
 * Python decodes (out-of-band parts, or a pickle that fails here: Python says why), or
 * NOT_TAKEN when nothing was taken (comm.recv does the rest). */
static PyObject *ObjectPath_recv(ObjectPath *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "recv(source, tag)");
    Py_ssize_t source = rank_index(self, args[0]);
    if (source < 0 || !tag_ok(self, args[1], 1)) goto not_taken;
    PyObject *engine = current_engine(self);
    if (engine == NULL) {
        if (PyErr_Occurred()) return NULL;
        goto not_taken;
    }
    int standard = codec_standard(self);
    if (standard <= 0) {
        if (standard < 0) return NULL;
        goto not_taken;
    }
    PyObject *spin = PyObject_GetAttr(engine, s_fast_spin_ns);
    if (spin == NULL) return NULL;
    PyObject *receive_args[5] = {PyTuple_GET_ITEM(self->ranks, source), self->ctx, args[1],
                                 Py_None, spin};
    /* (held: the GIL is released while it spins, and another thread may bind a new
     * engine's paths meanwhile) */
    PyObject *receive_fast = self->receive_fast;
    Py_INCREF(receive_fast);
    PyObject *message = PyObject_Vectorcall(receive_fast, receive_args, 5, NULL);
    Py_DECREF(receive_fast);
    Py_DECREF(spin);
    if (message == NULL) return NULL;
    if (message == Py_None) {
        Py_DECREF(message);
        goto not_taken;
    }
    PyObject *result = NULL;
    PyObject *length = PyObject_GetAttr(message, s_length);
    if (length == NULL) goto done;
    int empty = !PyObject_IsTrue(length);
    Py_DECREF(length);
    if (empty) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    PyObject *nparts = PyObject_GetAttr(message, s_nparts);
    if (nparts == NULL) goto done;
    long parts = PyLong_AsLong(nparts);
    Py_DECREF(nparts);
    if (parts == -1 && PyErr_Occurred()) goto done;
    if (parts == 1) {
        PyObject *body = PyObject_GetAttr(message, s_body);
        if (body == NULL) goto done;
        result = PyObject_CallOneArg(pickle_loads, body);
        Py_DECREF(body);
        if (result != NULL) goto done;
        PyErr_Clear(); /* Python unpickles it again and raises the error that says why */
    }
    result = taken(message);
done:
    Py_DECREF(message);
    return result;
not_taken:
    Py_INCREF(not_taken);
    return not_taken;
}

static PyMethodDef ObjectPath_methods[] = {
    {"send", (PyCFunction)(void (*)(void))ObjectPath_send, METH_FASTCALL,
     "send(obj, dest, tag) -> bool: a plain value sent in one step, or False (nothing sent)"},
    {"recv", (PyCFunction)(void (*)(void))ObjectPath_recv, METH_FASTCALL,
     "recv(source, tag) -> the value, Taken(message) or NOT_TAKEN"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ObjectPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shoal.spmd._p2pcore.ObjectPath",
    .tp_basicsize = sizeof(ObjectPath),
    .tp_dealloc = (destructor)ObjectPath_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "ObjectPath(ranks, ctx, tag_bound, world, codec): a communicator's one-step "
              "object send and receive of plain values.",
    .tp_traverse = (traverseproc)ObjectPath_traverse,
    .tp_clear = (inquiry)ObjectPath_clear,
    .tp_methods = ObjectPath_methods,
    .tp_init = (initproc)ObjectPath_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_p2pcore",
    "A communicator's one-step object send and receive of plain values (see "
    "shoal.spmd.objpath).", -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__p2pcore(void) {
    if (PyType_Ready(&TakenType) < 0 || PyType_Ready(&ObjectPathType) < 0) return NULL;
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_engine, "_engine");
    INTERN(s_send_fast, "send_fast");
    INTERN(s_receive_fast, "receive_fast");
    INTERN(s_fast_spin_ns, "fast_spin_ns");
    INTERN(s_oob, "_oob");
    INTERN(s_protocol, "_protocol");
    INTERN(s_length, "length");
    INTERN(s_nparts, "nparts");
    INTERN(s_body, "body");
#undef INTERN
    PyObject *pickle = PyImport_ImportModule("pickle");
    if (pickle == NULL) return NULL;
    pickle_dumps = PyObject_GetAttrString(pickle, "dumps");
    pickle_loads = PyObject_GetAttrString(pickle, "loads");
    Py_DECREF(pickle);
    if (pickle_dumps == NULL || pickle_loads == NULL) return NULL;
    pickled_flag = PyLong_FromLong(PICKLED);
    if (pickled_flag == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    not_taken = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    if (not_taken == NULL || PyModule_AddObjectRef(m, "NOT_TAKEN", not_taken) < 0 ||
        PyModule_AddObjectRef(m, "ObjectPath", (PyObject *)&ObjectPathType) < 0 ||
        PyModule_AddObjectRef(m, "Taken", (PyObject *)&TakenType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
