/* Routing keys from templates (erh_routing.c): validity agrees with the reference rule in fuzz.h;
 * a rendered key is the plain expansion of the template when that fits 255 bytes, else a prefix
 * of it cut to 252..255 bytes, never splitting a UTF-8 character of UTF-8 input.
 * Input: flags (1: no username), then the fields template, clientid, username, topic. */
#include "erh_routing.h"
#include "erh_utf8.h"
#include "fuzz.h"

/* The template with each known placeholder replaced, without any bound. */
static void expand(const char *template_str, const erh_event *event, erh_buf *out)
{
    static const erh_field fields[] = {ERH_F_CLIENTID, ERH_F_USERNAME, ERH_F_TOPIC};
    for (const char *at = template_str; *at;) {
        int i = ref_placeholder_at(at);
        if (i < 0) {
            FUZZ_CHECK(erh_buf_append(out, at++, 1) == ERH_OK, "out of memory");
            continue;
        }
        erh_bytes value = event->field[fields[i]];
        size_t start = out->len;
        FUZZ_CHECK(erh_buf_append(out, value.data, value.len) == ERH_OK, "out of memory");
        for (size_t b = start; fields[i] == ERH_F_TOPIC && b < out->len; b++)
            if (out->data[b] == '/')
                out->data[b] = '.';
        at += strlen(fuzz_placeholders[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = {data, size};
    bool no_username = fuzz_byte(&in) & 1;
    char *template_str = fuzz_cstring(fuzz_field(&in));
    erh_event event = {.type = ERH_EV_PUBLISH};
    event.field[ERH_F_CLIENTID] = fuzz_field(&in);
    event.field[ERH_F_USERNAME] = fuzz_field(&in);
    event.field[ERH_F_TOPIC] = fuzz_field(&in);
    if (no_username)
        event.field[ERH_F_USERNAME] = (erh_bytes){0};

    FUZZ_CHECK(erh_routing_template_valid(template_str) == ref_template_valid(template_str), "template \"%s\"",
               template_str);

    char key[ERH_ROUTING_KEY_MAX + 1];
    size_t len = SIZE_MAX;
    erh_status st = erh_routing_render(template_str, &event, key, &len);
    erh_buf full = {0};
    expand(template_str, &event, &full);
    FUZZ_CHECK(len <= ERH_ROUTING_KEY_MAX && key[len] == '\0', "length %zu", len);
    if (full.len <= ERH_ROUTING_KEY_MAX) {
        FUZZ_CHECK(st == ERH_OK && fuzz_equal((erh_bytes){key, len}, full.data, full.len), "status %d", st);
    } else {
        FUZZ_CHECK(st == ERH_ERR_TOO_LONG && len >= ERH_ROUTING_KEY_MAX - 3, "status %d, %zu bytes", st, len);
        FUZZ_CHECK(memcmp(key, full.data, len) == 0, "not a prefix of the expansion");
    }
    bool utf8_in = erh_utf8_valid(template_str, strlen(template_str));
    for (int f = 0; f < ERH_F__COUNT; f++)
        utf8_in = utf8_in && (!event.field[f].data || erh_utf8_valid(event.field[f].data, event.field[f].len));
    FUZZ_CHECK(!utf8_in || erh_utf8_valid(key, len), "a UTF-8 character was cut");

    erh_buf_free(&full);
    free(template_str);
    return 0;
}
