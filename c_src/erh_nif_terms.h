/* Erlang binaries made from the NIF's C text: for replies and for the messages its threads send. */
#ifndef ERH_NIF_TERMS_H
#define ERH_NIF_TERMS_H

#include <erl_nif.h>

#include "erh_buf.h"
#include "erh_config.h"

/* A new binary holding a copy of bytes. */
ERL_NIF_TERM erh_binary_term(ErlNifEnv *env, erh_bytes bytes);
/* The same for a NUL-terminated text. */
ERL_NIF_TERM erh_text_term(ErlNifEnv *env, const char *text);
/* A server as "host:port", as erh_server_format writes it. */
ERL_NIF_TERM erh_server_term(ErlNifEnv *env, const erh_server *server);

#endif
