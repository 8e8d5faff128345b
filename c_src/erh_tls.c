#include "erh_tls.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <amqp_ssl_socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* The first certificate problem of the last handshake on this thread. A connection belongs to one
 * thread and its handshake runs inside amqp_socket_open on that thread, so no lock is needed. */
static _Thread_local int verify_error = X509_V_OK;

/* OpenSSL's verify callback: keep the verdict, remember why it failed. */
static int note_verify_error(int ok, X509_STORE_CTX *store)
{
    if (!ok && verify_error == X509_V_OK)
        verify_error = X509_STORE_CTX_get_error(store);
    return ok;
}

/* Without a callback OpenSSL asks for an encrypted key's passphrase on the terminal, which would
 * hang a broker started in the foreground: refuse instead, so loading the key fails. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf, (void)size, (void)rwflag, (void)userdata;
    return 0;
}

static const char *openssl_reason(void)
{
    const char *reason = ERR_reason_error_string(ERR_peek_last_error());
    return reason ? reason : "no details from OpenSSL";
}

static amqp_socket_t *fail(char *errstr, size_t cap, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(errstr, cap, fmt, args);
    va_end(args);
    ERR_clear_error();
    return NULL;
}

static bool is_ip_address(const char *name)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

/* Verify the chain during the handshake, so a server we cannot trust never sees our login, and
 * verify the name with OpenSSL (rabbitmq-c's own check only knows the host dialled). */
static bool verify_server(SSL_CTX *ctx, const erh_config *config, const erh_server *server)
{
    const char *name = config->tls_server_name[0] ? config->tls_server_name : server->host;
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = is_ip_address(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name)
                                 : X509_VERIFY_PARAM_set1_host(param, name, 0);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, note_verify_error);
    return ok == 1;
}

amqp_socket_t *erh_tls_socket_new(amqp_connection_state_t conn, const erh_config *config, const erh_server *server,
                                  char *errstr, size_t errstr_cap)
{
    verify_error = X509_V_OK;
    amqp_socket_t *socket = amqp_ssl_socket_new(conn);
    if (!socket)
        return fail(errstr, errstr_cap, "creating a TLS socket: %s", openssl_reason());
    SSL_CTX *ctx = amqp_ssl_socket_get_context(socket);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);

    if (config->tls_cacertfile[0]) {
        if (amqp_ssl_socket_set_cacert(socket, config->tls_cacertfile) != AMQP_STATUS_OK)
            return fail(errstr, errstr_cap, "loading tls_cacertfile %s: %s", config->tls_cacertfile,
                        openssl_reason());
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return fail(errstr, errstr_cap, "loading the system's trusted CAs: %s", openssl_reason());
    }

    if (config->tls_certfile[0]) {
        /* OpenSSL also checks that the key is the certificate's ("key values mismatch"). */
        if (amqp_ssl_socket_set_key(socket, config->tls_certfile, config->tls_keyfile) != AMQP_STATUS_OK)
            return fail(errstr, errstr_cap, "loading tls_certfile %s and tls_keyfile %s: %s", config->tls_certfile,
                        config->tls_keyfile, openssl_reason());
    }

    /* The name is checked by OpenSSL in verify_server, against tls_server_name when given. */
    amqp_ssl_socket_set_verify_hostname(socket, false);
    amqp_ssl_socket_set_verify_peer(socket, config->tls_verify);
    if (config->tls_verify && !verify_server(ctx, config, server))
        return fail(errstr, errstr_cap, "tls_server_name %s: cannot verify against it: %s",
                    config->tls_server_name[0] ? config->tls_server_name : server->host, openssl_reason());
    return socket;
}

void erh_tls_explain_failure(char *text, size_t cap)
{
    size_t len = strnlen(text, cap);
    if (len + 1 >= cap)
        return;
    unsigned long error = ERR_peek_last_error();
    if (verify_error != X509_V_OK)
        snprintf(text + len, cap - len, " (certificate verify failed: %s)", X509_verify_cert_error_string(verify_error));
    else if (error && ERR_reason_error_string(error))
        snprintf(text + len, cap - len, " (%s)", ERR_reason_error_string(error));
    verify_error = X509_V_OK;
    ERR_clear_error();
}
