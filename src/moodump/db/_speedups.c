/*
 * moodump.db._speedups: the row-streaming hot loop in C (optional; moodump falls back to
 * letting the server format rows when this module is not built).
 *
 * Two entry points produce the same bytes, one line of the moodump data format per row
 * (docs/format.md): fields joined by TAB, a LF at the end, NULL as \N, and in columns
 * whose escape_mask byte is non-zero every backslash, TAB and LF written as \\, \t, \n.
 *
 * Stream(mysql, thread_id, sql, escape_mask)  (the fast path)
 *     Runs sql unbuffered on the session *inside* mysql-connector-python's C extension
 *     object and reads rows with the client library that extension carries, through the
 *     library's public C API (mysql_real_query, mysql_use_result, mysql_fetch_row, ...),
 *     resolved with dlsym from the extension's own shared object. No Python object is
 *     built per row or per value, and a whole batch is read and formatted with the GIL
 *     released, so worker threads run in parallel. The one assumption about the
 *     connector's internals is that its MySQL object embeds the MYSQL session first,
 *     right after PyObject_HEAD (true since the C extension exists); it is checked
 *     before use by comparing mysql_thread_id() with the id the connector reported, and
 *     moodump uses fetch_format() when the check fails (usable() says why).
 *
 * fetch_format(fetch_row, escape_mask, max_bytes) -> (data: bytes, rows: int, done: bool)
 *     Calls fetch_row() (the connector's method, returning a tuple of bytes or None per
 *     column, or None at the end) until the text reaches max_bytes or the result ends.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <stdint.h>
#include <stdlib.h>
#include <dlfcn.h>

/* The batch is built in place in a bytes object (no copy at the end): resized as it
 * grows, shrunk to its length when done. */
typedef struct {
    PyObject *obj;
    char *buf;
    Py_ssize_t len;
    Py_ssize_t cap;
} outbuf;

static int ensure(outbuf *o, Py_ssize_t extra) {
    if (o->len + extra <= o->cap)
        return 0;
    Py_ssize_t cap = o->cap;
    while (cap < o->len + extra) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    if (_PyBytes_Resize(&o->obj, cap) < 0)
        return -1;
    o->buf = PyBytes_AS_STRING(o->obj);
    o->cap = cap;
    return 0;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Non-zero when one of the 8 bytes of v is zero (exact as a yes/no answer). */
static inline uint64_t has_zero(uint64_t v) { return (v - ONES) & ~v & HIGHS; }

/* Non-zero when one of the 8 bytes at s is a backslash, TAB or LF. */
static inline uint64_t has_special(const char *s) {
    uint64_t w;
    memcpy(&w, s, 8);
    return has_zero(w ^ (ONES * '\\')) | has_zero(w ^ (ONES * '\t')) | has_zero(w ^ (ONES * '\n'));
}

/* Escape one value: words without a special byte are copied whole (most text has
 * none), the others byte by byte. */
static char *put_escaped_value(char *d, const char *s, size_t l) {
    const char *end = s + l;
    while (s < end) {
        if (end - s >= 8 && !has_special(s)) {
            memcpy(d, s, 8);
            d += 8;
            s += 8;
            continue;
        }
        const char *stop = end - s >= 8 ? s + 8 : end;
        while (s < stop) {
            char c = *s++;
            if (c == '\\') {
                *d++ = '\\';
                *d++ = '\\';
            } else if (c == '\t') {
                *d++ = '\\';
                *d++ = 't';
            } else if (c == '\n') {
                *d++ = '\\';
                *d++ = 'n';
            } else {
                *d++ = c;
            }
        }
    }
    return d;
}

static int put_escaped(outbuf *o, const char *s, Py_ssize_t n) {
    /* Worst case every byte doubles. */
    if (ensure(o, 2 * n) < 0)
        return -1;
    o->len = put_escaped_value(o->buf + o->len, s, (size_t)n) - o->buf;
    return 0;
}

static int put_raw(outbuf *o, const char *s, Py_ssize_t n) {
    if (ensure(o, n) < 0)
        return -1;
    memcpy(o->buf + o->len, s, (size_t)n);
    o->len += n;
    return 0;
}

static PyObject *fetch_format(PyObject *self, PyObject *args) {
    PyObject *fetch;
    Py_buffer mask;
    Py_ssize_t max_bytes;
    if (!PyArg_ParseTuple(args, "Oy*n", &fetch, &mask, &max_bytes))
        return NULL;
    const char *esc = (const char *)mask.buf;
    Py_ssize_t ncols = mask.len;
    Py_ssize_t cap0 = max_bytes + (max_bytes >> 3) + 4096;
    outbuf o = {PyBytes_FromStringAndSize(NULL, cap0), NULL, 0, cap0};
    if (!o.obj) {
        PyBuffer_Release(&mask);
        return NULL;
    }
    o.buf = PyBytes_AS_STRING(o.obj);
    Py_ssize_t rows = 0;
    int done = 0;

    while (o.len < max_bytes) {
        PyObject *row = PyObject_CallNoArgs(fetch);
        if (!row)
            goto fail;
        if (row == Py_None) {
            Py_DECREF(row);
            done = 1;
            break;
        }
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != ncols) {
            Py_DECREF(row);
            PyErr_Format(PyExc_ValueError, "expected a row of %zd columns", ncols);
            goto fail;
        }
        for (Py_ssize_t i = 0; i < ncols; i++) {
            PyObject *v = PyTuple_GET_ITEM(row, i);
            int rc;
            if (i && put_raw(&o, "\t", 1) < 0) {
                Py_DECREF(row);
                goto fail;
            }
            if (v == Py_None) {
                rc = put_raw(&o, "\\N", 2);
            } else if (PyBytes_Check(v)) {
                if (esc[i])
                    rc = put_escaped(&o, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
                else
                    rc = put_raw(&o, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
            } else {
                PyErr_Format(PyExc_TypeError, "column %zd is %s, expected bytes (raw fetch)",
                             i, Py_TYPE(v)->tp_name);
                rc = -1;
            }
            if (rc < 0) {
                Py_DECREF(row);
                goto fail;
            }
        }
        Py_DECREF(row);
        if (put_raw(&o, "\n", 1) < 0)
            goto fail;
        rows++;
    }
    PyBuffer_Release(&mask);
    if (_PyBytes_Resize(&o.obj, o.len) < 0)
        return NULL;
    return Py_BuildValue("(NnO)", o.obj, rows, done ? Py_True : Py_False);

fail:
    PyBuffer_Release(&mask);
    Py_XDECREF(o.obj);
    return NULL;
}


/* ---- the direct path: the client library inside the connector's C extension ---- */

typedef char **ROW;
typedef int (*real_query_fn)(void *, const char *, unsigned long);
typedef void *(*use_result_fn)(void *);
typedef ROW (*fetch_row_fn)(void *);
typedef unsigned long *(*fetch_lengths_fn)(void *);
typedef unsigned int (*num_fields_fn)(void *);
typedef void (*free_result_fn)(void *);
typedef unsigned int (*errno_fn)(void *);
typedef const char *(*error_fn)(void *);
typedef unsigned long (*thread_id_fn)(void *);

static struct {
    int state; /* 0 not tried, 1 ready, -1 unusable */
    char why[256];
    real_query_fn real_query;
    use_result_fn use_result;
    fetch_row_fn fetch_row;
    fetch_lengths_fn fetch_lengths;
    num_fields_fn num_fields;
    free_result_fn free_result;
    errno_fn err_no;
    error_fn error;
    thread_id_fn thread_id;
} api;

static PyObject *StreamError;

/* Resolve the client API from the connector's extension module (already imported by
 * moodump.db.connection, so RTLD_NOLOAD finds it without loading a second copy). */
static int load_api(void) {
    if (api.state)
        return api.state;
    api.state = -1;
    PyObject *mod = PyImport_ImportModule("_mysql_connector");
    if (!mod) {
        PyErr_Clear();
        snprintf(api.why, sizeof api.why, "the connector's C extension is not importable");
        return -1;
    }
    PyObject *file = PyObject_GetAttrString(mod, "__file__");
    Py_DECREF(mod);
    const char *path = file ? PyUnicode_AsUTF8(file) : NULL;
    if (!path) {
        PyErr_Clear();
        Py_XDECREF(file);
        snprintf(api.why, sizeof api.why, "the connector's C extension has no file");
        return -1;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    Py_DECREF(file);
    if (!h) {
        snprintf(api.why, sizeof api.why, "dlopen of the connector's C extension failed");
        return -1;
    }
#define SYM(field, name)                                                                   \
    do {                                                                                   \
        *(void **)&api.field = dlsym(h, name);                                             \
        if (!api.field) {                                                                  \
            snprintf(api.why, sizeof api.why, "the connector's C extension lacks %s", name); \
            return -1;                                                                     \
        }                                                                                  \
    } while (0)
    SYM(real_query, "mysql_real_query");
    SYM(use_result, "mysql_use_result");
    SYM(fetch_row, "mysql_fetch_row");
    SYM(fetch_lengths, "mysql_fetch_lengths");
    SYM(num_fields, "mysql_num_fields");
    SYM(free_result, "mysql_free_result");
    SYM(err_no, "mysql_errno");
    SYM(error, "mysql_error");
    SYM(thread_id, "mysql_thread_id");
#undef SYM
    api.state = 1;
    return 1;
}

/* The MYSQL session embedded in the connector's MySQL object, or NULL with the reason. */
static void *session_of(PyObject *obj, unsigned long thread_id, const char **why) {
    if (load_api() < 0) {
        *why = api.why;
        return NULL;
    }
    if (strcmp(Py_TYPE(obj)->tp_name, "_mysql_connector.MySQL") != 0) {
        *why = "not a _mysql_connector.MySQL object";
        return NULL;
    }
    void *session = (char *)obj + sizeof(PyObject);
    if (api.thread_id(session) != thread_id) {
        *why = "the connector's MySQL object has an unknown layout";
        return NULL;
    }
    return session;
}

static PyObject *client_api(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    if (load_api() < 0)
        return PyUnicode_FromString(api.why);
    Py_RETURN_NONE;
}

static PyObject *usable(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *obj;
    unsigned long tid;
    if (!PyArg_ParseTuple(args, "Ok", &obj, &tid))
        return NULL;
    const char *why = NULL;
    if (session_of(obj, tid, &why))
        Py_RETURN_NONE;
    return PyUnicode_FromString(why);
}

typedef struct {
    PyObject_HEAD
    PyObject *owner; /* the connector object whose session this is: kept alive */
    void *session;
    void *res;
    char *esc;
    unsigned int ncols;
    ROW pending; /* a fetched row that did not fit the batch buffer */
    unsigned long *pending_lens;
    char *buf; /* the batch buffer, reused */
    size_t cap;
} Stream;

static PyObject *raise_session(void *session) {
    unsigned int no = api.err_no(session);
    const char *msg = api.error(session);
    if (!msg)
        msg = "";
    /* Server messages may quote names in other character sets: never fail on them. */
    PyObject *m = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
    if (!m)
        return NULL;
    PyObject *exc = PyObject_CallFunction(StreamError, "IO", no, m);
    if (exc) {
        PyObject *n = PyLong_FromUnsignedLong(no);
        if (n && PyObject_SetAttrString(exc, "errno", n) == 0)
            PyObject_SetAttrString(exc, "msg", m);
        Py_XDECREF(n);
        PyErr_SetObject(StreamError, exc);
        Py_DECREF(exc);
    }
    Py_DECREF(m);
    return NULL;
}

static void stream_free_result(Stream *st) {
    st->pending = NULL; /* points into the result's buffers */
    if (st->res) {
        void *res = st->res;
        st->res = NULL;
        /* For an unbuffered result this reads and drops the remaining rows. */
        Py_BEGIN_ALLOW_THREADS
        api.free_result(res);
        Py_END_ALLOW_THREADS
    }
}

static void Stream_dealloc(Stream *st) {
    stream_free_result(st);
    free(st->esc);
    free(st->buf);
    Py_XDECREF(st->owner);
    Py_TYPE(st)->tp_free((PyObject *)st);
}

static PyObject *Stream_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *obj;
    unsigned long tid;
    Py_buffer sql, mask;
    static char *kwlist[] = {"mysql", "thread_id", "sql", "escape_mask", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oky*y*", kwlist, &obj, &tid, &sql, &mask))
        return NULL;
    const char *why = NULL;
    void *session = session_of(obj, tid, &why);
    if (!session) {
        PyBuffer_Release(&sql);
        PyBuffer_Release(&mask);
        return PyErr_Format(PyExc_RuntimeError, "direct streaming unavailable: %s", why);
    }
    Stream *st = (Stream *)type->tp_alloc(type, 0);
    if (!st) {
        PyBuffer_Release(&sql);
        PyBuffer_Release(&mask);
        return NULL;
    }
    st->ncols = (unsigned int)mask.len;
    st->esc = malloc(mask.len ? (size_t)mask.len : 1);
    if (!st->esc) {
        PyBuffer_Release(&sql);
        PyBuffer_Release(&mask);
        Py_DECREF(st);
        return PyErr_NoMemory();
    }
    memcpy(st->esc, mask.buf, (size_t)mask.len);
    PyBuffer_Release(&mask);
    Py_INCREF(obj);
    st->owner = obj;
    st->session = session;
    int rc;
    void *res = NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = api.real_query(session, (const char *)sql.buf, (unsigned long)sql.len);
    if (rc == 0)
        res = api.use_result(session);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&sql);
    if (rc != 0 || !res) {
        raise_session(session);
        Py_DECREF(st);
        return NULL;
    }
    st->res = res;
    if (api.num_fields(res) != st->ncols) {
        PyErr_Format(PyExc_ValueError, "the query returned %u columns, expected %u",
                     api.num_fields(res), st->ncols);
        Py_DECREF(st);
        return NULL;
    }
    return (PyObject *)st;
}

/* Bytes one row takes in the text format, at most (escaping can double a value). */
static size_t row_need(const Stream *st, ROW row, const unsigned long *lens) {
    size_t need = st->ncols + 1;
    for (unsigned int i = 0; i < st->ncols; i++)
        need += row[i] ? (st->esc[i] ? 2 * (size_t)lens[i] : (size_t)lens[i]) : 2;
    return need;
}

static char *put_row(const Stream *st, char *d, ROW row, const unsigned long *lens) {
    const char *esc = st->esc;
    for (unsigned int i = 0; i < st->ncols; i++) {
        if (i)
            *d++ = '\t';
        const char *s = row[i];
        if (!s) {
            *d++ = '\\';
            *d++ = 'N';
        } else if (esc[i]) {
            d = put_escaped_value(d, s, lens[i]);
        } else {
            memcpy(d, s, lens[i]);
            d += lens[i];
        }
    }
    *d++ = '\n';
    return d;
}

enum { MORE = 0, END = 1, FULL = 2, FAILED = -1 };

/* Format rows into buf[*len..cap) until *len reaches max_bytes, the result ends, or the
 * next row does not fit (FULL: the row is kept in st->pending and *need says how much
 * room the batch needs with it). Runs without the GIL: buf is the stream's own buffer or
 * a bytes object nobody else sees yet. Returns the number of rows written. */
static Py_ssize_t fill(Stream *st, char *buf, size_t cap, size_t max_bytes, size_t *len,
                       size_t *need, int *state) {
    size_t n = *len;
    Py_ssize_t rows = 0;
    *state = MORE;
    while (n < max_bytes) {
        ROW row;
        unsigned long *lens;
        if (st->pending) {
            row = st->pending;
            lens = st->pending_lens;
            st->pending = NULL;
        } else {
            row = api.fetch_row(st->res);
            if (!row) {
                *state = api.err_no(st->session) ? FAILED : END;
                break;
            }
            lens = api.fetch_lengths(st->res);
        }
        size_t r = row_need(st, row, lens);
        if (n + r > cap) {
            st->pending = row; /* valid until the next fetch_row */
            st->pending_lens = lens;
            *need = n + r;
            *state = FULL;
            break;
        }
        n = (size_t)(put_row(st, buf + n, row, lens) - buf);
        rows++;
    }
    *len = n;
    return rows;
}

/* A batch is formatted into the stream's own buffer, reused batch after batch (its pages
 * stay mapped), and copied into the bytes object returned. A row too long for that buffer
 * ends its batch: the batch so far is copied into a bytes object sized for it and the
 * row, and the row is formatted in place there, so a 16 MiB row is held once (plus the
 * compressor's copy), not in a grown buffer and again in its copy. */
static PyObject *Stream_fetch(Stream *st, PyObject *args) {
    Py_ssize_t max_bytes;
    if (!PyArg_ParseTuple(args, "n", &max_bytes))
        return NULL;
    if (!st->res)
        return Py_BuildValue("(y#nO)", "", (Py_ssize_t)0, (Py_ssize_t)0, Py_True);
    if (max_bytes < 1)
        max_bytes = 1;
    size_t cap = (size_t)max_bytes + (size_t)max_bytes / 8 + 4096;
    if (st->cap != cap) {
        char *b = realloc(st->buf, cap);
        if (!b)
            return PyErr_NoMemory();
        st->buf = b;
        st->cap = cap;
    }
    size_t len = 0, need = 0;
    int state;
    Py_ssize_t rows;
    Py_BEGIN_ALLOW_THREADS
    rows = fill(st, st->buf, cap, (size_t)max_bytes, &len, &need, &state);
    Py_END_ALLOW_THREADS
    PyObject *out;
    if (state == FULL) {
        out = need > (size_t)PY_SSIZE_T_MAX ? NULL
                                            : PyBytes_FromStringAndSize(NULL, (Py_ssize_t)need);
        if (!out) {
            stream_free_result(st);
            return PyErr_Occurred() ? NULL : PyErr_NoMemory();
        }
        char *buf = PyBytes_AS_STRING(out);
        memcpy(buf, st->buf, len);
        Py_ssize_t got;
        Py_BEGIN_ALLOW_THREADS
        /* max_bytes = len + 1: stop right after the pending row, which fits exactly. */
        got = fill(st, buf, need, len + 1, &len, &need, &state);
        Py_END_ALLOW_THREADS
        rows += got;
        if (_PyBytes_Resize(&out, (Py_ssize_t)len) < 0)
            return NULL;
    } else if (state == FAILED) {
        raise_session(st->session);
        stream_free_result(st);
        return NULL;
    } else {
        out = PyBytes_FromStringAndSize(st->buf, (Py_ssize_t)len);
        if (!out)
            return NULL;
    }
    if (state == END)
        stream_free_result(st);
    return Py_BuildValue("(NnO)", out, rows, state == END ? Py_True : Py_False);
}

static PyObject *Stream_close(Stream *st, PyObject *noargs) {
    stream_free_result(st);
    Py_RETURN_NONE;
}

static PyMethodDef Stream_methods[] = {
    {"fetch", (PyCFunction)Stream_fetch, METH_VARARGS,
     "fetch(max_bytes) -> (data, rows, done): read and format rows without the GIL"},
    {"close", (PyCFunction)Stream_close, METH_NOARGS,
     "close(): drop the rest of the result (reads and discards remaining rows)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject StreamType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "moodump.db._speedups.Stream",
    .tp_basicsize = sizeof(Stream),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Stream(mysql, thread_id, sql, escape_mask): an unbuffered query read in C",
    .tp_new = Stream_new,
    .tp_dealloc = (destructor)Stream_dealloc,
    .tp_methods = Stream_methods,
};

static PyMethodDef methods[] = {
    {"fetch_format", fetch_format, METH_VARARGS,
     "fetch_format(fetch_row, escape_mask, max_bytes) -> (data, rows, done)"},
    {"client_api", client_api, METH_NOARGS,
     "client_api() -> None, or why the client library in the connector cannot be used"},
    {"usable", usable, METH_VARARGS,
     "usable(mysql, thread_id) -> None, or why the direct Stream cannot be used"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups",
                                    "moodump's row-formatting hot loop", -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (PyType_Ready(&StreamType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    StreamError = PyErr_NewExceptionWithDoc(
        "moodump.db._speedups.StreamError",
        "A client-library error while streaming; errno and msg as the connector's errors.",
        NULL, NULL);
    if (!StreamError || PyModule_AddObjectRef(m, "StreamError", StreamError) < 0 ||
        PyModule_AddObjectRef(m, "Stream", (PyObject *)&StreamType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
