// Package e2ekafka tests message-broker pipelines end to end with the
// real sluice binary against kfake (an in-process Kafka listening on
// 127.0.0.1), the NATS server with JetStream of internal/natstest, and
// real databases: exactly-once delivery when processes are SIGKILLed, and
// consumer-group scale-out where a killed process's partitions move to
// another one. It has no non-test code.
package e2ekafka
