%% The fixture every end-to-end test module uses: one resource (a RabbitMQ, a Redis, unpacked
%% packages) set up for the module, and each test a fun of arity 1, run by Run(Test, Resource)
%% under its own name and time limit.
-module(erh_test_fixture).

-export([each/5]).

each(Setup, Cleanup, TimeoutS, Tests, Run) ->
    {setup, Setup, Cleanup,
     fun(Resource) ->
             [{timeout, TimeoutS, {atom_to_list(name(Test)), fun() -> Run(Test, Resource) end}} || Test <- Tests]
     end}.

name(Test) ->
    {name, Name} = erlang:fun_info(Test, name),
    Name.
