/* The bulk-ingest fast path of sandik.core.validation.clean_votes, in C.
 *
 * check_clean(sheet, candidate_ids, registered) returns
 *   (votes, votes_text)  the sheet is clean (validate would report nothing, W5 aside):
 *                        its votes in the race's candidate order, as a list and as
 *                        the text "a,b,c" that is stored and hashed;
 *   None                 the sheet is not clean: validate words the verdict;
 *   NotImplemented       anything this code does not decide exactly like the Python
 *                        reference (votes in another order, bools, non-int or huge
 *                        numbers, a dict subclass): the caller asks clean_votes.
 *
 * Why C: this check is the largest share of a bulk ingest's per-sheet cost in
 * Python. The arithmetic is the same as clean_votes, on integers below 2**52 so
 * that the float thresholds (0.02 * l3 and the like) give the very same results
 * as Python's exact int/float comparisons. tests/test_validation.py checks the
 * two agree on random and adversarial sheets.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>

#define LIMIT (1LL << 52)

static PyObject *s_votes, *s_registered, *s_voted_listed, *s_voted_by_law, *s_total_voters, *s_ballots_used,
    *s_valid_unchallenged, *s_valid_challenged, *s_valid, *s_invalid;
static PyObject *s_optional[6];
static const char *optional_names[6] = {"envelopes_out", "envelopes_destroyed", "envelopes_received",
                                        "envelopes_unused", "ballots_received", "ballots_unused"};

/* 1: a plain int in [-LIMIT, LIMIT] stored in *out; 0: not one (caller falls back); -1: error. */
static int plain_int(PyObject *o, long long *out) {
    int overflow = 0;
    long long v;
    if (!PyLong_CheckExact(o)) return 0;
    v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow || v > LIMIT || v < -LIMIT) return 0;
    *out = v;
    return 1;
}

/* Reads an int attribute: 1 ok, 0 fall back, -1 error. */
static int int_attr(PyObject *sheet, PyObject *name, long long *out) {
    int r;
    PyObject *o = PyObject_GetAttr(sheet, name);
    if (o == NULL) return -1;
    r = plain_int(o, out);
    Py_DECREF(o);
    return r;
}

static PyObject *check_clean(PyObject *self, PyObject *args) {
    PyObject *sheet, *cids, *votes = NULL, *vs = NULL, *text = NULL, *result = NULL;
    long long registered, K, l1, l2, l3, used, v7, v8, v9, inv, total = 0, vmin = 0;
    long long head[9];
    PyObject *names[9];
    Py_ssize_t n, pos = 0, i = 0;
    PyObject *key, *value;
    char *buf = NULL;
    size_t cap, len = 0;
    int r, k;

    if (!PyArg_ParseTuple(args, "OO!L", &sheet, &PyList_Type, &cids, &registered)) return NULL;
    votes = PyObject_GetAttr(sheet, s_votes);
    if (votes == NULL) return NULL;
    if (!PyDict_CheckExact(votes)) goto fallback;
    n = PyList_GET_SIZE(cids);
    if (PyDict_GET_SIZE(votes) != n) goto fallback;

    names[0] = s_registered; names[1] = s_voted_listed; names[2] = s_voted_by_law; names[3] = s_total_voters;
    names[4] = s_ballots_used; names[5] = s_valid_unchallenged; names[6] = s_valid_challenged; names[7] = s_valid;
    names[8] = s_invalid;
    for (k = 0; k < 9; k++) {
        r = int_attr(sheet, names[k], &head[k]);
        if (r < 0) goto error;
        if (r == 0) goto fallback;
    }
    K = head[0]; l1 = head[1]; l2 = head[2]; l3 = head[3]; used = head[4]; v7 = head[5]; v8 = head[6]; v9 = head[7]; inv = head[8];

    vs = PyList_New(n);
    if (vs == NULL) goto error;
    cap = (size_t)n * 21 + 1;
    buf = PyMem_Malloc(cap);
    if (buf == NULL) { PyErr_NoMemory(); goto error; }
    while (PyDict_Next(votes, &pos, &key, &value)) {
        long long v;
        PyObject *want = PyList_GET_ITEM(cids, i);
        if (key != want) {
            r = PyUnicode_Check(key) && PyUnicode_Check(want) ? PyUnicode_Compare(key, want) : -2;
            if (r == -1 && PyErr_Occurred()) goto error;
            if (r != 0) goto fallback; /* another order or other candidates: the Python path decides */
        }
        r = plain_int(value, &v);
        if (r < 0) goto error;
        if (r == 0) goto fallback;
        Py_INCREF(value);
        PyList_SET_ITEM(vs, i, value);
        total += v;
        if (i == 0 || v < vmin) vmin = v;
        len += (size_t)snprintf(buf + len, cap - len, i ? ",%lld" : "%lld", v);
        i++;
    }

    /* From here on the verdict is exact: None means "not clean". */
    if (K != registered) goto not_clean;
    for (k = 0; k < 6; k++) {
        PyObject *o = PyObject_GetAttr(sheet, s_optional[k]);
        if (o == NULL) goto error;
        r = o != Py_None;
        Py_DECREF(o);
        if (r) goto not_clean;
    }
    if (K < 0 || l1 < 0 || l2 < 0 || l3 < 0 || used < 0 || v7 < 0 || v8 < 0 || v9 < 0 || inv < 0 || (n && vmin < 0)) goto not_clean;
    if (l1 > K || l3 != l1 + l2 || v9 != v7 + v8 || total != v9 || used != v9 + inv || used > l3 || l3 > K + l2) goto not_clean;
    {
        long long gap = l3 - used;
        if (gap && (gap >= 15 || (double)gap >= 0.02 * (double)l3)) goto not_clean;
    }
    if (K > 0 && (double)l3 >= 0.98 * (double)K) goto not_clean;
    if (used && (double)inv >= 0.10 * (double)used) goto not_clean;
    if (l3 && l2 >= 10 && (double)l2 >= 0.10 * (double)l3) goto not_clean;

    text = PyUnicode_FromStringAndSize(buf, (Py_ssize_t)len);
    if (text == NULL) goto error;
    result = PyTuple_Pack(2, vs, text);
    Py_DECREF(text);
    goto done;

not_clean:
    result = Py_NewRef(Py_None);
    goto done;
fallback:
    result = Py_NewRef(Py_NotImplemented);
    goto done;
error:
    result = NULL;
done:
    PyMem_Free(buf);
    Py_XDECREF(vs);
    Py_XDECREF(votes);
    return result;
}

static PyMethodDef methods[] = {
    {"check_clean", check_clean, METH_VARARGS, "(votes list, votes text) if the sheet is clean, None if not, NotImplemented to ask the Python reference."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastcheck", "C fast path of sandik.core.validation.clean_votes.", -1, methods};

PyMODINIT_FUNC PyInit__fastcheck(void) {
    int k;
#define INTERN(var, name) if ((var = PyUnicode_InternFromString(name)) == NULL) return NULL
    INTERN(s_votes, "votes");
    INTERN(s_registered, "registered");
    INTERN(s_voted_listed, "voted_listed");
    INTERN(s_voted_by_law, "voted_by_law");
    INTERN(s_total_voters, "total_voters");
    INTERN(s_ballots_used, "ballots_used");
    INTERN(s_valid_unchallenged, "valid_unchallenged");
    INTERN(s_valid_challenged, "valid_challenged");
    INTERN(s_valid, "valid");
    INTERN(s_invalid, "invalid");
    for (k = 0; k < 6; k++) INTERN(s_optional[k], optional_names[k]);
#undef INTERN
    return PyModule_Create(&module);
}
