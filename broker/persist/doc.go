// Package persist reads and writes Mosquitto's persistence file (mosquitto.db):
// format 6 byte for byte as Mosquitto 2.0 writes it, formats 2 to 6 for reading.
// Being the same format is the point: a file the bundled broker wrote loads in a
// real Mosquitto and vice versa, and file sizes are comparable across brokers.
//
// Stats and Held turn a decoded file into the numbers the experiment asks about
// (how many messages are held, queued or in flight, and whether anything is
// stored twice or left unreferenced), so the sampler and `mqbench inspect`
// answer those questions from the file itself rather than from the broker.
//
// Parse is strict: it refuses what it cannot account for and keeps everything
// it read. ParseChecked reads a file the way Mosquitto 2.0.11 restores it,
// refusing what Mosquitto refuses and reporting, as a Problem with its byte
// offset, everything Mosquitto would skip, drop or repair; loaders use it so
// that no damage is lost in silence (docs/persistence-damage.md).
package persist
