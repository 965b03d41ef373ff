"""Fails unless the wheel's shared libraries are a lean set: at most
LIMIT of them besides the extension module, none of them network code
(libcurl and what it pulls in: TLS, Kerberos, LDAP, SSH...), and a licence
text in .dist-info/licenses for each library auditwheel vendored.

    python vendored_set.py WHEEL [LIMIT]
"""

import re
import sys
import zipfile

NETWORK = re.compile(r"lib(curl|ssl|crypto|gnutls|nettle|hogweed|gssapi|krb5|k5crypto|ldap|lber|"
                     r"sasl|ssh|rtmp|nghttp|psl|idn2|brotli)[-_.]")


def main(wheel: str, limit: str = "12") -> int:
    names = zipfile.ZipFile(wheel).namelist()
    libraries = [n for n in names if ".so" in n.rsplit("/", 1)[-1]
                 and not n.rsplit("/", 1)[-1].startswith("_core.")]
    vendored = [n for n in libraries if ".libs/" in n]
    licences = [n for n in names if ".dist-info/licenses/" in n]
    problems = []
    if len(libraries) > int(limit):
        problems.append(f"{len(libraries)} shared libraries, more than {limit}")
    network = [n for n in libraries if NETWORK.search(n.rsplit("/", 1)[-1])]
    if network:
        problems.append(f"network libraries: {', '.join(network)}")
    if len(licences) < len(vendored):
        problems.append(f"{len(vendored)} vendored libraries but {len(licences)} licence texts")
    print(f"{len(libraries)} shared libraries ({len(vendored)} vendored by auditwheel), "
          f"{len(licences)} licence texts", file=sys.stderr)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
