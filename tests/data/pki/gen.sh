#!/bin/sh
# Regenerates the fixtures of tests/unit/test_pki.c (throwaway test keys):
# a root -> intermediate -> leaf PKI with an RSA and an EC leaf, a
# self-signed leaf, and the secrets Key Vault would hold for them.
# Run from this directory with Debian's python3 (python3-cryptography).
set -eu
days=36500
openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -subj "/CN=kvfs unit Root CA" \
	-days $days -addext basicConstraints=critical,CA:true -addext keyUsage=keyCertSign,cRLSign -out root.pem
openssl req -newkey rsa:2048 -nodes -keyout inter.key -subj "/O=kvfs unit/CN=kvfs unit Intermediate CA" -out inter.csr
printf 'basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > ca.ext
openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days $days -extfile ca.ext -out inter.pem
printf 'basicConstraints=CA:false\nsubjectAltName=DNS:www.unit.test\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > leaf.ext
openssl req -newkey rsa:2048 -nodes -keyout rsa.key -subj "/C=DE/O=kvfs, unit/CN=www.unit.test" -out rsa.csr
openssl x509 -req -in rsa.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days $days -extfile leaf.ext -out rsa-leaf.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key
openssl req -new -key ec.key -subj "/CN=api.unit.test" -out ec.csr
openssl x509 -req -in ec.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days $days -extfile leaf.ext -out ec-leaf.pem
openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key -subj "/CN=self.unit.test" -days $days -out self-leaf.pem
for l in rsa ec self; do openssl x509 -in $l-leaf.pem -outform DER -out $l-leaf.der; done
# PEM secrets: Key Vault's order, a reversed chain, a key of another certificate
cat rsa.key rsa-leaf.pem inter.pem > rsa-secret.pem
openssl pkcs8 -topk8 -nocrypt -in rsa.key > rsa.p8
cat rsa.p8 root.pem inter.pem rsa-leaf.pem > rsa-reversed.pem
cat ec.key inter.pem rsa-leaf.pem > mismatch.pem
# PKCS#12: Key Vault's (NULL password, SHA-1/3DES), and a key-less one
/usr/bin/python3 - <<'PY'
import base64, sys
sys.path.insert(0, "../../fakeazure")
import pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import serialization
load = lambda p: x509.load_pem_x509_certificate(open(p, "rb").read())
key = serialization.load_pem_private_key(open("ec.key", "rb").read(), None)
skey = serialization.load_pem_private_key(open("self.key", "rb").read(), None)
open("ec-secret.p12.b64", "w").write(base64.b64encode(
    pkcs12.build(key, load("ec-leaf.pem"), [load("inter.pem"), load("root.pem")])).decode())
open("rsa-nokey.p12.b64", "w").write(base64.b64encode(
    pkcs12.build(None, load("rsa-leaf.pem"), [load("inter.pem")])).decode())
open("self-secret.p12.b64", "w").write(base64.b64encode(
    pkcs12.build(skey, load("self-leaf.pem"))).decode())
PY
# PKCS#12 with too many PBKDF iterations: the MAC's and the bags' (250,000),
# and the bags' alone (the MAC at 1)
openssl pkcs12 -export -inkey self.key -in self-leaf.pem -passout pass: -iter 250000 |
	base64 -w0 > self-iter.p12.b64
openssl pkcs12 -export -inkey self.key -in self-leaf.pem -passout pass: -iter 250000 -nomaciter |
	base64 -w0 > self-iter-bags.p12.b64
# what the extended attributes must show of rsa-leaf
openssl x509 -in rsa-leaf.pem -noout -subject -nameopt RFC2253 | sed 's/^subject=//' > rsa-leaf.subject
openssl dgst -sha256 -r rsa-leaf.der | cut -d' ' -f1 > rsa-leaf.sha256
openssl dgst -sha1 -binary rsa-leaf.der | basenc --base64url | tr -d '=' > rsa-leaf.x5t
rm -f *.csr *.ext *.srl inter.key root.key rsa.p8
