// Package kafkatest runs real Apache Kafka brokers on loopback for tests.
//
// The broker is Apache Kafka Version run from its jars (kafka_2.13 and
// log4j2, fetched once by Maven from kafkatest/pom.xml into .cache/), in
// KRaft mode: each node is a combined broker and controller, formatted by
// kafka.tools.StorageTool and started as `java kafka.Kafka`. A cluster has
// 1 or 3 nodes on free loopback ports, small heaps, no initial rebalance
// delay and small internal topics so it starts in seconds. Tests can
// SIGKILL a node and restart it, and ask which node leads a partition or
// coordinates a group or a transactional id.
//
// Which broker a suite runs against is one switch, the environment
// variable EXACTLY_TEST_BROKER (see Selected): embedded (kfake, the
// default) or kafka.
package kafkatest
