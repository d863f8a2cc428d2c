//! mudshard: a thread-per-core multiplayer text-world server.
