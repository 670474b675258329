#!/usr/bin/python3
"""An independent mDNS / DNS-SD implementation (Debian's python3-zeroconf)
for spec/net/mdns_spec.lua. Run with /usr/bin/python3 (the pyenv python on PATH
does not see Debian's packages).

  zeroconf_peer.py browse SECONDS
      browses _peernet._tcp.local. and prints one line per resolved service:
      "found NAME PORT KEY ADDR,ADDR"; "removed NAME" when a goodbye arrives.
  zeroconf_peer.py publish NAME PORT KEYHEX
      registers NAME._peernet._tcp.local. (TXT v=1 key=KEYHEX) on every
      interface, prints "published", waits for a line on stdin (or its end,
      at most 60 s), then unregisters (goodbye) and prints "unpublished".

Every line is flushed at once: the spec reads them while this runs.
"""
import select
import socket
import sys
import time

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

SERVICE = "_peernet._tcp.local."


def say(*words):
    print(*words, flush=True)


def browse(seconds):
    zc = Zeroconf(ip_version=IPVersion.V4Only)

    def changed(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Removed:
            say("removed", name)
            return
        info = zeroconf.get_service_info(service_type, name, timeout=3000)
        if info is None:
            say("unresolved", name)
            return
        key = (info.properties or {}).get(b"key", b"") or b""
        addrs = ",".join(info.parsed_addresses()) or "-"
        say("found", name, info.port, key.decode("ascii", "replace") or "-", addrs)

    ServiceBrowser(zc, SERVICE, handlers=[changed])
    say("browsing")
    time.sleep(seconds)
    zc.close()


def publish(name, port, key):
    zc = Zeroconf(ip_version=IPVersion.V4Only)
    addrs = set()
    for fam, _, _, _, sa in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
        addrs.add(sa[0])
    addrs.add("127.0.0.1")
    info = ServiceInfo(
        SERVICE,
        name + "." + SERVICE,
        port=port,
        properties={"v": "1", "key": key},
        server="zc-" + name.lower() + ".local.",
        addresses=[socket.inet_aton(a) for a in sorted(addrs)],
    )
    zc.register_service(info)
    say("published")
    select.select([sys.stdin], [], [], 60)
    zc.unregister_service(info)
    say("unpublished")
    zc.close()


def main(argv):
    if len(argv) == 3 and argv[1] == "browse":
        browse(float(argv[2]))
    elif len(argv) == 5 and argv[1] == "publish":
        publish(argv[2], int(argv[3]), argv[4])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
