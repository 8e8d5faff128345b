#include "erh_nif_terms.h"

#include <string.h>

ERL_NIF_TERM erh_binary_term(ErlNifEnv *env, erh_bytes bytes)
{
    ERL_NIF_TERM term;
    unsigned char *out = enif_make_new_binary(env, bytes.len, &term);
    if (bytes.len)
        memcpy(out, bytes.data, bytes.len);
    return term;
}

ERL_NIF_TERM erh_text_term(ErlNifEnv *env, const char *text)
{
    return erh_binary_term(env, (erh_bytes){text, strlen(text)});
}

ERL_NIF_TERM erh_server_term(ErlNifEnv *env, const erh_server *server)
{
    char text[300];
    size_t len = erh_server_format(server, text, sizeof text);
    return erh_binary_term(env, (erh_bytes){text, len});
}
