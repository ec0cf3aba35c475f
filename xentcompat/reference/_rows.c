/* One pass per row of the reference's one-hot gradient: see xentcompat/reference/compiled_rows.py.

For each row x (float32 or float64) of an N x C batch, with m its max (first at k):
    t = sum_{j != k} e^{x_j - m}        summed in blocks of 128, the block sums added pairwise
    out_j = e^{x_j - m} * scale_i       scale_i = c_i / (1 + t), or 1 where no coefficients are given
and whether the row holds NaN or +inf (then m, k, t and out are meaningless: the caller writes NaN there).
The row stays in cache between its passes (max, first index, e^x with its sum, the scaling). e^x is glibc's vector
exp (libmvec) where the compiler can call it: x86_64 with glibc; elsewhere `VECTOR_EXP` is false and the module is
not used. The GIL is released while rows are walked. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GLIBC__)
#define VECTOR_EXP 1
__attribute__((__simd__("notinbranch"))) extern double exp(double);
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_EXP 0
#define CLONES
#endif

#define BLOCK 128
#define LANES 8
#define LEVELS 64

/* e^a of LANES numbers: a loop of a fixed count the compiler turns into whole vector calls, so that every element of
every row meets the same exp (a loop of any length would leave a remainder to the scalar exp, 1 ulp apart). */
static inline __attribute__((always_inline)) void exp_lanes(const double *a, double *e) {
    _Pragma("omp simd")
    for (int l = 0; l < LANES; l++) e[l] = exp(a[l]);
}

/* e[0] + ... + e[len - 1] in LANES running sums (lane l takes e[l], e[l + LANES], ...), added pairwise: an order
fixed by the code, whatever the compiler vectorizes. e[len ...] up to the next multiple of LANES are 0. */
static double lane_sum(const double *e, Py_ssize_t len) {
    double acc[LANES] = {0.0};
    for (Py_ssize_t g = 0; g < len; g += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += e[g + l];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Pairwise sum of block sums: a binary counter of partial sums, level l holding the sum of 2^l blocks. */
typedef struct {
    double level[LEVELS];
    uint64_t count;
} Cascade;

static void cascade_add(Cascade *c, double block_sum) {
    uint64_t n = c->count++;
    int l = 0;
    while (n & 1) {
        block_sum = c->level[l] + block_sum;
        n >>= 1;
        l++;
    }
    c->level[l] = block_sum;
}

static double cascade_total(const Cascade *c) {
    double total = 0.0;
    uint64_t n = c->count;
    for (int l = 0; n; l++, n >>= 1)
        if (n & 1) total = c->level[l] + total;
    return total;
}

#define ROW_FUNCTIONS(NAME, T)                                                                              \
    CLONES static void NAME##_max(const T *row, Py_ssize_t c, T *max_out, int *bad_out) {                   \
        T mx = -INFINITY;                                                                                   \
        int bad = 0;                                                                                        \
        _Pragma("omp simd reduction(max:mx) reduction(|:bad)")                                             \
        for (Py_ssize_t j = 0; j < c; j++) {                                                                \
            T v = row[j];                                                                                   \
            mx = v > mx ? v : mx;                                                                           \
            bad |= (v != v);                                                                                \
        }                                                                                                   \
        *max_out = mx;                                                                                      \
        *bad_out = bad || mx == INFINITY;                                                                   \
    }                                                                                                       \
    CLONES static Py_ssize_t NAME##_first(const T *row, Py_ssize_t c, T mx) {                               \
        Py_ssize_t k = c;                                                                                   \
        _Pragma("omp simd reduction(min:k)")                                                               \
        for (Py_ssize_t j = 0; j < c; j++) k = (row[j] == mx && j < k) ? j : k;                            \
        return k == c ? 0 : k;                                                                              \
    }                                                                                                       \
    CLONES static void NAME##_exp_block(const T *x, double *e, Py_ssize_t len, double m) {                 \
        double a[BLOCK];                                                                                    \
        for (Py_ssize_t j = 0; j < len; j++) a[j] = (double)x[j] - m;                                      \
        for (Py_ssize_t j = len; j < BLOCK; j++) a[j] = -INFINITY;                                         \
        for (Py_ssize_t g = 0; g < len; g += LANES) exp_lanes(a + g, e + g);                               \
    }                                                                                                       \
    CLONES static void NAME##_scale(double *o, Py_ssize_t c, double scale) {                                \
        _Pragma("omp simd")                                                                                 \
        for (Py_ssize_t j = 0; j < c; j++) o[j] *= scale;                                                   \
    }                                                                                                       \
    static void NAME##_row(const T *row, Py_ssize_t c, double *o, const double *coefficient, double *m_out, \
                           int64_t *k_out, double *t_out, uint8_t *bad_out) {                               \
        T mx;                                                                                               \
        int bad;                                                                                            \
        NAME##_max(row, c, &mx, &bad);                                                                      \
        Py_ssize_t k = bad ? 0 : NAME##_first(row, c, mx);                                                  \
        double m = (double)mx;                                                                              \
        Cascade sums = {{0.0}, 0};                                                                          \
        double e[BLOCK];                                                                                    \
        for (Py_ssize_t b = 0; b < c; b += BLOCK) {                                                         \
            Py_ssize_t len = c - b < BLOCK ? c - b : BLOCK;                                                 \
            NAME##_exp_block(row + b, e, len, m);                                                           \
            for (Py_ssize_t j = 0; j < len; j++) o[b + j] = e[j];                                           \
            if (k >= b && k < b + len) e[k - b] = 0.0; /* the max's own term, exactly 1, is held out of t */\
            cascade_add(&sums, lane_sum(e, len));                                                           \
        }                                                                                                   \
        double t = cascade_total(&sums);                                                                    \
        if (coefficient) NAME##_scale(o, c, *coefficient / (1.0 + t));                                      \
        *m_out = m;                                                                                         \
        *k_out = (int64_t)k;                                                                                \
        *t_out = t;                                                                                         \
        *bad_out = (uint8_t)bad;                                                                            \
    }

ROW_FUNCTIONS(f32, float)
ROW_FUNCTIONS(f64, double)

static int need(Py_buffer *b, Py_ssize_t bytes, const char *name) {
    if (b->len < bytes) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, needs %zd", name, b->len, bytes);
        return 0;
    }
    return 1;
}

/* rows(x, n, c, itemsize, out, coefficients or None, m, k, t, bad): every row of x, C-contiguous buffers. */
static PyObject *rows(PyObject *self, PyObject *args) {
    Py_buffer x, out, m, k, t, bad, coef = {0};
    Py_ssize_t n, c, itemsize;
    PyObject *coefficients;
    if (!PyArg_ParseTuple(args, "y*nnnw*Ow*w*w*w*", &x, &n, &c, &itemsize, &out, &coefficients, &m, &k, &t, &bad))
        return NULL;
    int has_coef = coefficients != Py_None;
    int ok = has_coef ? PyObject_GetBuffer(coefficients, &coef, PyBUF_SIMPLE) == 0 : 1;
    ok = ok && (itemsize == 4 || itemsize == 8 || (PyErr_SetString(PyExc_ValueError, "itemsize must be 4 or 8"), 0));
    ok = ok && need(&x, n * c * itemsize, "x") && need(&out, n * c * 8, "out") && need(&m, n * 8, "m") &&
         need(&k, n * 8, "k") && need(&t, n * 8, "t") && need(&bad, n, "bad") &&
         (!has_coef || need(&coef, n * 8, "coefficients"));
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            const double *ci = has_coef ? (const double *)coef.buf + i : NULL;
            double *oi = (double *)out.buf + i * c;
            double *mi = (double *)m.buf + i, *ti = (double *)t.buf + i;
            int64_t *ki = (int64_t *)k.buf + i;
            uint8_t *bi = (uint8_t *)bad.buf + i;
            if (itemsize == 4)
                f32_row((const float *)x.buf + i * c, c, oi, ci, mi, ki, ti, bi);
            else
                f64_row((const double *)x.buf + i * c, c, oi, ci, mi, ki, ti, bi);
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    PyBuffer_Release(&m);
    PyBuffer_Release(&k);
    PyBuffer_Release(&t);
    PyBuffer_Release(&bad);
    if (has_coef && coef.obj) PyBuffer_Release(&coef);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"rows", rows, METH_VARARGS, "m, k, t, NaN/+inf and e^{x - m} (times c / (1 + t)) of every row."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rows", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rows(void) {
    PyObject *mod = PyModule_Create(&module);
    if (mod && PyModule_AddIntConstant(mod, "VECTOR_EXP", VECTOR_EXP) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
