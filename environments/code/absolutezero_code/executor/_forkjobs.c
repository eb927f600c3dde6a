/*
 * _forkjobs: the sandbox worker's fork-run-collect loop in C.
 *
 * Why C: in this kind of VM a fork costs little in itself, but every page a process
 * writes after a fork costs a page fault (~3 us), and a Python loop between two forks
 * writes ~50 pages of the worker (frames, objects, interpreter state) that the next
 * fork makes copy-on-write again. This loop writes a handful; its children skip
 * CPython's after-fork bookkeeping (the worker is single-threaded, nothing to reset)
 * and set their descriptors and limits without a Python frame or audit event.
 *
 * Security does not depend on this module: each child still runs the worker's Python
 * job function, which arms the audit hook and runs the program exactly as the
 * pure-Python path (worker._run_jobs) does; this file only replaces the process
 * plumbing. The worker falls back to that path when the module is not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LIMITS 16
#define CHUNK 65536

/* Exit codes of a child that could not start its job (seen as "exit" failures). */
#define EXIT_JOB_RAISED 70
#define EXIT_LIMIT_FAILED 71

static double
monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Close every descriptor but keep; close_range where the kernel has it. */
static void
close_all_but(int keep)
{
#ifdef SYS_close_range
    int ok = 1;
    if (keep > 0 && syscall(SYS_close_range, 0u, (unsigned)(keep - 1), 0u) != 0)
        ok = 0;
    if (ok && syscall(SYS_close_range, (unsigned)(keep + 1), ~0u, 0u) == 0)
        return;
#endif
    long top = sysconf(_SC_OPEN_MAX);
    if (top < 0 || top > (1L << 20))
        top = 1L << 20;
    for (long fd = 0; fd < top; fd++)
        if (fd != keep)
            close((int)fd);
}

/* The child side: never returns. */
static void
child_main(int result_fd, int nlimits, const int *resources, const struct rlimit *values,
           PyObject *child, PyObject *job)
{
    close_all_but(result_fd);
    for (int i = 0; i < nlimits; i++)
        if (setrlimit(resources[i], &values[i]) != 0)
            _exit(EXIT_LIMIT_FAILED);
    PyObject *fd = PyLong_FromLong(result_fd);
    PyObject *done = fd ? PyObject_CallFunctionObjArgs(child, job, fd, NULL) : NULL;
    _exit(done != NULL ? 0 : EXIT_JOB_RAISED);
}

static PyObject *
failure(const char *kind, long detail)
{
    return Py_BuildValue("(sl)", kind, detail);
}

PyDoc_STRVAR(run_jobs_doc,
"run_jobs(jobs, start, child, limits, timeout, cap, budget) -> list\n"
"\n"
"Run jobs[start], jobs[start + 1], ... each in a freshly forked child, one at a time,\n"
"until all have run or ``budget`` seconds have passed (at least one job runs).\n"
"\n"
"In the child every descriptor but a new pipe's write end is closed, each\n"
"``(resource, soft, hard)`` of ``limits`` is set, and ``child(job, fd)`` is called;\n"
"whatever it writes to ``fd`` is the job's result. The child exits 0 when ``child``\n"
"returns, 70 when it raises, 71 when a limit cannot be set. The parent kills a\n"
"child at ``timeout`` wall-clock seconds or once it has written more than ``cap``\n"
"bytes, and reaps every child before returning.\n"
"\n"
"Returns one item per job run, in order: the bytes the child wrote (it exited 0 and\n"
"wrote something), or a failure ``(kind, detail)`` with kind one of 'timeout',\n"
"'output_limit', 'signal' (detail: the signal number), 'exit' (detail: the exit\n"
"code; 0 if the child wrote nothing) or 'fork' (detail: errno).\n"
"\n"
"Only for a single-threaded process: the child skips CPython's after-fork handlers.");

static PyObject *
run_jobs(PyObject *module, PyObject *args)
{
    PyObject *jobs, *child, *limits;
    Py_ssize_t start, cap;
    double timeout, budget;
    if (!PyArg_ParseTuple(args, "O!nOO!dnd:run_jobs", &PyList_Type, &jobs, &start, &child,
                          &PyTuple_Type, &limits, &timeout, &cap, &budget))
        return NULL;
    if (!PyCallable_Check(child)) {
        PyErr_SetString(PyExc_TypeError, "child must be callable");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(jobs);
    if (start < 0 || start > count) {
        PyErr_SetString(PyExc_ValueError, "start is outside the job list");
        return NULL;
    }
    if (!(timeout > 0) || !isfinite(timeout) || cap < 0 || !(budget >= 0)) {
        PyErr_SetString(PyExc_ValueError, "timeout must be finite and > 0, cap and budget >= 0");
        return NULL;
    }
    Py_ssize_t nlimits = PyTuple_GET_SIZE(limits);
    if (nlimits > MAX_LIMITS) {
        PyErr_SetString(PyExc_ValueError, "too many limits");
        return NULL;
    }
    int resources[MAX_LIMITS];
    struct rlimit values[MAX_LIMITS];
    for (Py_ssize_t i = 0; i < nlimits; i++) {
        int resource;
        unsigned long long soft, hard;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(limits, i), "iKK:limit", &resource, &soft, &hard))
            return NULL;
        resources[i] = resource;
        values[i].rlim_cur = (rlim_t)soft;
        values[i].rlim_max = (rlim_t)hard;
    }

    PyObject *results = PyList_New(0);
    if (results == NULL)
        return NULL;
    size_t size_cap = (size_t)cap + CHUNK;
    size_t capacity = CHUNK;
    char *buffer = malloc(capacity);
    if (buffer == NULL) {
        Py_DECREF(results);
        return PyErr_NoMemory();
    }
    double began = monotonic();
    for (Py_ssize_t index = start; index < count; index++) {
        if (index > start && monotonic() - began >= budget)
            break;
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            goto error;
        }
        pid_t pid = fork();
        if (pid == 0)
            child_main(fds[1], (int)nlimits, resources, values, child,
                       PyList_GET_ITEM(jobs, index));
        int fork_errno = errno;
        close(fds[1]);
        PyObject *item;
        if (pid < 0) {
            close(fds[0]);
            item = failure("fork", fork_errno);
        }
        else {
            double deadline = monotonic() + timeout;
            size_t size = 0;
            const char *killed = NULL;
            for (;;) {
                double remaining = deadline - monotonic();
                if (remaining <= 0) {
                    killed = "timeout";
                    break;
                }
                struct pollfd ready = {fds[0], POLLIN, 0};
                int polled = poll(&ready, 1, (int)ceil(remaining * 1000.0));
                if (polled <= 0)
                    continue; /* timed out (re-checked above) or EINTR */
                if (capacity - size < CHUNK / 2 && capacity < size_cap) {
                    size_t grown = capacity * 2 < size_cap ? capacity * 2 : size_cap;
                    char *bigger = realloc(buffer, grown);
                    if (bigger == NULL) {
                        killed = "output_limit";
                        break;
                    }
                    buffer = bigger;
                    capacity = grown;
                }
                ssize_t got = read(fds[0], buffer + size, capacity - size);
                if (got < 0 && errno == EINTR)
                    continue;
                if (got <= 0)
                    break; /* end of file: the child is gone or going */
                size += (size_t)got;
                if (size > (size_t)cap) {
                    killed = "output_limit";
                    break;
                }
            }
            if (killed != NULL)
                kill(pid, SIGKILL); /* not reaped yet: no PID reuse */
            int status = 0;
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            close(fds[0]);
            if (killed != NULL)
                item = failure(killed, 0);
            else if (WIFSIGNALED(status))
                item = failure("signal", WTERMSIG(status));
            else if (WEXITSTATUS(status) != 0 || size == 0)
                item = failure("exit", WEXITSTATUS(status));
            else
                item = PyBytes_FromStringAndSize(buffer, (Py_ssize_t)size);
        }
        if (item == NULL || PyList_Append(results, item) != 0) {
            Py_XDECREF(item);
            goto error;
        }
        Py_DECREF(item);
    }
    free(buffer);
    return results;

error:
    free(buffer);
    Py_DECREF(results);
    return NULL;
}

/* SipHash-2-4 (Aumasson and Bernstein), the reference algorithm. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                       \
    do {                                                                               \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                      \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                         \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                         \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                      \
    } while (0)

static uint64_t
load64(const unsigned char *p)
{
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--)
        value = (value << 8) | p[i];
    return value;
}

static uint64_t
siphash24(const unsigned char *key, const unsigned char *data, size_t length)
{
    uint64_t k0 = load64(key), k1 = load64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    size_t whole = length - length % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load64(data + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)length << 56;
    for (size_t i = 0; i < length % 8; i++)
        last |= (uint64_t)data[whole + i] << (8 * i);
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

PyDoc_STRVAR(siphash_doc,
"siphash(key, data) -> bytes\n"
"\n"
"The SipHash-2-4 tag (8 bytes, little-endian) of ``data`` under the 16-byte ``key``:\n"
"a keyed hash for short messages, so that workers can tell a prepared job one of\n"
"them sealed from anything else.");

static PyObject *
siphash(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer key, data;
    if (!PyArg_ParseTuple(args, "y*y*:siphash", &key, &data))
        return NULL;
    PyObject *result = NULL;
    if (key.len != 16) {
        PyErr_SetString(PyExc_ValueError, "key must be 16 bytes");
    }
    else {
        uint64_t tag = siphash24(key.buf, data.buf, (size_t)data.len);
        unsigned char out[8];
        for (int i = 0; i < 8; i++)
            out[i] = (unsigned char)(tag >> (8 * i));
        result = PyBytes_FromStringAndSize((const char *)out, 8);
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"siphash", siphash, METH_VARARGS, siphash_doc},
    {"run_jobs", run_jobs, METH_VARARGS, run_jobs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_forkjobs",
    "The sandbox worker's fork-run-collect loop (see worker.py); Linux only.",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__forkjobs(void)
{
    return PyModule_Create(&module);
}
