"""The log as a service: sequencer, integrator, reader, the published checkpoint,
witnessing and time shards."""
