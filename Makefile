# emqx_rabbitmq_hook: the NIF (c_src/ -> priv/) and the Erlang application (rebar3).
#   make          build everything
#   make test     C unit tests under valgrind and under ASan+UBSan, a short run of each fuzzer, then
#                 the Erlang tests against a real RabbitMQ
#   make fuzz     run each libFuzzer harness for FUZZ_SECONDS (default 60; test/fuzz)
#   make run      start a local RabbitMQ and drive a realistic workload through the plugin
#   make bench    benchmarks against a local RabbitMQ (not part of test); results in bench/results/
#   make deps     install the Debian packages the project needs (test and run do it first)
#   make package-emqx4 / package-emqx5   plugin packages for EMQX 4.3/4.4 and EMQX 5 (_build/packages)

REBAR ?= rebar3
# amqp_client and jsx (the tests and the demo read queues with them) and cuttlefish (the EMQX 4
# schema tests) ship with Debian's rabbitmq-server.
RABBIT_PLUGINS := $(firstword $(wildcard /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins))
# How long `make test` runs each fuzzer.
TEST_FUZZ_SECONDS ?= 20

all: nif
	$(REBAR) compile

nif:
	$(MAKE) -C c_src

test: deps
	$(MAKE) test-c test-fuzz test-erl

test-c:
	$(MAKE) -C test/c check asan

test-fuzz:
	$(MAKE) -C test/fuzz fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)

fuzz:
	$(MAKE) -C test/fuzz fuzz

test-erl: nif
	ERL_LIBS=$(RABBIT_PLUGINS) $(REBAR) eunit

run: deps
	$(MAKE) nif
	ERL_LIBS=$(RABBIT_PLUGINS) $(REBAR) as test compile
	ERL_LIBS=$(RABBIT_PLUGINS) escript scripts/demo.escript

# Packages only the benchmark needs (its chart).
BENCH_PACKAGES := gnuplot-nox

bench:
	scripts/install-deps.sh $(BENCH_PACKAGES)
	$(MAKE) nif
	ERL_LIBS=$(RABBIT_PLUGINS) $(REBAR) as test compile
	$(MAKE) -C bench run RABBIT_PLUGINS=$(RABBIT_PLUGINS)

.PHONY: bench

deps:
	scripts/install-deps.sh

package-emqx4 package-emqx5: all
	scripts/package.sh $(@:package-%=%)

clean:
	$(MAKE) -C c_src clean
	$(MAKE) -C bench clean
	$(MAKE) -C test/c clean
	$(MAKE) -C test/fuzz clean
	rm -rf _build

.PHONY: all nif test test-c test-fuzz test-erl fuzz run deps clean package-emqx4 package-emqx5
