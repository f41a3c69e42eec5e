/*
 * shoal.security._recordcore: the record layer's hot path, compiled.
 *
 * One type, Direction: one direction of a SecureChannel (its key, iv, sequence number and
 * byte count; see shoal/security/channel.py for the frame, byte by byte, and the key
 * schedule).  channel.py subclasses it (the key schedule's HKDF and the move to the next
 * key stay in Python, in turn()) where the extension is built and SHOAL_PURE_PYTHON is not
 * set; otherwise its pure twin is used, and the tests run both.  The AEAD is OpenSSL's
 * (EVP, AES-256-GCM or ChaCha20-Poly1305), the library that `cryptography` wraps too: the
 * frames are the same bytes either way, and each side opens what the other sealed.
 *
 * What C buys: a small message between hosts is sealed and sent (seal_send), or received
 * and opened (recv_open), in one call with one system call, instead of a dozen Python
 * calls around cryptography's.  Anything but the plain case (a read holding more or less
 * than one whole frame, a frame that fails to open, the first frame of a session) is left
 * to the Python record layer untouched: recv_open then says how many bytes it read.
 *
 * The bulk AEAD (set_bulk): this module links the system's OpenSSL, which may be older and
 * slower than the one `cryptography` carries (Debian 12's 3.0 seals AES-256-GCM at 5.8 GB/s
 * on a 32 KiB frame where cryptography's 4.1 takes 12 here).  Where channel.py finds
 * cryptography's newer, it hands this direction cryptography's AEAD object under the same
 * key, and frames of bulk_min bytes of plaintext or more are sealed and opened through its
 * encrypt_into/decrypt_into (a method call costs about a microsecond; a frame's prefix and
 * body are joined first, or its plaintext split after, with memcpy); smaller ones by EVP.
 * The bytes are the same either way.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define HEADER_SIZE 14 /* length u32, type u8, flags u8, sequence u64: big-endian */
#define TAG_SIZE 16
#define OVERHEAD (HEADER_SIZE + TAG_SIZE)
#define MIN_LENGTH (HEADER_SIZE - 4 + TAG_SIZE) /* the length field of an empty frame */
#define FRAME_DATA 0x10
#define SUITE_AES_256_GCM 0x01
#define SUITE_CHACHA20_POLY1305 0x02
#define SEAL_LIMIT (128 * 1024) /* seal_send's plaintext at most: a message up to it is one frame */
#define SEAL_ON_STACK (16 * 1024) /* seal_send seals up to this much on the stack */

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

typedef struct {
    PyObject_HEAD
    EVP_CIPHER_CTX *enc;  /* keyed by set_key; each frame sets only the nonce */
    EVP_CIPHER_CTX *dec;
    unsigned char iv[12];
    unsigned long long seq;
    int used_up;          /* the sequence number reached 2**64 (seq reads so) */
    unsigned long long epoch_bytes;
    unsigned long long rekey_bytes;
    unsigned char *scratch;  /* seal_send's frame when it is over SEAL_ON_STACK (made once) */
    PyObject *bulk;          /* cryptography's AEAD under the same key, or NULL (set_bulk) */
    Py_ssize_t bulk_min;     /* frames of this much plaintext or more go through it */
    unsigned char *plain;    /* the bulk path's joined or opened plaintext (grown as asked) */
    Py_ssize_t plain_size;
    unsigned char *many;     /* seal_send_many's held head and one frame (grown as asked) */
    Py_ssize_t many_size;
} Direction;

static PyObject *str_turn, *str_encrypt_into, *str_decrypt_into;
static PyObject *invalid_tag; /* cryptography.exceptions.InvalidTag (set_bulk imports it) */
static PyObject *seq_limit; /* 2**64 */

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static void put_be64(unsigned char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (unsigned char)v; v >>= 8; }
}

static uint32_t get_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get_be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

/* iv XOR (4 zero bytes || sequence number, big-endian) */
static void make_nonce(const Direction *self, uint64_t seq, unsigned char nonce[12]) {
    unsigned char counter[8];
    put_be64(counter, seq);
    memcpy(nonce, self->iv, 4);
    for (int i = 0; i < 8; i++) nonce[4 + i] = self->iv[4 + i] ^ counter[i];
}

static PyObject *openssl_error(const char *what) {
    PyErr_Format(PyExc_RuntimeError, "OpenSSL failed to %s", what);
    return NULL;
}

/* Count a frame sealed or opened, as channel._Schedule.advance() does; Python's turn() moves to
 * the next key (or refuses a used-up sequence).  -1 with an exception set on failure. */
static int advance(Direction *self, unsigned long long counted) {
    if (self->seq == UINT64_MAX) self->used_up = 1;
    else self->seq += 1;
    self->epoch_bytes += counted;
    if (self->used_up || self->epoch_bytes >= self->rekey_bytes) {
        PyObject *r = PyObject_CallMethodNoArgs((PyObject *)self, str_turn);
        if (r == NULL) return -1;
        Py_DECREF(r);
    }
    return 0;
}

/* -- the type ------------------------------------------------------------------------- */

static int Direction_init(Direction *self, PyObject *args, PyObject *kwds) {
    return 0;  /* the Python subclass sets everything (set_key, rekey_bytes) */
}

static void Direction_dealloc(Direction *self) {
    if (self->enc) EVP_CIPHER_CTX_free(self->enc);
    if (self->dec) EVP_CIPHER_CTX_free(self->dec);
    PyMem_Free(self->scratch);
    PyMem_Free(self->plain);
    PyMem_Free(self->many);
    Py_CLEAR(self->bulk);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Direction_set_key(Direction *self, PyObject *args) {
    int suite;
    Py_buffer key, iv;
    if (!PyArg_ParseTuple(args, "iy*y*:set_key", &suite, &key, &iv)) return NULL;
    PyObject *result = NULL;
    const EVP_CIPHER *cipher = suite == SUITE_AES_256_GCM ? EVP_aes_256_gcm()
        : suite == SUITE_CHACHA20_POLY1305 ? EVP_chacha20_poly1305() : NULL;
    if (cipher == NULL) {
        PyErr_Format(PyExc_ValueError, "unknown AEAD suite %d", suite);
        goto done;
    }
    if (key.len != 32 || iv.len != 12) {
        PyErr_SetString(PyExc_ValueError, "a key has 32 bytes and an iv 12");
        goto done;
    }
    if (self->enc == NULL && (self->enc = EVP_CIPHER_CTX_new()) == NULL) {
        openssl_error("allocate a cipher context"); goto done;
    }
    if (self->dec == NULL && (self->dec = EVP_CIPHER_CTX_new()) == NULL) {
        openssl_error("allocate a cipher context"); goto done;
    }
    if (EVP_EncryptInit_ex(self->enc, cipher, NULL, NULL, NULL) != 1
            || EVP_CIPHER_CTX_ctrl(self->enc, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1
            || EVP_EncryptInit_ex(self->enc, NULL, NULL, key.buf, NULL) != 1
            || EVP_DecryptInit_ex(self->dec, cipher, NULL, NULL, NULL) != 1
            || EVP_CIPHER_CTX_ctrl(self->dec, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1
            || EVP_DecryptInit_ex(self->dec, NULL, NULL, key.buf, NULL) != 1) {
        openssl_error("set up the AEAD"); goto done;
    }
    memcpy(self->iv, iv.buf, 12);
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&iv);
    return result;
}

/* set_bulk(aead, min_bytes): see the top of this file; aead None: EVP for every frame. */
static PyObject *Direction_set_bulk(Direction *self, PyObject *args) {
    PyObject *aead;
    Py_ssize_t min_bytes;
    if (!PyArg_ParseTuple(args, "On:set_bulk", &aead, &min_bytes)) return NULL;
    if (aead != Py_None && invalid_tag == NULL) {
        PyObject *exceptions = PyImport_ImportModule("cryptography.exceptions");
        if (exceptions == NULL) return NULL;
        invalid_tag = PyObject_GetAttrString(exceptions, "InvalidTag");
        Py_DECREF(exceptions);
        if (invalid_tag == NULL) return NULL;
    }
    PyObject *previous = self->bulk;
    self->bulk = aead == Py_None ? NULL : aead;
    Py_XINCREF(self->bulk);
    Py_XDECREF(previous);
    self->bulk_min = min_bytes < 1 ? 1 : min_bytes;
    Py_RETURN_NONE;
}

/* The bulk path's plaintext buffer, at least size bytes; NULL (MemoryError) on failure. */
static unsigned char *plain_buffer(Direction *self, Py_ssize_t size) {
    if (size > self->plain_size) {
        unsigned char *grown = PyMem_Realloc(self->plain, (size_t)size);
        if (grown == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        self->plain = grown;
        self->plain_size = size;
    }
    return self->plain;
}

/* aead.<method>(nonce, data[0:len], the frame's header as associated data, out[0:out_len])
 * through the bulk AEAD: 0; 1 when decrypt_into found the frame forged (InvalidTag,
 * cleared); -1 with any other exception set. */
static int bulk_call(Direction *self, PyObject *method, const unsigned char nonce[12],
                     const unsigned char *data, Py_ssize_t len, const unsigned char *header,
                     unsigned char *out, Py_ssize_t out_len) {
    PyObject *n = PyBytes_FromStringAndSize((const char *)nonce, 12);
    PyObject *d = PyMemoryView_FromMemory((char *)data, len, PyBUF_READ);
    PyObject *a = PyMemoryView_FromMemory((char *)header, HEADER_SIZE, PyBUF_READ);
    PyObject *o = PyMemoryView_FromMemory((char *)out, out_len, PyBUF_WRITE);
    PyObject *r = NULL;
    if (n != NULL && d != NULL && a != NULL && o != NULL)
        r = PyObject_CallMethodObjArgs(self->bulk, method, n, d, a, o, NULL);
    Py_XDECREF(n);
    Py_XDECREF(d);
    Py_XDECREF(a);
    Py_XDECREF(o);
    if (r != NULL) {
        Py_DECREF(r);
        return 0;
    }
    if (method == str_decrypt_into && PyErr_ExceptionMatches(invalid_tag)) {
        PyErr_Clear();
        return 1;
    }
    return -1;
}

static int use_bulk(const Direction *self, Py_ssize_t plen) {
    return self->bulk != NULL && plen >= self->bulk_min;
}

/* Open the whole frame f (the next in sequence: its plaintext is plen bytes) into out,
 * through the bulk AEAD or EVP; nothing counted.  0; 1 when it does not authenticate
 * (Python's record layer opens it again and says what is wrong); -1 with an exception
 * set (the bulk AEAD raised something else). */
static int open_frame(Direction *self, const unsigned char *f, Py_ssize_t plen,
                      unsigned char *out) {
    unsigned char nonce[12];
    make_nonce(self, self->seq, nonce);
    if (use_bulk(self, plen))
        return bulk_call(self, str_decrypt_into, nonce, f + HEADER_SIZE, plen + TAG_SIZE, f,
                         out, plen);
    unsigned char tag[TAG_SIZE], last[16];
    int outl;
    memcpy(tag, f + HEADER_SIZE + plen, TAG_SIZE);
    if (EVP_DecryptInit_ex(self->dec, NULL, NULL, NULL, nonce) != 1
            || EVP_DecryptUpdate(self->dec, NULL, &outl, f, HEADER_SIZE) != 1
            || (plen && EVP_DecryptUpdate(self->dec, out, &outl, f + HEADER_SIZE,
                                          (int)plen) != 1)
            || EVP_CIPHER_CTX_ctrl(self->dec, EVP_CTRL_AEAD_SET_TAG, TAG_SIZE, tag) != 1
            || EVP_DecryptFinal_ex(self->dec, last, &outl) != 1)
        return 1;
    return 0;
}

/* Seal the DATA frame of prefix || body into out (OVERHEAD + plen bytes); 0 or -1. */
static int seal_into(Direction *self, const unsigned char *prefix, Py_ssize_t prefix_len,
                     const unsigned char *body, Py_ssize_t body_len, unsigned char *out) {
    Py_ssize_t plen = prefix_len + body_len;
    unsigned char nonce[12];
    int n;
    if (self->enc == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "set_key() was not called");
        return -1;
    }
    if (self->used_up) {  /* turn() refuses it, as it does in Python */
        PyObject *r = PyObject_CallMethodNoArgs((PyObject *)self, str_turn);
        if (r != NULL) {
            Py_DECREF(r);
            PyErr_SetString(PyExc_OverflowError, "the sequence numbers are used up");
        }
        return -1;
    }
    put_be32(out, (uint32_t)(MIN_LENGTH + plen));
    out[4] = FRAME_DATA;
    out[5] = 0;
    put_be64(out + 6, self->seq);
    make_nonce(self, self->seq, nonce);
    unsigned char *c = out + HEADER_SIZE;
    if (use_bulk(self, plen)) {
        const unsigned char *plain = body;
        if (prefix_len) {  /* one plaintext for encrypt_into: prefix || body */
            unsigned char *joined = plain_buffer(self, plen);
            if (joined == NULL) return -1;
            memcpy(joined, prefix, (size_t)prefix_len);
            if (body_len) memcpy(joined + prefix_len, body, (size_t)body_len);
            plain = joined;
        }
        if (bulk_call(self, str_encrypt_into, nonce, plain, plen, out, c, plen + TAG_SIZE) != 0)
            return -1;
        return advance(self, (unsigned long long)plen + 32);
    }
    if (EVP_EncryptInit_ex(self->enc, NULL, NULL, NULL, nonce) != 1
            || EVP_EncryptUpdate(self->enc, NULL, &n, out, HEADER_SIZE) != 1
            || (prefix_len && EVP_EncryptUpdate(self->enc, c, &n, prefix, (int)prefix_len) != 1)
            || (body_len && EVP_EncryptUpdate(self->enc, c + prefix_len, &n, body,
                                              (int)body_len) != 1)
            || EVP_EncryptFinal_ex(self->enc, c + plen, &n) != 1
            || EVP_CIPHER_CTX_ctrl(self->enc, EVP_CTRL_AEAD_GET_TAG, TAG_SIZE, c + plen) != 1) {
        openssl_error("seal a frame");
        return -1;
    }
    return advance(self, (unsigned long long)plen + 32);
}

static PyObject *Direction_seal(Direction *self, PyObject *args) {
    Py_buffer prefix, body;
    if (!PyArg_ParseTuple(args, "y*y*:seal", &prefix, &body)) return NULL;
    PyObject *frame = PyBytes_FromStringAndSize(NULL, OVERHEAD + prefix.len + body.len);
    if (frame != NULL && seal_into(self, prefix.buf, prefix.len, body.buf, body.len,
                                   (unsigned char *)PyBytes_AS_STRING(frame)) < 0)
        Py_CLEAR(frame);
    PyBuffer_Release(&prefix);
    PyBuffer_Release(&body);
    return frame;
}

static PyObject *Direction_seal_send(Direction *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "seal_send(fd, prefix, body)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) return NULL;
    Py_buffer prefix, body;
    if (PyObject_GetBuffer(args[1], &prefix, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(args[2], &body, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&prefix);
        return NULL;
    }
    PyObject *result = NULL;
    unsigned char small[OVERHEAD + SEAL_ON_STACK];
    unsigned char *frame = small;
    Py_ssize_t size = OVERHEAD + prefix.len + body.len;
    if (prefix.len + body.len > SEAL_LIMIT) {
        PyErr_Format(PyExc_ValueError, "seal_send() takes at most %d bytes", SEAL_LIMIT);
        goto done;
    }
    if (prefix.len + body.len > SEAL_ON_STACK) {  /* (the GIL is held until it is sent) */
        if (self->scratch == NULL) {
            self->scratch = PyMem_Malloc(OVERHEAD + SEAL_LIMIT);
            if (self->scratch == NULL) {
                PyErr_NoMemory();
                goto done;
            }
        }
        frame = self->scratch;
    }
    if (seal_into(self, prefix.buf, prefix.len, body.buf, body.len, frame) < 0) goto done;
    ssize_t sent = send((int)fd, frame, (size_t)size, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            goto done;
        }
        sent = 0;
    }
    if (sent == size) {
        result = Py_None;
        Py_INCREF(result);
    } else {  /* what the socket did not take, for the link's queue */
        result = PyBytes_FromStringAndSize((const char *)frame + sent, size - sent);
    }
done:
    PyBuffer_Release(&prefix);
    PyBuffer_Release(&body);
    return result;
}

/* seal_send_many(fd, head, body, step[, group]) -> (taken, rest)
 * A large message's body, sealed and sent in one call: body[0:step], body[step:2*step], ...
 * each its own DATA frame (the bytes SecureChannel.seal makes), sent without waiting as
 * soon as group bytes of plaintext (a whole number of frames, at least one; default one
 * frame) are sealed, so that the peer opens those while this end seals the next; head
 * (ciphertext sealed already, at most HEAD_MOST bytes: the message's header frame that
 * write_more held; b"" for none) leaves with the first frames, in one send.  Stops after
 * the first send the socket does not take whole: taken is the plaintext sealed so far (all
 * of body when every send went), rest the ciphertext the socket did not take (None when
 * it took all), for the link's queue, which goes first. */
#define HEAD_MOST 1024
#define GROUP_MOST (4 * 1024 * 1024)
static PyObject *Direction_seal_send_many(Direction *self, PyObject *const *args,
                                          Py_ssize_t nargs) {
    if (nargs != 4 && nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "seal_send_many(fd, head, body, step[, group])");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t step = PyLong_AsSsize_t(args[3]);
    if (step == -1 && PyErr_Occurred()) return NULL;
    if (step < 1 || step > SEAL_LIMIT) {
        PyErr_Format(PyExc_ValueError, "seal_send_many() seals frames of 1 to %d bytes",
                     SEAL_LIMIT);
        return NULL;
    }
    Py_ssize_t group = step;
    if (nargs == 5) {
        group = PyLong_AsSsize_t(args[4]);
        if (group == -1 && PyErr_Occurred()) return NULL;
        if (group < step || group > GROUP_MOST) {
            PyErr_Format(PyExc_ValueError, "seal_send_many() sends from one frame to %d "
                         "bytes of plaintext at once", GROUP_MOST);
            return NULL;
        }
    }
    Py_buffer head, body;
    if (PyObject_GetBuffer(args[1], &head, PyBUF_SIMPLE) < 0) return NULL;
    if (head.len > HEAD_MOST) {
        PyBuffer_Release(&head);
        PyErr_Format(PyExc_ValueError, "seal_send_many() sends at most %d bytes of head",
                     HEAD_MOST);
        return NULL;
    }
    Py_ssize_t frames = group / step;  /* sealed before each send */
    Py_ssize_t need = HEAD_MOST + frames * (OVERHEAD + step);
    if (need > self->many_size) {
        unsigned char *grown = PyMem_Realloc(self->many, (size_t)need);
        if (grown == NULL) {
            PyBuffer_Release(&head);
            return PyErr_NoMemory();
        }
        self->many = grown;
        self->many_size = need;
    }
    if (PyObject_GetBuffer(args[2], &body, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&head);
        return NULL;
    }
    PyObject *result = NULL, *rest = NULL;
    const unsigned char *src = body.buf;
    Py_ssize_t taken = 0, size = head.len;
    memcpy(self->many, head.buf, (size_t)head.len);
    while (taken < body.len || size) {
        for (Py_ssize_t k = 0; k < frames && taken < body.len; k++) {
            Py_ssize_t n = body.len - taken < step ? body.len - taken : step;
            if (seal_into(self, NULL, 0, src + taken, n, self->many + size) < 0)
                goto done;  /* (a frame sealed, not sent: the link fails either way) */
            taken += n;
            size += OVERHEAD + n;
        }
        ssize_t sent = send((int)fd, self->many, (size_t)size, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                PyErr_SetFromErrno(PyExc_OSError);
                goto done;
            }
            sent = 0;
        }
        if (sent < size) {
            rest = PyBytes_FromStringAndSize((const char *)self->many + sent, size - sent);
            if (rest == NULL) goto done;
            break;
        }
        size = 0;
    }
    if (rest == NULL) {
        rest = Py_None;
        Py_INCREF(rest);
    }
    result = Py_BuildValue("(nN)", taken, rest);
done:
    PyBuffer_Release(&body);
    PyBuffer_Release(&head);
    return result;
}

/* open_into(data, into, limit) -> (used, written)
 * The whole plain DATA frames at the start of data (each the next in sequence, of at most
 * limit bytes by its length field), opened one after the other straight into into: the
 * first one's plaintext at into[0:], the next right after it.  Stops at the first frame
 * that is cut, is no plain DATA frame, is out of sequence, does not fit what is left of
 * into (nothing is opened once into is full, not even an empty frame), or fails to
 * authenticate (that one's part of into may hold what its failed decryption wrote; it is
 * not counted, and Python's record layer opens it again and says what is wrong).  used:
 * the bytes of data the opened frames took; written: their plaintext's. */
static PyObject *Direction_open_into(Direction *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "open_into(data, into, limit)");
        return NULL;
    }
    unsigned long long limit = PyLong_AsUnsignedLongLong(args[2]);
    if (limit == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    Py_buffer data, into;
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(args[1], &into, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    PyObject *result = NULL;
    const unsigned char *d = data.buf;
    unsigned char *out = into.buf;
    Py_ssize_t used = 0, written = 0;
    /* (once into is full, what follows is the next message's) */
    while (self->dec != NULL && self->seq != 0 && !self->used_up && written < into.len
           && data.len - used >= HEADER_SIZE + TAG_SIZE) {
        const unsigned char *f = d + used;
        uint32_t length = get_be32(f);
        Py_ssize_t n = (Py_ssize_t)length + 4, plen = n - OVERHEAD;
        if (length < MIN_LENGTH || length > limit || n > data.len - used
                || f[4] != FRAME_DATA || f[5] != 0 || get_be64(f + 6) != self->seq
                || plen > into.len - written)
            break;
        int failed = open_frame(self, f, plen, out + written);
        if (failed < 0) goto done;
        if (failed) break;
        if (advance(self, (unsigned long long)length + 6) < 0) goto done;
        used += n;
        written += plen;
    }
    result = Py_BuildValue("(nn)", used, written);
done:
    PyBuffer_Release(&into);
    PyBuffer_Release(&data);
    return result;
}

/* Open the one whole frame in data[0:n] into a new bytes object; NULL without an
 * exception when it is not a plain DATA frame that is next and authenticates. */
static PyObject *open_one(Direction *self, const unsigned char *data, Py_ssize_t n,
                          unsigned long long limit) {
    if (n < HEADER_SIZE + TAG_SIZE || self->dec == NULL || self->seq == 0 || self->used_up)
        return NULL;  /* (the first frame may be a handshake ALERT: Python's to read) */
    uint32_t length = get_be32(data);
    if ((Py_ssize_t)length + 4 != n || length < MIN_LENGTH || length > limit
            || data[4] != FRAME_DATA || data[5] != 0 || get_be64(data + 6) != self->seq)
        return NULL;
    Py_ssize_t plen = n - OVERHEAD;
    PyObject *plain = PyBytes_FromStringAndSize(NULL, plen);
    if (plain == NULL) return NULL;
    /* (one that does not open: Python opens it again and says what is wrong) */
    if (open_frame(self, data, plen, (unsigned char *)PyBytes_AS_STRING(plain)) != 0
            || advance(self, (unsigned long long)length + 6) < 0) {
        Py_DECREF(plain);
        return NULL;
    }
    return plain;
}

static PyObject *Direction_open(Direction *self, PyObject *args) {
    Py_buffer frame;
    unsigned long long limit;
    if (!PyArg_ParseTuple(args, "y*K:open", &frame, &limit)) return NULL;
    PyObject *plain = open_one(self, frame.buf, frame.len, limit);
    PyBuffer_Release(&frame);
    if (plain == NULL && !PyErr_Occurred()) Py_RETURN_NONE;
    return plain;
}

static PyObject *Direction_recv_open(Direction *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "recv_open(fd, buffer, limit)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) return NULL;
    unsigned long long limit = PyLong_AsUnsignedLongLong(args[2]);
    if (limit == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    Py_buffer buffer;
    if (PyObject_GetBuffer(args[1], &buffer, PyBUF_WRITABLE) < 0) return NULL;
    PyObject *result;
    ssize_t n = recv((int)fd, buffer.buf, (size_t)buffer.len, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            result = PyLong_FromLong(-1);
        else
            result = PyErr_SetFromErrno(PyExc_OSError);
    } else {
        result = n ? open_one(self, buffer.buf, n, limit) : NULL;
        if (result == NULL && !PyErr_Occurred()) result = PyLong_FromSsize_t(n);
    }
    PyBuffer_Release(&buffer);
    return result;
}

#define TAKE_PREFIX_MOST 64

/* CLOCK_MONOTONIC in nanoseconds: the spins' deadlines. */
static long long mono_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

/* How long recv_take waits for more of a cut frame (set_rest_spin). */
static long long rest_spin_ns = 200000;

/* The read got the start of one frame, [0:got] of [0:whole]: its rest was sent with it
 * (a frame leaves in one send), so read it as it comes, the GIL released, while no more
 * than rest_spin_ns pass without a byte.  Returns the bytes now in buf: whole, or fewer
 * (the caller hands what came to Python, which keeps a cut frame and reads on; a read
 * that fails, or the end, is Python's next read's to find again). */
static Py_ssize_t read_rest(long fd, unsigned char *buf, Py_ssize_t got, Py_ssize_t whole) {
    long long wait_ns = rest_spin_ns;  /* (read with the GIL held) */
    Py_BEGIN_ALLOW_THREADS
    long long deadline = mono_ns() + wait_ns;
    for (unsigned long round = 1; got < whole; round++) {
        ssize_t n = recv((int)fd, buf + got, (size_t)(whole - got), MSG_DONTWAIT);
        if (n > 0) {
            got += n;
            deadline = mono_ns() + wait_ns;  /* (it is coming: wait as long again) */
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            break;
        if ((round & 3) == 0 && mono_ns() >= deadline) break;
    }
    Py_END_ALLOW_THREADS
    return got;
}

/* Whether a decrypted prefix is the awaited one: prefix & mask == want, byte by byte, and
 * (length_at >= 0) the u64 little-endian there says body_len. */
static int prefix_matches(const unsigned char *prefix, const unsigned char *want,
                          const unsigned char *mask, Py_ssize_t plen_prefix, long length_at,
                          Py_ssize_t body_len) {
    for (Py_ssize_t i = 0; i < plen_prefix; i++) {
        if ((prefix[i] & mask[i]) != want[i]) return 0;
    }
    if (length_at >= 0) {
        uint64_t said = 0;
        for (int i = 7; i >= 0; i--) said = (said << 8) | prefix[length_at + i];
        if (said != (uint64_t)body_len) return 0;
    }
    return 1;
}

/* recv_take(fd, buffer, limit, want, mask, length_at, head, into) -> bool, bytes or int
 * recv_open() for a receive that knows what it waits for: when the read holds exactly one
 * frame that open() takes, its plaintext is a prefix of len(want) bytes and a body, and
 * the prefix matches (prefix & mask == want, byte by byte) and holds the body's length
 * (u64, little-endian) at length_at (-1: no such field), and the body fits into:
 * the prefix goes into head (writable, len(want) bytes), the body into into, straight
 * from the decryption, and True is returned.  Otherwise what recv_open() returns (the
 * whole plaintext as bytes, or the bytes read, -1 when none waited); into is then left
 * as it was, except when the frame fails to authenticate after its body was opened
 * there (the bytes read are returned, unopened: the caller opens them again and fails).
 * A read that holds only the start of the next DATA frame, one that fits buffer and
 * whose body would fit into, reads its rest first (read_rest): a message larger than a
 * read of the socket finds at once is still taken in this one call. */
static PyObject *Direction_recv_take(Direction *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "recv_take(fd, buffer, limit, want, mask, length_at, head, into)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) return NULL;
    unsigned long long limit = PyLong_AsUnsignedLongLong(args[2]);
    if (limit == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    long length_at = PyLong_AsLong(args[5]);
    if (length_at == -1 && PyErr_Occurred()) return NULL;
    if (!PyBytes_Check(args[3]) || !PyBytes_Check(args[4])
            || PyBytes_GET_SIZE(args[3]) != PyBytes_GET_SIZE(args[4])
            || PyBytes_GET_SIZE(args[3]) > TAKE_PREFIX_MOST
            || (length_at >= 0 && length_at + 8 > PyBytes_GET_SIZE(args[3]))) {
        PyErr_SetString(PyExc_ValueError, "recv_take: want and mask are bytes of one length "
                        "(at most 64), and length_at + 8 within it");
        return NULL;
    }
    Py_ssize_t plen_prefix = PyBytes_GET_SIZE(args[3]);
    const unsigned char *want = (const unsigned char *)PyBytes_AS_STRING(args[3]);
    const unsigned char *mask = (const unsigned char *)PyBytes_AS_STRING(args[4]);
    Py_buffer buffer, head, into;
    if (PyObject_GetBuffer(args[6], &head, PyBUF_WRITABLE) < 0) return NULL;
    if (PyObject_GetBuffer(args[7], &into, PyBUF_WRITABLE) < 0) {  /* before any read */
        PyBuffer_Release(&head);
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &buffer, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&into);
        PyBuffer_Release(&head);
        return NULL;
    }
    PyObject *result = NULL;
    if (head.len != plen_prefix) {
        PyErr_SetString(PyExc_ValueError, "recv_take: head must be len(want) bytes");
        goto done;
    }
    ssize_t n = recv((int)fd, buffer.buf, (size_t)buffer.len, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            result = PyLong_FromLong(-1);
        else
            PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    const unsigned char *data = buffer.buf;
    uint32_t length = n >= 4 ? get_be32(data) : 0;
    if (n >= HEADER_SIZE && (Py_ssize_t)length + 4 > n && (Py_ssize_t)length + 4 <= buffer.len
            && length <= limit && data[4] == FRAME_DATA && self->seq != 0
            && get_be64(data + 6) == self->seq && (Py_ssize_t)length + 4 - OVERHEAD
                                                       - plen_prefix <= into.len)
        n = read_rest(fd, buffer.buf, n, (Py_ssize_t)length + 4);
    Py_ssize_t plen = n - OVERHEAD;
    if (n < HEADER_SIZE + TAG_SIZE || self->dec == NULL || self->seq == 0 || self->used_up
            || (Py_ssize_t)length + 4 != n || length < MIN_LENGTH || length > limit
            || data[4] != FRAME_DATA || data[5] != 0 || get_be64(data + 6) != self->seq
            || plen < plen_prefix || plen - plen_prefix > into.len) {
        goto fallback;  /* not the plain case: as recv_open */
    }
    unsigned char nonce[12], prefix[TAKE_PREFIX_MOST], tag[TAG_SIZE];
    int outl;
    if (use_bulk(self, plen)) {  /* the whole plaintext, then prefix and body apart */
        unsigned char *p = plain_buffer(self, plen);
        if (p == NULL) goto done;
        int failed = open_frame(self, data, plen, p);
        if (failed < 0) goto done;
        if (failed) {  /* (nothing counted: Python opens the bytes again and says why) */
            result = PyLong_FromSsize_t(n);
            goto done;
        }
        if (advance(self, (unsigned long long)length + 6) < 0) goto done;
        if (!prefix_matches(p, want, mask, plen_prefix, length_at, plen - plen_prefix)) {
            /* opened, not taken: the plaintext, as open() gives it */
            result = PyBytes_FromStringAndSize((const char *)p, plen);
            goto done;
        }
        memcpy(head.buf, p, (size_t)plen_prefix);
        if (plen > plen_prefix) memcpy(into.buf, p + plen_prefix, (size_t)(plen - plen_prefix));
        result = Py_True;
        Py_INCREF(result);
        goto done;
    }
    make_nonce(self, self->seq, nonce);
    if (EVP_DecryptInit_ex(self->dec, NULL, NULL, NULL, nonce) != 1
            || EVP_DecryptUpdate(self->dec, NULL, &outl, data, HEADER_SIZE) != 1
            || EVP_DecryptUpdate(self->dec, prefix, &outl, data + HEADER_SIZE,
                                 (int)plen_prefix) != 1
            || !prefix_matches(prefix, want, mask, plen_prefix, length_at,
                               plen - plen_prefix)) {
        goto fallback;
    }
    memcpy(tag, data + n - TAG_SIZE, TAG_SIZE);
    if ((plen > plen_prefix && EVP_DecryptUpdate(self->dec, into.buf, &outl,
                                                 data + HEADER_SIZE + plen_prefix,
                                                 (int)(plen - plen_prefix)) != 1)
            || EVP_CIPHER_CTX_ctrl(self->dec, EVP_CTRL_AEAD_SET_TAG, TAG_SIZE, tag) != 1
            || EVP_DecryptFinal_ex(self->dec, prefix + plen_prefix, &outl) != 1) {
        /* (nothing counted: Python opens the bytes again and says what is wrong) */
        result = PyLong_FromSsize_t(n);
        goto done;
    }
    if (advance(self, (unsigned long long)length + 6) < 0) goto done;  /* (as open_one) */
    memcpy(head.buf, prefix, (size_t)plen_prefix);
    result = Py_True;
    Py_INCREF(result);
    goto done;
fallback:
    result = n ? open_one(self, data, n, limit) : NULL;
    if (result == NULL && !PyErr_Occurred()) result = PyLong_FromSsize_t(n);
done:
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&into);
    PyBuffer_Release(&head);
    return result;
}

static PyObject *Direction_get_seq(Direction *self, void *closure) {
    if (self->used_up) {
        Py_INCREF(seq_limit);
        return seq_limit;
    }
    return PyLong_FromUnsignedLongLong(self->seq);
}

static int Direction_set_seq(Direction *self, PyObject *value, void *closure) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "seq cannot be deleted");
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(value);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        /* 2**64 (a used-up sequence) is the one value past the range */
        PyErr_Clear();
        int equal = PyObject_RichCompareBool(value, seq_limit, Py_EQ);
        if (equal != 1) {
            if (equal == 0) PyErr_SetString(PyExc_OverflowError, "seq is at most 2**64");
            return -1;
        }
        self->used_up = 1;
        self->seq = UINT64_MAX;
        return 0;
    }
    self->used_up = 0;
    self->seq = v;
    return 0;
}

/* spin_readable(fd, spin_ns) -> bool: whether a byte waits on the socket fd (or it is at
 * its end, or failed), asked without waiting over and over, the GIL released, until one
 * does or spin_ns pass.  Nothing is read: any thread may call it beside one that reads.
 * (No state of the direction: it is the receiving side's wait, kept beside recv_take.) */
static PyObject *Direction_spin_readable(Direction *self, PyObject *const *args,
                                         Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "spin_readable(fd, spin_ns)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    long long spin = PyLong_AsLongLong(args[1]);
    if (PyErr_Occurred()) return NULL;
    int ready = 0;
    Py_BEGIN_ALLOW_THREADS
    long long deadline = mono_ns() + spin;
    for (unsigned long round = 1;; round++) {
        char byte;
        ssize_t n = recv((int)fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            ready = 1;
            break;
        }
        if ((round & 3) == 0 && mono_ns() >= deadline) break;
    }
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(ready);
}

static PyMethodDef Direction_methods[] = {
    {"set_key", (PyCFunction)Direction_set_key, METH_VARARGS,
     "set_key(suite, key, iv): the AEAD (1 AES-256-GCM, 2 ChaCha20-Poly1305) and its iv"},
    {"set_bulk", (PyCFunction)Direction_set_bulk, METH_VARARGS,
     "set_bulk(aead, min_bytes): seal and open frames of min_bytes of plaintext or more "
     "through aead (cryptography's AEAD under this key: encrypt_into, decrypt_into); "
     "None: through EVP, every frame"},
    {"seal", (PyCFunction)Direction_seal, METH_VARARGS,
     "seal(prefix, body) -> bytes: the DATA frame of prefix + body, counted"},
    {"seal_send", (PyCFunction)(void (*)(void))Direction_seal_send, METH_FASTCALL,
     "seal_send(fd, prefix, body) -> None or bytes: seal the DATA frame of prefix + body "
     "and send it without waiting; None when all of it went, else what did not"},
    {"seal_send_many", (PyCFunction)(void (*)(void))Direction_seal_send_many, METH_FASTCALL,
     "seal_send_many(fd, head, body, step[, group]) -> (taken, rest): head, then body "
     "sealed into DATA frames of step bytes, sent group bytes of plaintext at a time "
     "(default: each frame) as they are sealed, without waiting, until the "
     "socket does not take a send whole; the plaintext sealed, and what the socket did not "
     "take of the last send (None: nothing)"},
    {"open_into", (PyCFunction)(void (*)(void))Direction_open_into, METH_FASTCALL,
     "open_into(data, into, limit) -> (used, written): open the whole plain DATA frames at "
     "the start of data one after the other straight into into, while they fit; the bytes "
     "of data they took and of into they filled"},
    {"open", (PyCFunction)Direction_open, METH_VARARGS,
     "open(frame, limit) -> bytes or None: the plaintext of one whole frame, counted, or None "
     "when it is not the next plain DATA frame that authenticates (nothing counted)"},
    {"recv_open", (PyCFunction)(void (*)(void))Direction_recv_open, METH_FASTCALL,
     "recv_open(fd, buffer, limit) -> bytes or int: one read into buffer without waiting; the "
     "plaintext when it read exactly one frame that open() takes, else the bytes read (0: "
     "the end of the stream, -1: none waited), left in buffer unopened"},
    {"spin_readable", (PyCFunction)(void (*)(void))Direction_spin_readable, METH_FASTCALL,
     "spin_readable(fd, spin_ns) -> bool: a byte waits on the socket (or it ended), looked "
     "at without reading (the receiving direction's wait), the GIL released, for up to "
     "spin_ns"},
    {"recv_take", (PyCFunction)(void (*)(void))Direction_recv_take, METH_FASTCALL,
     "recv_take(fd, buffer, limit, want, mask, length_at, head, into) -> True, bytes or "
     "int: recv_open() that, when the one frame's plaintext starts with a prefix matching "
     "want under mask, puts the prefix into head and the rest straight into into (True)"},
    {NULL}
};

static PyMemberDef Direction_members[] = {
    {"epoch_bytes", T_ULONGLONG, offsetof(Direction, epoch_bytes), 0,
     "bytes counted under this key (payload + 32 a frame)"},
    {"rekey_bytes", T_ULONGLONG, offsetof(Direction, rekey_bytes), 0,
     "the count at which the next key takes over"},
    {NULL}
};

static PyGetSetDef Direction_getset[] = {
    {"seq", (getter)Direction_get_seq, (setter)Direction_set_seq,
     "the next frame's sequence number", NULL},
    {NULL}
};

static PyTypeObject DirectionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shoal.security._recordcore.Direction",
    .tp_doc = "One direction of a secure channel: key, iv, sequence number, byte count.",
    .tp_basicsize = sizeof(Direction),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Direction_init,
    .tp_dealloc = (destructor)Direction_dealloc,
    .tp_methods = Direction_methods,
    .tp_members = Direction_members,
    .tp_getset = Direction_getset,
};

static PyObject *set_rest_spin(PyObject *module, PyObject *arg) {
    long long ns = PyLong_AsLongLong(arg);
    if (ns == -1 && PyErr_Occurred()) return NULL;
    if (ns < 0) {
        PyErr_SetString(PyExc_ValueError, "set_rest_spin: a number of nanoseconds, >= 0");
        return NULL;
    }
    long long previous = rest_spin_ns;
    rest_spin_ns = ns;
    return PyLong_FromLongLong(previous);
}

static PyMethodDef module_methods[] = {
    {"set_rest_spin", set_rest_spin, METH_O,
     "set_rest_spin(ns) -> int: how long recv_take waits for more of a frame its read cut "
     "(while no byte comes; 200 us unless set); the previous value"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "shoal.security._recordcore",
    .m_doc = "The secure channel's hot path, compiled (see channel.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__recordcore(void) {
    if (PyType_Ready(&DirectionType) < 0) return NULL;
    str_turn = PyUnicode_InternFromString("turn");
    str_encrypt_into = PyUnicode_InternFromString("encrypt_into");
    str_decrypt_into = PyUnicode_InternFromString("decrypt_into");
    if (str_turn == NULL || str_encrypt_into == NULL || str_decrypt_into == NULL) return NULL;
    seq_limit = PyLong_FromString("18446744073709551616", NULL, 10);
    if (seq_limit == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&DirectionType);
    if (PyModule_AddObject(m, "Direction", (PyObject *)&DirectionType) < 0) {
        Py_DECREF(&DirectionType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "SEAL_LIMIT", SEAL_LIMIT) < 0
            || PyModule_AddObject(m, "OPENSSL_VERSION_NUMBER",
                                  PyLong_FromUnsignedLong(OpenSSL_version_num())) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
