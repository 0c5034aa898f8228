// Package persist reads and writes Mosquitto's persistence file (mosquitto.db):
// format 6 byte for byte as Mosquitto 2.0 writes it, formats 2 to 6 for reading.
// Being the same format is the point: a file the bundled broker wrote loads in a
// real Mosquitto and vice versa, and file sizes are comparable across brokers.
//
// Stats and Held turn a decoded file into the numbers the experiment asks about
// (how many messages are held, queued or in flight, and whether anything is
// stored twice or left unreferenced), so the sampler and `mqbench inspect`
// answer those questions from the file itself rather than from the broker.
package persist
