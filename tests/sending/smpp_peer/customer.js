// A customer's SMPP 3.4 client (ESME) built on npm's `smpp` package, the independent peer of smsguard's SMPP
// server (the `smpp` role of `smsguard serve`). 127.0.0.1 only.
//
//   node customer.js --port 2775 --system-id abc123 --password secret [--bind transceiver]
//
// Reads commands from stdin, one JSON object a line, and prints every event as one JSON line on stdout:
//   {"op":"submit","i":1,"to":"13800138000","text":"..."}   -> {"event":"resp","i":1,"status":0,"message_id":"..."}
//   {"op":"burst","n":1000,"window":64,"to_prefix":"138","text":"..."}  pipelined submits, then
//                                              -> {"event":"burst","n":1000,"ok":...,"seconds":...}
//   {"op":"data","i":2,"to":"...","text":"..."}  a data_sm (message_payload) -> {"event":"resp","i":2,...}
//   {"op":"query","i":3,"message_id":"..."}   -> {"event":"query","i":3,"status":N,"message_state":N,"final_date":"..."}
//   {"op":"cancel","i":4,"message_id":"..."}  -> {"event":"cancel","i":4,"status":N}
//   {"op":"unbind"}                           -> {"event":"unbound"} and the process exits
// The SMSC's enquire_link is answered (SMPP 3.4 §4.11) and printed as {"event":"enquire_link"}; with
// --ignore-enquire-link it is printed and not answered (a hung client, for the keep-alive tests).
// A deliver_sm (receipt or MO) is acknowledged and printed:
//   {"event":"deliver","esm_class":4,"source":"...","dest":"...","text":"...","receipted_message_id":"...",
//    "message_state":2}
// Binding prints {"event":"bind","status":N}; a refused bind exits after printing it.
'use strict';

const readline = require('readline');
const smpp = require('smpp');

function arg(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const port = parseInt(arg('port', '2775'), 10);
const bindType = arg('bind', 'transceiver');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const session = smpp.connect({ url: 'smpp://127.0.0.1:' + port, auto_enquire_link_period: 0 });
session.on('error', (e) => { out({ event: 'error', message: String(e) }); process.exit(3); });
session.on('close', () => { out({ event: 'closed' }); process.exit(0); });

session.on('enquire_link', (pdu) => {
  out({ event: 'enquire_link' });
  if (process.argv.indexOf('--ignore-enquire-link') < 0) session.send(pdu.response());
});

session.on('deliver_sm', (pdu) => {
  session.send(pdu.response());
  const sm = pdu.short_message || {};
  let text = sm.message;
  if (Buffer.isBuffer(text)) text = text.toString('latin1');
  if (pdu.message_payload) {
    const mp = pdu.message_payload.message !== undefined ? pdu.message_payload.message : pdu.message_payload;
    text = Buffer.isBuffer(mp) ? mp.toString('latin1') : String(mp);
  }
  out({
    event: 'deliver', esm_class: pdu.esm_class, source: pdu.source_addr, dest: pdu.destination_addr,
    text: text, receipted_message_id: pdu.receipted_message_id || null,
    message_state: pdu.message_state === undefined ? null : pdu.message_state,
  });
});

function submit(to, text, cb) {
  session.submit_sm({ destination_addr: to, short_message: text, registered_delivery: 1 }, cb);
}

function burst(cmd) {
  const t0 = process.hrtime.bigint();
  let sent = 0, answered = 0, ok = 0;
  const pump = () => {
    while (sent < cmd.n && sent - answered < cmd.window) {
      const i = sent++;
      const to = cmd.to_prefix + String(i).padStart(11 - cmd.to_prefix.length, '0');
      submit(to, cmd.text.replace('{i}', String(i)), (pdu) => {
        answered++;
        if (pdu.command_status === 0) ok++;
        if (answered === cmd.n) {
          const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
          out({ event: 'burst', n: cmd.n, ok: ok, seconds: seconds });
        } else {
          pump();
        }
      });
    }
  };
  pump();
}

const bind = { transceiver: 'bind_transceiver', transmitter: 'bind_transmitter', receiver: 'bind_receiver' }[bindType];
session[bind]({ system_id: arg('system-id', ''), password: arg('password', '') }, (pdu) => {
  out({ event: 'bind', status: pdu.command_status });
  if (pdu.command_status !== 0) { session.close(); return; }
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (!line.trim()) return;
    const cmd = JSON.parse(line);
    if (cmd.op === 'submit') {
      submit(cmd.to, cmd.text, (pdu) => out({ event: 'resp', i: cmd.i, status: pdu.command_status,
                                              message_id: pdu.message_id || '' }));
    } else if (cmd.op === 'data') {
      session.data_sm({ destination_addr: cmd.to, message_payload: cmd.text, registered_delivery: 1 },
        (pdu) => out({ event: 'resp', i: cmd.i, status: pdu.command_status, message_id: pdu.message_id || '' }));
    } else if (cmd.op === 'query') {
      session.query_sm({ message_id: cmd.message_id }, (pdu) => out({
        event: 'query', i: cmd.i, status: pdu.command_status,
        message_state: pdu.message_state === undefined ? null : pdu.message_state,
        final_date: pdu.final_date ? String(pdu.final_date) : '' }));
    } else if (cmd.op === 'cancel') {
      session.cancel_sm({ message_id: cmd.message_id },
        (pdu) => out({ event: 'cancel', i: cmd.i, status: pdu.command_status }));
    } else if (cmd.op === 'burst') {
      burst(cmd);
    } else if (cmd.op === 'unbind') {
      session.unbind(() => { out({ event: 'unbound' }); session.close(); });
    }
  });
  rl.on('close', () => session.close());
});
