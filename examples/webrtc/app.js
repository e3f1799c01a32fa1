// The demo's softphone: SIP.js's SimpleUser over WSS. Page parameters prefill the form
// (?server=wss://host:port&aor=sip:alice@example.com&password=...&target=...).
import { Web } from "./vendor/sip.js/lib/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
for (const k of ["server", "aor", "password", "target"]) {
  if (params.has(k)) $(k).value = params.get(k);
}

let user = null;
let state = "idle"; // idle | registered | ringing | calling | in-call

function status(text) {
  $("status").textContent = text;
  log(text);
}

function log(text) {
  $("log").textContent += new Date().toISOString().slice(11, 23) + " " + text + "\n";
}

function buttons() {
  const registered = state !== "idle";
  $("register").disabled = registered;
  $("unregister").disabled = !registered;
  $("call").disabled = state !== "registered";
  $("answer").disabled = state !== "ringing";
  $("hangup").disabled = !["ringing", "calling", "in-call"].includes(state);
}

function set(next, text) {
  state = next;
  status(text);
  buttons();
}

$("register").onclick = async () => {
  const aor = $("aor").value;
  const username = aor.replace(/^sips?:/, "").split("@")[0];
  user = new Web.SimpleUser($("server").value, {
    aor,
    media: { constraints: { audio: true, video: false }, remote: { audio: $("remote") } },
    userAgentOptions: {
      authorizationUsername: username,
      authorizationPassword: $("password").value,
      sessionDescriptionHandlerFactoryOptions: {
        peerConnectionConfiguration: { iceServers: [] },
        iceGatheringTimeout: 500,
      },
    },
    delegate: {
      onServerConnect: () => log("connected to " + $("server").value),
      onServerDisconnect: (e) => set("idle", "Disconnected" + (e ? ": " + e.message : "")),
      onRegistered: () => set("registered", "Registered as " + aor),
      onUnregistered: () => set("idle", "Not registered"),
      onCallReceived: () => set("ringing", "Incoming call"),
      onCallAnswered: () => set("in-call", "In call"),
      onCallHangup: () => set(user ? "registered" : "idle", "Call ended"),
    },
  });
  try {
    status("Connecting...");
    await user.connect();
    await user.register(undefined, {
      requestDelegate: {
        onReject: (r) => set("idle", "Registration refused: " + r.message.statusCode + " " + r.message.reasonPhrase),
      },
    });
  } catch (e) {
    set("idle", "Failed: " + e.message);
  }
};

$("unregister").onclick = async () => {
  await user.unregister().catch((e) => log(e.message));
  await user.disconnect().catch((e) => log(e.message));
  user = null;
  set("idle", "Not registered");
};

$("call").onclick = async () => {
  set("calling", "Calling " + $("target").value);
  try {
    await user.call($("target").value, undefined, {
      requestDelegate: {
        onProgress: (r) => r.message.statusCode === 180 && status("Ringing"),
        onReject: (r) => set("registered", "Call refused: " + r.message.statusCode + " " + r.message.reasonPhrase),
      },
    });
  } catch (e) {
    set("registered", "Call failed: " + e.message);
  }
};

$("answer").onclick = () => user.answer().catch((e) => log(e.message));
$("hangup").onclick = () => user.hangup().catch((e) => log(e.message));

window.demo = { state: () => state, status: () => $("status").textContent };
buttons();
