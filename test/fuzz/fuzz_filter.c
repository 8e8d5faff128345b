/* MQTT topic filters (erh_filter.c): validity and matching agree with the plain reference rules in
 * fuzz.h for any bytes, and a set matches when one of its filters does.
 * Input: a filter, a topic, then up to four more filters for a set (fields as in fuzz.h). */
#include "erh_filter.h"
#include "fuzz.h"

#define SET_MAX 5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = {data, size};
    erh_bytes filter = fuzz_field(&in);
    erh_bytes topic = fuzz_field(&in);

    bool valid = erh_filter_valid(filter.data, filter.len);
    FUZZ_CHECK(valid == ref_filter_valid(filter.data, filter.len), "filter \"%.*s\"", (int)filter.len, filter.data);
    if (valid) {
        bool match = erh_filter_match(filter.data, filter.len, topic.data, topic.len);
        FUZZ_CHECK(match == ref_filter_match(filter.data, filter.len, topic.data, topic.len),
                   "filter \"%.*s\" topic \"%.*s\"", (int)filter.len, filter.data, (int)topic.len, topic.data);
    }

    const char *filters[SET_MAX] = {filter.data};
    size_t lens[SET_MAX] = {filter.len}, count = 1;
    while (count < SET_MAX && in.size > 0) {
        erh_bytes more = fuzz_field(&in);
        filters[count] = more.data;
        lens[count++] = more.len;
    }
    size_t first_invalid = count, bad_index = SIZE_MAX;
    bool any_match = false;
    for (size_t i = count; i-- > 0;) {
        if (!ref_filter_valid(filters[i], lens[i]))
            first_invalid = i;
        else if (ref_filter_match(filters[i], lens[i], topic.data, topic.len))
            any_match = true;
    }
    erh_filter_set set;
    erh_status st = erh_filter_set_init(&set, filters, lens, count, &bad_index);
    if (first_invalid < count) {
        FUZZ_CHECK(st == ERH_ERR_BADARG && bad_index == first_invalid && set.count == 0, "status %d index %zu", st,
                   bad_index);
    } else {
        FUZZ_CHECK(st == ERH_OK, "status %d", st);
        FUZZ_CHECK(erh_filter_set_match(&set, topic.data, topic.len) == any_match, "set of %zu", count);
    }
    erh_filter_set_free(&set);
    erh_filter_set_free(&set); /* safe twice */
    return 0;
}
