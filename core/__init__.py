"""The base layer: model-free helpers every app uses (errors, env, JSON, the
Redis and upstream HTTP clients, shared counters, metrics plumbing, command
parsing). Imports nothing from the apps above it."""
