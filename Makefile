# emqx_rabbitmq_hook: the NIF (c_src/ -> priv/) and the Erlang application (rebar3).
#   make          build everything
#   make test     C unit tests under valgrind, then the Erlang tests against a real RabbitMQ
#   make run      start a local RabbitMQ and drive a realistic workload through the plugin
#   make deps     install the Debian packages the project needs (test and run do it first)
#   make package-emqx4 / package-emqx5   plugin packages for EMQX 4.3/4.4 and EMQX 5 (_build/packages)

REBAR ?= rebar3
# amqp_client and jsx (the tests and the demo read queues with them) and cuttlefish (the EMQX 4
# schema tests) ship with Debian's rabbitmq-server.
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

deps:
	scripts/install-deps.sh

package-emqx4 package-emqx5: all
	scripts/package.sh $(@:package-%=%)

clean:
	$(MAKE) -C c_src clean
	$(MAKE) -C test/c clean
	rm -rf _build

.PHONY: all nif test test-c test-erl run deps clean package-emqx4 package-emqx5
