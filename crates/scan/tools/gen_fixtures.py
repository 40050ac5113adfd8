#!/usr/bin/env python3
"""Generate model-file fixtures for `tollgate scan` tests, fuzz seeds and demos.

Writes benign and malicious pickles, PyTorch-style zips with the known zip tricks, a
safetensors file and broken variants, and GGUF files, into OUT_DIR (default ./fixtures-out).
Nothing is ever unpickled or loaded: pickles are written opcode by opcode, so this script is
safe to run anywhere. Standard library only.

    python3 crates/scan/tools/gen_fixtures.py OUT_DIR
"""
import json
import os
import struct
import sys
import zipfile
import zlib


def global_reduce(module: str, name: str, arg: str, proto: int = 4) -> bytes:
    """A pickle that calls module.name(arg) on load (STACK_GLOBAL for proto >= 4)."""
    if proto < 2:
        return f"c{module}\n{name}\n(S'{arg}'\ntR.".encode()
    def su(s: str) -> bytes:
        b = s.encode()
        return b"\x8c" + bytes([len(b)]) + b
    body = b"\x80" + bytes([proto])
    if proto >= 4:
        body += su(module) + su(name) + b"\x93"
    else:
        body += f"c{module}\n{name}\n".encode()
    return body + su(arg) + b"\x85R."


def write(out: str, rel: str, data: bytes) -> None:
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def torch_zip(members: dict) -> bytes:
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "fixtures-out"
    benign = b"\x80\x04]\x94(K\x01K\x02e."
    evil = global_reduce("posix", "system", "id")
    write(out, "benign/list.pkl", benign)
    for proto in range(0, 6):
        write(out, f"malicious/os_system_p{proto}.pkl", global_reduce("os", "system", "id", proto))
    write(out, "malicious/pip_main.pkl", global_reduce("pip", "main", "install"))
    write(out, "malicious/two_pickles.pkl", benign + evil)
    write(out, "malicious/raw_pickle.txt", global_reduce("os", "system", "id", 0))
    z = torch_zip({"archive/data.pkl": evil, "archive/version": b"3\n"})
    write(out, "malicious/torch_zip.pt", z)
    # Local header name differs from the central directory name (CVE-2025-1944).
    write(out, "malicious/zip_name_mismatch.pt", z.replace(b"archive/data.pkl", b"archive/datap.kl", 1))
    # Encryption flag in the local and central headers (CVE-2025-1945).
    flagged = bytearray(z)
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        i = flagged.find(sig)
        off = 6 if sig == b"PK\x03\x04" else 8
        flagged[i + off] |= 1
    write(out, "malicious/zip_flag_bits.pt", bytes(flagged))
    # Payload edited after zipping: CRC mismatch (CVE-2025-10156).
    write(out, "malicious/zip_bad_crc.pt", z.replace(b"system", b"systen", 1))
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    write(out, "benign/model.safetensors", struct.pack("<Q", len(header)) + header + b"\0" * 16)
    write(out, "invalid/st_len_past_eof.safetensors", struct.pack("<Q", 10_000) + header + b"\0" * 16)
    bad = json.dumps({"w": {"dtype": "F32", "shape": [3, 3], "data_offsets": [0, 16]}}).encode()
    write(out, "invalid/st_shape.safetensors", struct.pack("<Q", len(bad)) + bad + b"\0" * 16)

    def gguf(template: str) -> bytes:
        key = b"tokenizer.chat_template"
        t = template.encode()
        return (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
                + struct.pack("<I", 8) + struct.pack("<Q", len(t)) + t)
    write(out, "benign/tiny.gguf", gguf("{% for m in messages %}{{ m.content }}{% endfor %}"))
    write(out, "malicious/ssti.gguf", gguf("{{ cycler.__init__.__globals__.os.popen('id').read() }}"))
    print(f"fixtures written to {out} (crc of evil pickle {zlib.crc32(evil):08x})")


if __name__ == "__main__":
    main()
