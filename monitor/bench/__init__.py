"""`harvest-monitor bench`: the monitor's headline figures, measured through its real path.

Each figure is set against a raw ceiling measured on the same machine in the same run
(raw aiokafka produce and consume+decode, raw websocket receive+parse), so the ratios
mean something on a noisy machine. Modules, in the order the bench runs them:

- `market`: the simulated assets and the tick tape (the simulator's own price paths);
- `lots`: synthetic open lots placed around those paths, so a known share of ticks alert;
- `exchange`: the simulated exchange in a child process;
- `probes`: counting wrappers around the real producer, consumer, detector and sinks;
- `ceilings`, `ingest`, `detect`, `latency`, `scaling` (+ `memory`): the sections;
- `report`: the targets, the table and the JSON; `runner`: the order and the broker.
"""
