/*
 * moodump._speedups: the row-formatting hot loop in C (optional; moodump falls back to
 * letting the server format rows when this module is not built).
 *
 * fetch_format(fetch_row, escape_mask, max_bytes) -> (data: bytes, rows: int, done: bool)
 *
 * Calls fetch_row() (the connector C extension's method, returning a tuple of bytes or
 * None per column, or None at the end) until the formatted text reaches max_bytes or the
 * result ends. Each row becomes one line of the moodump data format (docs/format.md):
 * fields joined by TAB, a LF at the end, NULL as \N, and in columns whose escape_mask byte
 * is non-zero every backslash, TAB and LF written as \\, \t and \n. The output is
 * byte-identical to the server-side formatting path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

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

static int put_escaped(outbuf *o, const char *s, Py_ssize_t n) {
    /* Worst case every byte doubles. */
    if (ensure(o, 2 * n) < 0)
        return -1;
    char *d = o->buf + o->len;
    const char *end = s + n;
    while (s < end) {
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
    o->len = d - o->buf;
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

static PyMethodDef methods[] = {
    {"fetch_format", fetch_format, METH_VARARGS,
     "fetch_format(fetch_row, escape_mask, max_bytes) -> (data, rows, done)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups",
                                    "moodump's row-formatting hot loop", -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
