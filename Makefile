# emqx_rabbitmq_hook: the NIF (c_src/ -> priv/) and the Erlang application (rebar3).
#   make          build everything
#   make test     C unit tests under valgrind, then the Erlang tests against a real RabbitMQ
#   make run      start a local RabbitMQ and drive a realistic workload through the plugin
#   make bench    benchmarks against a local RabbitMQ (not part of test); results in bench/results/
#   make deps     install the Debian packages the project needs (test and run do it first)

REBAR ?= rebar3
# amqp_client and jsx, used by the tests and the demo to read queues, ship with Debian's rabbitmq-server.
RABBIT_PLUGINS := $(firstword $(wildcard /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins))

all: nif
	$(REBAR) compile

nif:
	$(MAKE) -C c_src

test: deps
	$(MAKE) test-c test-erl

test-c:
	$(MAKE) -C test/c check

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

clean:
	$(MAKE) -C c_src clean
	$(MAKE) -C bench clean
	$(MAKE) -C test/c clean
	rm -rf _build

.PHONY: all nif test test-c test-erl run deps clean
