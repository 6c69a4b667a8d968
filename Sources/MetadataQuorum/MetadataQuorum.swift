/// The Raft metadata quorum (KRaft's model) as a pure state machine: events in (messages, timer
/// ticks, disk results), actions out (messages to send, entries to persist, commits). No
/// sockets, clocks or threads inside, so it can be tested by deterministic simulation.
public enum MetadataQuorum {}
