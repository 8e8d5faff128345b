/* Status codes shared by every C file of the NIF: 0 is success, errors are negative. */
#ifndef ERH_STATUS_H
#define ERH_STATUS_H

typedef enum erh_status {
    ERH_OK = 0,
    ERH_ERR_NOMEM = -1,       /* an allocation failed */
    ERH_ERR_BADARG = -2,      /* a caller passed a value out of range */
    ERH_ERR_TOO_LONG = -3,    /* a value does not fit its bound (e.g. a 255-byte AMQP short string) */
    ERH_ERR_ENCODE = -4,      /* JSON encoding failed */
    ERH_ERR_SOCKET = -5,      /* the TCP connection could not be opened or broke */
    ERH_ERR_LOGIN = -6,       /* the broker refused the credentials or vhost */
    ERH_ERR_PROTOCOL = -7,    /* the broker closed the channel or connection, or sent a frame we do not expect */
    ERH_ERR_TIMEOUT = -8,     /* the broker did not answer in time */
    ERH_ERR_CLOSED = -9,      /* the object is stopping or stopped */
    ERH_ERR_FULL = -10,       /* a bounded buffer is full */
    ERH_ERR_SYSTEM = -11,     /* a system call failed (see errno in errstr) */
    ERH_ERR_BUSY = -12,       /* a resource is held by someone else (e.g. a spool folder's lock) */
    ERH_ERR_AGAIN = -13,      /* it would have to wait (e.g. for room in a socket's send buffer): nothing done */
} erh_status;

#define ERH_STATUS_MIN ERH_ERR_AGAIN

/* A short English sentence for a status; never NULL, even for unknown values. */
const char *erh_strerror(erh_status status);

#endif
