/* Glue: read the configuration map made by emqx_rabbitmq_hook_config:parse/1 into an erh_config. */
#ifndef ERH_NIF_CONFIG_H
#define ERH_NIF_CONFIG_H

#include <erl_nif.h>

#include "erh_config.h"
#include "erh_nif_atoms.h"

/* On failure *bad_key is the atom of the key that was missing or malformed and the status says
 * whether it was the value (ERH_ERR_BADARG) or memory (ERH_ERR_NOMEM); config is then partly filled
 * and must still be freed with erh_config_free. */
erh_status erh_nif_read_config(ErlNifEnv *env, const erh_atoms *atoms, ERL_NIF_TERM map, erh_config *config,
                               ERL_NIF_TERM *bad_key);

#endif
