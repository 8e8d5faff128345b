/* What the NIF does with an operator's configuration once Erlang has checked it (erh_nif_config.c
 * reads the map; these are the C checks and copies behind it): publish_topics become a filter set
 * that refuses exactly the first invalid filter, routing templates are judged as the reference
 * rule does, "host:port" is written for stats and logs within its buffer, and erh_config_free
 * frees a configuration however far reading it got.
 * Input: flags, a count of filters and that many fields, three templates, node, host, a port
 * (2 bytes) and a buffer size (1 byte) for the server text. */
#include "erh_config.h"
#include "erh_routing.h"
#include "fuzz.h"

#define FILTERS_MAX 16

static char *copy_or_null(erh_bytes field, bool keep)
{
    return keep ? fuzz_cstring(field) : NULL;
}

static void check_filters(fuzz_input *in, erh_config *config)
{
    size_t count = fuzz_byte(in) % (FILTERS_MAX + 1), first_invalid = SIZE_MAX, bad_index = SIZE_MAX;
    const char *filters[FILTERS_MAX];
    size_t lens[FILTERS_MAX];
    for (size_t i = 0; i < count; i++) {
        erh_bytes filter = fuzz_field(in);
        filters[i] = filter.data;
        lens[i] = filter.len;
        if (first_invalid == SIZE_MAX && !ref_filter_valid(filter.data, filter.len))
            first_invalid = i;
    }
    erh_status st = erh_filter_set_init(&config->publish_topics, filters, lens, count, &bad_index);
    if (first_invalid != SIZE_MAX)
        FUZZ_CHECK(st == ERH_ERR_BADARG && bad_index == first_invalid, "status %d, index %zu", st, bad_index);
    else
        FUZZ_CHECK(st == ERH_OK && config->publish_topics.count == count, "status %d", st);
}

static void check_server_text(const erh_server *server, size_t cap)
{
    char expected[300], text[300];
    int full = snprintf(expected, sizeof expected, "%s:%d", server->host, server->port);
    memset(text, 'x', sizeof text);
    size_t len = erh_server_format(server, text, cap);
    size_t want = (size_t)full < cap ? (size_t)full : cap - 1;
    FUZZ_CHECK(len == want && text[len] == '\0' && memcmp(text, expected, len) == 0, "%zu bytes of %zu", len, cap);
    FUZZ_CHECK(cap == sizeof text || text[cap] == 'x', "wrote past %zu bytes", cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = {data, size};
    unsigned keep = fuzz_byte(&in); /* which values reading got to before it stopped */
    erh_config config = {0};
    check_filters(&in, &config);
    for (int type = 0; type < ERH_EV__COUNT; type++) {
        char *template_str = fuzz_cstring(fuzz_field(&in));
        FUZZ_CHECK(erh_routing_template_valid(template_str) == ref_template_valid(template_str), "template \"%s\"",
                   template_str);
        config.routing_keys[type] = keep & (1u << type) ? template_str : (free(template_str), NULL);
    }
    config.node = copy_or_null(fuzz_field(&in), keep & 8);
    char *host = fuzz_cstring(fuzz_field(&in));
    int port = (int)fuzz_byte(&in) << 8 | fuzz_byte(&in);
    size_t cap = 1 + fuzz_byte(&in) % 300;
    check_server_text(&(erh_server){.host = host, .port = port}, cap);
    if (keep & 16) {
        config.servers = calloc(1, sizeof *config.servers);
        FUZZ_CHECK(config.servers != NULL, "out of memory");
        config.servers[0] = (erh_server){.host = host, .port = port};
        config.n_servers = 1;
    } else {
        free(host);
    }
    config.tls_cacertfile = copy_or_null((erh_bytes){"", 0}, keep & 32);
    config.tls_server_name = copy_or_null((erh_bytes){"", 0}, keep & 64);
    erh_config_free(&config);
    erh_config_free(&config); /* it leaves a zeroed config, safe to free again */
    return 0;
}
