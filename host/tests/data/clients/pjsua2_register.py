"""pjsua2 (PyPI pjsua2-python): registers one account to sipreg, with digest auth, over
the transport the arguments name, verifying the server's certificate for TLS; prints
`REGISTERED <code> <reason>` (or `FAILED ...`) and exits.

    python3 pjsua2_register.py tls 127.0.0.1:5061 alice@127.0.0.1 password ca.pem
"""
import sys
import time

import pjsua2 as pj

transport, registrar, aor, password = sys.argv[1:5]
ca = sys.argv[5] if len(sys.argv) > 5 else ""


class Account(pj.Account):
    def __init__(self):
        super().__init__()
        self.code = None
        self.reason = ""

    def onRegState(self, prm):
        if prm.code != 100 and prm.code != 0:
            self.code = prm.code
            self.reason = prm.reason


ep = pj.Endpoint()
ep.libCreate()
cfg = pj.EpConfig()
cfg.logConfig.level = 1
cfg.logConfig.consoleLevel = 1
cfg.uaConfig.maxCalls = 1
ep.libInit(cfg)
ep.audDevManager().setNullDev()
tcfg = pj.TransportConfig()
tcfg.port = 0
kind = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP, "tls": pj.PJSIP_TRANSPORT_TLS}[transport]
if transport == "tls":
    tcfg.tlsConfig.CaListFile = ca
    tcfg.tlsConfig.verifyServer = True
    tcfg.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
ep.transportCreate(kind, tcfg)
ep.libStart()

acfg = pj.AccountConfig()
acfg.idUri = "sip:" + aor
acfg.regConfig.registrarUri = "sip:%s;transport=%s" % (registrar, transport)
acfg.regConfig.timeoutSec = 300
user = aor.split("@")[0]
acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
acfg.sipConfig.proxies.append("sip:%s;transport=%s;lr" % (registrar, transport))
acc = Account()
acc.create(acfg)
deadline = time.time() + 10
while acc.code is None and time.time() < deadline:
    ep.libHandleEvents(50)
if acc.code == 200:
    print("REGISTERED %d %s" % (acc.code, acc.reason), flush=True)
    # stay registered until told to stop (stdin closed)
    sys.stdin.read()
else:
    print("FAILED %s %s" % (acc.code, acc.reason), flush=True)
acc.shutdown()
ep.libDestroy()
