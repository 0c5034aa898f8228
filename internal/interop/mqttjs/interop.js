// interop.js drives mqtt.js (the Node.js MQTT client) through one fixed
// script against the broker at argv[2] with protocolVersion argv[3] (5 or 4)
// and prints what it saw as one JSON object on stdout: reason codes,
// properties, the messages each subscriber received. The Go test runs the
// same script against the bundled broker and Mosquitto 2.0.11 and compares
// the two outputs, so nothing here decides what is right.
//
// Waits are for events (a marker message sent after the one that must not
// arrive), never for a time, except the message expiry step, which must let
// a second pass so that the broker's expiry has something to act on.
'use strict'

const mqtt = require('mqtt')

const url = process.argv[2]
const version = Number(process.argv[3])
const v5 = version === 5
const waitLimitMs = 15000

const out = { protocolVersion: version, steps: [] }
const step = (name, fields) => {
  out.steps.push({ step: name, ...fields })
  process.stderr.write('done: ' + name + '\n')
}

// clean turns a packet's properties into plain JSON (Buffers as hex, user
// properties sorted) and reduces a remaining message expiry to whether it
// is in (0, sent]: the brokers count it down from the time they hold it.
function clean (props, sentExpiry) {
  if (!props) return undefined
  const o = {}
  for (const k of Object.keys(props).sort()) {
    let v = props[k]
    if (Buffer.isBuffer(v)) v = 'hex:' + v.toString('hex')
    if (k === 'messageExpiryInterval' && sentExpiry) {
      // The script sends 60 s or 600 s (and 1 s, which must never arrive).
      v = v > 0 && v <= 60 ? 'in (0,60]' : v > 60 && v <= 600 ? 'in (60,600]' : 'out of range: ' + v
    }
    if (k === 'userProperties') {
      const u = {}
      for (const uk of Object.keys(v).sort()) u[uk] = v[uk]
      v = u
    }
    o[k] = v
  }
  return Object.keys(o).length ? o : undefined
}

// client connects with opts and records every packet it receives, so acks
// and server DISCONNECTs can be read after each step.
async function client (id, opts) {
  const c = mqtt.connect(url, {
    clientId: id,
    protocolVersion: version,
    reconnectPeriod: 0,
    connectTimeout: waitLimitMs,
    ...opts
  })
  c.seen = []
  c.inbox = []
  c.on('packetreceive', p => c.seen.push(p))
  c.on('message', (topic, payload, p) => c.inbox.push({
    topic,
    payload: payload.toString(),
    qos: p.qos,
    retain: p.retain,
    dup: p.dup,
    properties: clean(p.properties, 60)
  }))
  c.on('error', err => { c.lastError = err.message })
  let onConnect, onError, onClose
  const connack = await new Promise((resolve, reject) => {
    onConnect = resolve
    onError = reject
    onClose = () => reject(new Error(id + ': closed before CONNACK'))
    c.once('connect', onConnect)
    c.once('error', onError)
    c.once('close', onClose)
  }).finally(() => {
    c.removeListener('connect', onConnect)
    c.removeListener('error', onError)
    c.removeListener('close', onClose)
  })
  return { c, connack }
}

function connackView (p) {
  return {
    sessionPresent: p.sessionPresent,
    code: v5 ? (p.reasonCode || 0) : (p.returnCode || 0),
    properties: clean(p.properties)
  }
}

// acks returns the acknowledgements c received since mark, in order.
function acks (c, mark) {
  return c.seen.slice(mark)
    .filter(p => ['puback', 'pubrec', 'pubcomp', 'suback', 'unsuback'].includes(p.cmd))
    .map(p => ({
      cmd: p.cmd,
      code: p.granted || p.reasonCode || 0,
      properties: clean(p.properties)
    }))
}

// until resolves when c's inbox holds a message on each of topics, or fails
// after waitLimitMs (a broker that never sends one). mqtt.js hands a QoS 2
// message over at its PUBREL, so a QoS 2 delivery may come after a later
// QoS 1 one: every awaited topic is named, and a marker only proves that
// what was sent before it on the same QoS did not arrive.
function until (c, ...topics) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const poll = () => {
      const missing = topics.filter(t => !c.inbox.some(m => m.topic === t))
      if (missing.length === 0) return resolve()
      if (Date.now() - t0 > waitLimitMs) return reject(new Error('no message on ' + missing.join(', ')))
      setTimeout(poll, 5)
    }
    poll()
  })
}

// take empties c's inbox and returns it in a stable order (topic, payload,
// retain, qos): arrival order across QoS levels is the client's, not the
// broker's.
function take (c) {
  const key = m => m.topic + '\u0000' + m.payload + '\u0000' + m.retain + '\u0000' + m.qos
  return c.inbox.splice(0).sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
}

function closed (c) {
  return new Promise(resolve => {
    if (c.disconnected || !c.connected) return resolve()
    c.once('close', resolve)
  })
}

const props = (p) => (v5 ? { properties: p } : {})

const publishProps = {
  messageExpiryInterval: 60,
  userProperties: { colour: 'blue', origin: 'mqtt.js' },
  contentType: 'text/plain',
  responseTopic: 'js/response',
  correlationData: Buffer.from('c0ffee', 'hex'),
  payloadFormatIndicator: true
}

async function main () {
  // The subscriber: a persistent session with properties.
  const subOpts = v5
    ? { clean: false, properties: { sessionExpiryInterval: 60, receiveMaximum: 10, topicAliasMaximum: 5, userProperties: { role: 'subscriber' } } }
    : { clean: false }
  let { c: sub, connack } = await client('js-sub', subOpts)
  step('connect subscriber', connackView(connack))

  let mark = sub.seen.length
  await sub.subscribeAsync({ 'js/all/#': { qos: 2, ...(v5 ? { nl: false, rap: true, rh: 0 } : {}) } },
    props({ subscriptionIdentifier: 7, userProperties: { sub: 'all' } }))
  await sub.subscribeAsync({ 'js/q1/#': { qos: 1 }, 'js/q0/#': { qos: 0 } }, props({ subscriptionIdentifier: 9 }))
  await sub.subscribeAsync('$share/g/js/shared', { qos: 1 })
  step('subscribe', { acks: acks(sub, mark) })

  // The publisher: QoS 0, 1 and 2 with every PUBLISH property, to filters
  // granted 2, 1 and 0, and to a topic nobody subscribes to.
  const pubOpts = v5 ? { clean: true, properties: { userProperties: { role: 'publisher' } } } : { clean: true }
  const { c: pub, connack: pack } = await client('js-pub', pubOpts)
  step('connect publisher', connackView(pack))
  await pub.subscribeAsync({ 'js/nl': { qos: 1, ...(v5 ? { nl: true } : {}) }, 'js/nl-marker': { qos: 1 } })
  for (const [topic, qos] of [['js/all/q0', 0], ['js/all/q1', 1], ['js/all/q2', 2], ['js/q1/q2', 2], ['js/q0/q2', 2], ['js/nobody', 1], ['js/nobody', 2], ['js/shared', 1]]) {
    mark = pub.seen.length
    await pub.publishAsync(topic, 'm-' + topic + '-' + qos, { qos, ...props(publishProps) })
    step('publish ' + topic + ' qos ' + qos, { acks: acks(pub, mark) })
  }
  if (v5) {
    // A topic alias set by the first publish and used alone by the second.
    await pub.publishAsync('js/all/alias', 'alias-set', { qos: 1, properties: { topicAlias: 3 } })
    await pub.publishAsync('', 'alias-used', { qos: 1, properties: { topicAlias: 3 } })
  }
  // No Local: the publisher's own js/nl must not come back to it.
  await pub.publishAsync('js/nl', 'not-for-me', { qos: 1 })
  await pub.publishAsync('js/nl-marker', 'marker', { qos: 1 })
  await until(pub, 'js/nl-marker')
  step('no local', { publisherReceived: pub.inbox.map(m => m.topic) })

  // Retained, with Retain As Published on js/all/# (and not on js/q1/#).
  await pub.publishAsync('js/all/retained', 'kept', { qos: 1, retain: true, ...props(publishProps) })
  await pub.publishAsync('js/q1/retained', 'kept', { qos: 1, retain: true })
  await pub.publishAsync('js/all/marker', 'marker', { qos: 1 })
  await until(sub, 'js/all/q0', 'js/all/q1', 'js/all/q2', 'js/q1/q2', 'js/q0/q2', 'js/shared',
    'js/all/retained', 'js/q1/retained', 'js/all/marker', ...(v5 ? ['js/all/alias'] : []))
  step('live deliveries', { received: take(sub) })

  // Retain Handling: 2 sends nothing now, 0 sends the retained message.
  if (v5) {
    const { c: late } = await client('js-late', { clean: true })
    mark = late.seen.length
    await late.subscribeAsync({ 'js/all/retained': { qos: 1, rh: 2 } })
    await late.subscribeAsync({ 'js/q1/retained': { qos: 1, rh: 0 } })
    await until(late, 'js/q1/retained')
    step('retain handling', { acks: acks(late, mark), received: take(late) })
    await late.endAsync()
  }

  // Overlapping subscriptions of one client (v5: with different identifiers).
  {
    const { c: over } = await client('js-over', { clean: true })
    await over.subscribeAsync({ 'js/over/#': { qos: 1 } }, props({ subscriptionIdentifier: 21 }))
    await over.subscribeAsync({ 'js/+/x': { qos: 0 } }, props({ subscriptionIdentifier: 22 }))
    await pub.publishAsync('js/over/x', 'overlap', { qos: 1 })
    await pub.publishAsync('js/over/marker', 'marker', { qos: 1 })
    await until(over, 'js/over/marker')
    step('overlapping subscriptions', { received: take(over) })
    await over.endAsync()
  }

  // What a broker without an authentication plugin answers to an
  // authentication method, and to a request for response information.
  if (v5) {
    const auth = mqtt.connect(url, { clientId: 'js-auth', protocolVersion: 5, reconnectPeriod: 0, properties: { authenticationMethod: 'SCRAM-SHA-1' } })
    const seen = []
    auth.on('packetreceive', p => seen.push(p))
    auth.on('error', () => {})
    await new Promise(resolve => { auth.once('close', resolve); auth.once('connect', resolve) })
    auth.end(true)
    step('authentication method', { got: seen.map(p => ({ cmd: p.cmd, code: p.reasonCode || 0, properties: clean(p.properties) })) })
    const { connack: rri } = await client('js-rri', { clean: true, properties: { requestResponseInformation: true, requestProblemInformation: false } })
    step('request response information', connackView(rri))
  }

  // Unsubscribe: one filter held, one never subscribed (v5 says which).
  if (v5) {
    const { c: unsub } = await client('js-unsub', { clean: true })
    await unsub.subscribeAsync('js/unsub/a', { qos: 1 })
    mark = unsub.seen.length
    await unsub.unsubscribeAsync(['js/unsub/a', 'js/unsub/never'])
    step('unsubscribe', { acks: acks(unsub, mark) })
    await unsub.endAsync()
  }

  // Maximum Packet Size: a subscriber that takes at most 128-byte packets
  // gets the small message and not the large one sent before it.
  if (v5) {
    const { c: small } = await client('js-small', { clean: true, properties: { maximumPacketSize: 128 } })
    await small.subscribeAsync('js/size/#', { qos: 1 })
    await pub.publishAsync('js/size/big', 'x'.repeat(300), { qos: 1 })
    await pub.publishAsync('js/size/small', 'small', { qos: 1 })
    await until(small, 'js/size/small')
    step('maximum packet size', { received: take(small).map(m => m.topic) })
    await small.endAsync()
  }

  // Session resume: the subscriber goes away, QoS 1 and 2 messages (one
  // with a one-second expiry) are held for it, it comes back.
  await sub.endAsync()
  await pub.publishAsync('js/all/held-q1', 'held-1', { qos: 1, ...props(publishProps) })
  await pub.publishAsync('js/all/held-q2', 'held-2', { qos: 2, ...props(publishProps) })
  await pub.publishAsync('js/q0/held-q2', 'held-0', { qos: 2 })
  if (v5) {
    await pub.publishAsync('js/exp/retained', 'gone', { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } })
    await pub.publishAsync('js/exp/kept', 'kept', { qos: 1, retain: true, properties: { messageExpiryInterval: 600 } })
    await pub.publishAsync('js/all/expires', 'gone', { qos: 1, properties: { messageExpiryInterval: 1 } })
    await new Promise(resolve => setTimeout(resolve, 2500))
  }
  await pub.publishAsync('js/all/held-marker', 'marker', { qos: 1 });
  ({ c: sub, connack } = await client('js-sub', subOpts))
  step('resume subscriber', connackView(connack))
  await until(sub, 'js/all/held-q1', 'js/all/held-q2', 'js/all/held-marker')
  step('held deliveries', { received: take(sub) })

  // A retained message whose expiry passed is not sent to a new subscriber.
  if (v5) {
    const { c: late2 } = await client('js-late2', { clean: true })
    await late2.subscribeAsync('js/exp/#', { qos: 1 })
    await until(late2, 'js/exp/kept')
    step('retained expiry', { received: take(late2) })
    await late2.endAsync()
  }

  // Takeover: a second connection with the subscriber's client id.
  const { c: second, connack: sack } = await client('js-sub', subOpts)
  await closed(sub)
  const disc = sub.seen.filter(p => p.cmd === 'disconnect')
  step('takeover', {
    second: connackView(sack),
    firstGot: disc.map(p => ({ code: p.reasonCode || 0, properties: clean(p.properties) }))
  })

  // A will sent because the client asks for it in its DISCONNECT (0x04),
  // or because its connection ends without one (3.1.1).
  const { c: willer } = await client('js-will', {
    clean: true,
    will: { topic: 'js/all/will', payload: Buffer.from('bye'), qos: 1, retain: false, ...props({ contentType: 'text/will', userProperties: { w: '1' } }) }
  })
  if (v5) {
    await willer.endAsync(false, { reasonCode: 4 })
  } else {
    willer.stream.destroy()
  }
  await until(second, 'js/all/will')
  step('will', { received: take(second).filter(m => m.topic === 'js/all/will') })

  // Clean up: the subscriber's session ends with it.
  if (v5) {
    await second.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } })
  } else {
    await second.endAsync()
  }
  await pub.endAsync()
}

// The whole script is bounded: a step that never completes fails it.
const watchdog = setTimeout(() => {
  out.error = 'timed out after step ' + (out.steps.length ? out.steps[out.steps.length - 1].step : '(none)')
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(1)
}, 4 * waitLimitMs)

main().then(() => {
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(0)
}, err => {
  out.error = String(err && err.stack ? err.stack : err)
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(1)
})
