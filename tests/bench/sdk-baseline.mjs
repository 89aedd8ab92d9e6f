/*
 * Baseline (b): the official Azure SDK for JavaScript doing the job kvfs
 * does -- list the vault's certificates, get each one, write its `cer` out
 * as a PEM file.  With CONCURRENCY 1 the GETs go one after the other, as an
 * administrator's loop would; with more, that many are in flight at once.
 *
 *   NODE_EXTRA_CA_CERTS=<fake ca_file> node sdk-baseline.mjs INFO_JSON OUTDIR [CONCURRENCY]
 *
 * The packages are those of tests/sdk (npm ci --prefix tests/sdk).  The SDK
 * keeps its default retry policy: this is the client as shipped.  Prints
 * one JSON object: {"certificates", "written", "errors", "seconds"}.
 */
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const require = createRequire(new URL("../sdk/package.json", import.meta.url));
const { ClientSecretCredential } = require("@azure/identity");
const { CertificateClient } = require("@azure/keyvault-certificates");

const [infoPath, outDir, concArg] = process.argv.slice(2);
if (!infoPath || !outDir) {
	console.error("usage: node sdk-baseline.mjs INFO_JSON OUTDIR [CONCURRENCY]");
	process.exit(2);
}
const concurrency = Math.max(1, Number(concArg ?? 1));
const info = JSON.parse(readFileSync(infoPath, "utf8"));
const app = info.apps.secret;
const t0 = performance.now();

function pem(der) {
	const b64 = Buffer.from(der).toString("base64");
	const lines = b64.match(/.{1,64}/g) ?? [];
	return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

const credential = new ClientSecretCredential(info.tenant, app.client_id,
	readFileSync(app.secret_file, "utf8").trim(),
	{ authorityHost: info.authority, disableInstanceDiscovery: true });
const client = new CertificateClient(info.vault_url, credential,
	{ disableChallengeResourceVerification: true, serviceVersion: "7.4" });

mkdirSync(outDir, { recursive: true });
const names = [];
for await (const props of client.listPropertiesOfCertificates())
	names.push(props.name);

let next = 0, written = 0, errors = 0;
async function worker() {
	while (next < names.length) {
		const name = names[next++];
		try {
			const cert = await client.getCertificate(name);
			writeFileSync(join(outDir, `${name}.pem`), pem(cert.cer));
			written++;
		} catch (err) {
			errors++;
			if (errors <= 3)
				console.error(`sdk-baseline: ${name}: ${err.message}`);
		}
	}
}
await Promise.all(Array.from({ length: concurrency }, worker));

console.log(JSON.stringify({ certificates: names.length, written, errors, concurrency,
	seconds: (performance.now() - t0) / 1000 }));
