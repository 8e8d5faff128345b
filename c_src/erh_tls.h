/* TLS for the AMQP connection (amqps) on rabbitmq-c's OpenSSL socket: the trusted CAs, the client
 * certificate, and verification of the server's certificate chain and name. Used by erh_amqp.c. */
#ifndef ERH_TLS_H
#define ERH_TLS_H

#include <stddef.h>

#include <amqp.h>

#include "erh_config.h"

/* A TLS socket on conn, which owns it from then on, set up from config to reach server. NULL when a
 * configured file cannot be used or memory runs out: errstr then names the key and says why (file
 * paths, never file contents). */
amqp_socket_t *erh_tls_socket_new(amqp_connection_state_t conn, const erh_config *config, const erh_server *server,
                                  char *errstr, size_t errstr_cap);

/* Append to text (a NUL-terminated string in a buffer of cap bytes) why TLS failed last on this
 * thread, e.g. " (certificate verify failed: unable to get local issuer certificate)"; appends
 * nothing when TLS gave no reason. Call right after a failed open or login of a TLS connection. */
void erh_tls_explain_failure(char *text, size_t cap);

#endif
