// Package bench runs a scenario against any broker (through a Target), records
// every publish, acknowledgement, delivery, gauge sample and action as an event
// stream, and derives a Summary from that stream alone. It never imports the
// broker package, so the same run works against the bundled broker, a real
// Mosquitto or an external address.
package bench
