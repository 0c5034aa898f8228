// Package auth reads Mosquitto 2.0.11's password_file and acl_file and
// answers the questions the broker asks them, with Mosquitto's exact results,
// so the bundled broker admits and filters clients as real Mosquitto does
// with the same files.
//
// Passwords (LoadPasswordFile, ParsePasswords, (*Passwords).Check) covers
// CONNECT: Check gives a Result and Result.ConnackCode the MQTT 3.1.1 return
// code Mosquitto sends for it (always 5 when refused). HashPassword writes
// hashes mosquitto_passwd would write, so mqbench can generate password files
// for both brokers.
//
// ACL (LoadACLFile, ParseACL, (*ACL).Check) covers topics. Where the broker
// must call Check, and what Mosquitto does on a denial:
//
//   - PUBLISH received: Check(..., topic, Write). Denied: the message is
//     dropped (not delivered, not retained) but the flow completes as if it
//     was accepted: nothing for QoS 0, PUBACK for QoS 1, PUBREC then PUBCOMP
//     for QoS 2 (handle__publish, src/handle_publish.c; handle__pubrel sends
//     PUBCOMP for the unknown id). The client is not disconnected.
//   - Each delivery to a subscriber: Check(subscriber, topic, Read) with the
//     message's topic (subs__send, src/subs.c). Denied: silently not queued
//     for that subscriber.
//   - Retained messages sent on SUBSCRIBE: Check(subscriber, topic, Read)
//     for each (retain__process, src/retain.c). Denied: skipped.
//   - A will: Check(owner, will topic, Write) when it is sent, not at
//     CONNECT (context__send_will, src/context.c). Denied: not sent. Its
//     deliveries are then Read-checked like any message.
//   - SUBSCRIBE: Check(..., filter, Subscribe), which in 2.0.11 always
//     allows (the default ACL does not look at subscriptions), so the filter
//     is granted at the requested QoS and filtering happens at delivery. Were
//     it denied (a plugin), 3.1.1 gets 0x80 in SUBACK (handle__subscribe).
//   - A resumed session (clean session false): queued outgoing messages are
//     Read-checked again at CONNECT and the denied ones dropped
//     (connection_check_acl, src/handle_connect.c).
//
// Call Check even without an acl_file (on a nil *ACL): Mosquitto refuses
// PUBLISH to $SYS topics (except $SYS/broker/connection/+/state) and any
// message on a $share topic whatever the configuration.
//
// BEHAVIOUR.md has the same with the source references and the measurements
// against the real Mosquitto.
//
// A username listed more than once in the password file resolves to the entry
// Mosquitto's uthash table finds, modelled in uthash.go: usually the last one
// that decoded, but the first of ten in a row, for instance.
package auth
