// A local SMPP 3.4 SMSC built on npm's `smpp` package, used as the real peer of smsguard's SMPP adapter in
// the gateway contract tests and benchmarks. It listens on 127.0.0.1 only.
//
//   node server.js --port 2775 [--system-id smsguard --password secret] [--journal FILE] [--dlr-delay-ms 0]
//
// Behaviour chosen by the destination number, the same rules as the CMPP and HTTP simulators
// (sending/_scenarios.py is the Python twin of `scenario()` below):
//   ...9001  throttled (ESME_RTHROTTLED) on the first two attempts of the same text, then accepted
//   ...9002  rejected permanently (ESME_RINVDSTADR)
//   ...9003  accepted, then a receipt stat:UNDELIV err:005
//   ...9004  accepted, then a receipt stat:EXPIRED
//   other    accepted, then a receipt stat:DELIVRD
// A text starting with "MO:" also makes the handset "reply": a deliver_sm MO with the rest of the text.
//
// Durability like a real SMSC: with --journal every accepted part is appended (before submit_sm_resp) and
// every receipt the client acknowledged is appended too; receipts not yet acknowledged are re-sent to the
// next session that binds, including after a restart of this process.
'use strict';

const fs = require('fs');
const smpp = require('smpp');

function arg(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const port = parseInt(arg('port', '2775'), 10);
const systemId = arg('system-id', 'smsguard');
const password = arg('password', 'secret');
const journalPath = arg('journal', '');
const dlrDelayMs = parseInt(arg('dlr-delay-ms', '0'), 10);
// How the receipt text spells the id (SMSCs differ; users report each): 'same' as submit_sm_resp (hex),
// 'decimal', or 'padded' (decimal with leading zeros, 20 digits). Not 'same' also drops receipted_message_id.
const receiptId = arg('receipt-id', 'same');

const bootPrefix = (Date.now() % 0xffffff).toString(16).padStart(6, '0');
let counter = 0;
const attempts = new Map(); // dest + text -> submits seen (for the throttled scenario)
const pending = new Map(); // message id -> receipt fields not yet acknowledged by the client
let journalFd = null;

function journal(record) {
  if (journalFd !== null) fs.writeSync(journalFd, JSON.stringify(record) + '\n');
}

if (journalPath) {
  if (fs.existsSync(journalPath)) {
    // Rebuild the receipts still owed from the previous run.
    const owed = new Map();
    for (const line of fs.readFileSync(journalPath, 'utf8').split('\n')) {
      if (!line) continue;
      const r = JSON.parse(line);
      if (r.event === 'accepted') owed.set(r.id, r.receipt);
      else if (r.event === 'reported') owed.delete(r.id);
    }
    for (const [id, receipt] of owed) pending.set(id, receipt);
  }
  journalFd = fs.openSync(journalPath, 'a');
}

function scenario(dest) {
  if (dest.endsWith('9001')) return 'throttle';
  if (dest.endsWith('9002')) return 'reject';
  if (dest.endsWith('9003')) return 'undeliv';
  if (dest.endsWith('9004')) return 'expired';
  return 'ok';
}

function stamp(d) {
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getFullYear() % 100) + p(d.getMonth() + 1) + p(d.getDate()) + p(d.getHours()) + p(d.getMinutes());
}

function decodeText(pdu) {
  const sm = pdu.short_message;
  let text = typeof sm === 'string' ? sm : (sm && sm.message) || '';
  if (Buffer.isBuffer(text)) text = text.toString('latin1');
  let part = null;
  if (sm && sm.udh && sm.udh.length) {
    for (const u of sm.udh) {
      if (u[0] === 0x00 && u.length >= 5) part = {ref: u[2], total: u[3], seq: u[4]};
    }
  }
  return {text, part};
}

const sessions = new Set();

function receiptText(id) {
  if (receiptId === 'decimal') return BigInt('0x' + id).toString(10);
  if (receiptId === 'padded') return BigInt('0x' + id).toString(10).padStart(20, '0');
  return id;
}

function sendReceipt(session, id, receipt) {
  if (!session.bound) return;
  const stateCodes = {DELIVRD: 2, EXPIRED: 3, UNDELIV: 5};
  const body = `id:${receiptText(id)} sub:001 dlvr:${receipt.stat === 'DELIVRD' ? '001' : '000'} submit date:${receipt.date} ` +
    `done date:${receipt.date} stat:${receipt.stat} err:${receipt.err} text:${receipt.text.slice(0, 20)}`;
  session.deliver_sm({
    source_addr: receipt.dest,
    destination_addr: receipt.source,
    esm_class: 0x04,
    data_coding: 0,
    short_message: Buffer.from(body, 'latin1'),
    ...(receiptId === 'same' ? {receipted_message_id: id} : {}),
    message_state: stateCodes[receipt.stat] || 8,
  }, (resp) => {
    if (resp.command_status === 0 && pending.has(id)) {
      pending.delete(id);
      journal({event: 'reported', id});
    }
  });
}

function sendMo(session, from, to, text) {
  if (!session.bound) return;
  session.deliver_sm({source_addr: from, destination_addr: to, esm_class: 0, short_message: text});
}

const server = smpp.createServer({}, (session) => {
  session.bound = false;
  session.on('error', () => {});
  session.on('close', () => sessions.delete(session));
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== systemId || pdu.password !== password) {
      session.send(pdu.response({command_status: smpp.ESME_RBINDFAIL}));
      session.close();
      return;
    }
    session.send(pdu.response({system_id: 'smsguard-peer'}));
    session.bound = true;
    sessions.add(session);
    for (const [id, receipt] of pending) sendReceipt(session, id, receipt);
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.bound = false;
    session.close();
  });
  session.on('submit_sm', (pdu) => {
    if (!session.bound) {
      session.send(pdu.response({command_status: smpp.ESME_RINVBNDSTS}));
      return;
    }
    const dest = String(pdu.destination_addr);
    const {text, part} = decodeText(pdu);
    const kind = scenario(dest);
    if (kind === 'throttle') {
      const key = dest + '\u0000' + text;
      const n = (attempts.get(key) || 0) + 1;
      attempts.set(key, n);
      if (n <= 2) {
        session.send(pdu.response({command_status: smpp.ESME_RTHROTTLED}));
        return;
      }
    }
    if (kind === 'reject') {
      session.send(pdu.response({command_status: smpp.ESME_RINVDSTADR}));
      return;
    }
    counter += 1;
    const id = bootPrefix + counter.toString(16).padStart(8, '0');
    const stat = kind === 'undeliv' ? 'UNDELIV' : kind === 'expired' ? 'EXPIRED' : 'DELIVRD';
    const receipt = {
      dest, source: String(pdu.source_addr), stat, err: kind === 'undeliv' ? '005' : '000',
      date: stamp(new Date()), text: text.replace(/[^\x20-\x7e]/g, '?'),
    };
    journal({event: 'accepted', id, dest, text, part, receipt});
    pending.set(id, receipt);
    session.send(pdu.response({message_id: id}));
    if (pdu.registered_delivery & 0x01) {
      if (dlrDelayMs > 0) setTimeout(() => sendReceipt(session, id, receipt), dlrDelayMs);
      else setImmediate(() => sendReceipt(session, id, receipt));
    } else {
      pending.delete(id);
    }
    if (text.startsWith('MO:') && (!part || part.seq === 1)) {
      setImmediate(() => sendMo(session, dest, String(pdu.source_addr), text.slice(3)));
    }
  });
});

server.on('error', (e) => {
  process.stderr.write(String(e) + '\n');
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
