"""wire_peer.py - an internode peer written from src/cluster/wire.h's text
alone (BLAKE2b from hashlib for the handshake, ChaCha20-Poly1305 from
python3-cryptography for frame tags), to drive a real node's peer transport.

Usage: WIRE_RING=HEX wire_peer.py PORT SECRET_FILE CLUSTER_ID_HEX MY_ID EXPECT_ID MODE
WIRE_RING is the ring digest to claim (DYN.STATUS ring_digest; 0 if unset).
MODE:
  hello     full handshake; prints "proof_s ok" when the node proved the
            secret, then "accepted" when the session stays open, or
            "closed" when the node closes it
  badtag    handshake, then one frame whose tag is wrong
  replay    handshake, then a well-tagged frame holding one malformed
            message (dropped and counted), then the same frame again (a
            replay: the node closes the session), in one send
  reorder   handshake, then frames 1 and 0 of the direction, in that order
  otherdir  handshake, then a frame tagged under the node's own direction
            key (s2c) instead of ours
  oversize  handshake, then a frame length over the protocol's maximum
  badmsg    handshake, then a well-tagged frame holding one record with a
            malformed message (the node drops and counts it; the session
            stays open)
  badbatch  handshake, then a well-tagged frame whose one record claims
            more bytes than the frame holds (the node closes the session)
  garbage   48 bytes that are not a HELLO (nor the start of one)
  silent    connect and send nothing
Each mode ends by printing "closed after S s" or "open after S s".
"""
import hashlib
import os
import socket
import struct
import sys
import time

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

WIRE_VERSION = 4
HELLO_BYTES = 56
PAYLOAD_MAX = 4 + 40 + 64 + 1024 + 1936 + (1 << 20) + 1024


def key_from_secret(secret):
    return hashlib.blake2b(secret, digest_size=32, person=b"dynvme-wire-k1").digest()


def mac(key, n, *parts):
    h = hashlib.blake2b(digest_size=n, key=key)
    for p in parts:
        h.update(p)
    return h.digest()


def recv_exact(s, n, timeout):
    s.settimeout(timeout)
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            return None
        b += d
    return b


def wait_closed(s, secs):
    """True when the node closes the connection within secs."""
    end = time.time() + secs
    while time.time() < end:
        s.settimeout(max(0.05, end - time.time()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not d:
            return True
    return False


def frame(k_send, seq, payload, tag_ok=True):
    """u32 len | payload | tag: ChaCha20-Poly1305 (IETF) of an empty plaintext,
    associated data u32 len | payload, nonce u64 seq | u32 0."""
    head = struct.pack("<I", len(payload))
    tag = ChaCha20Poly1305(k_send).encrypt(struct.pack("<QI", seq, 0), b"", head + payload)
    if not tag_ok:
        tag = bytes([tag[0] ^ 1]) + tag[1:]
    return head + payload + tag


def main():
    port, secret_file, cid, my_id, expect, mode = sys.argv[1:7]
    port, my_id, expect, cid = int(port), int(my_id), int(expect), int(cid, 16)
    secret = open(secret_file, "rb").read().rstrip(b"\r\n \t")
    key = key_from_secret(secret)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    t0 = time.time()
    if mode == "garbage":
        s.sendall(b"GET / HTTP/1.1\r\n" + b"x" * 32)
    elif mode != "silent":
        ring = int(os.environ.get("WIRE_RING", "0"), 16)
        hello_c = b"DYNW" + struct.pack("<HHQQ", WIRE_VERSION, my_id, cid, ring) + bytes(range(32))
        s.sendall(hello_c)
        got = recv_exact(s, HELLO_BYTES + 32, 5)
        if got is None:
            print("closed before HELLO_S")
            return
        hello_s, proof_s = got[:HELLO_BYTES], got[HELLO_BYTES:]
        if mac(key, 32, b"acceptor", hello_c, hello_s) == proof_s:
            print("proof_s ok")
        else:
            print("proof_s wrong")
        proof_c = mac(key, 32, b"connector", hello_c, hello_s, proof_s)
        k_c2s = mac(key, 32, b"c2s", hello_c, hello_s, proof_s)
        k_s2c = mac(key, 32, b"s2c", hello_c, hello_s, proof_s)
        bad = struct.pack("<I", 40) + b"\0" * 40  # one record: a malformed message
        out = proof_c
        if mode == "badtag":
            out += frame(k_c2s, 0, b"\0" * 40, tag_ok=False)
        elif mode == "oversize":
            out += struct.pack("<I", PAYLOAD_MAX + 1)
        elif mode == "badmsg":
            out += frame(k_c2s, 0, struct.pack("<I", 40) + b"\0" * 40)
        elif mode == "replay":
            out += frame(k_c2s, 0, bad) + frame(k_c2s, 0, bad)
        elif mode == "reorder":
            out += frame(k_c2s, 1, bad) + frame(k_c2s, 0, bad)
        elif mode == "otherdir":
            out += frame(k_s2c, 0, bad)
        elif mode == "badbatch":
            out += frame(k_c2s, 0, struct.pack("<I", 41) + b"\0" * 40)
        s.sendall(out)
        if mode == "hello":
            print("closed" if wait_closed(s, 1.0) else "accepted")
    closed = wait_closed(s, 6.0)
    print("%s after %.1f s" % ("closed" if closed else "open", time.time() - t0))
    s.close()


if __name__ == "__main__":
    main()
