#!/usr/bin/env node
/*
 * fidelity.mjs: checks kvfs's fake Azure (tests/fakeazure) with the official
 * Azure SDK for JavaScript. If the official client cannot use the fake, the
 * fake is wrong.
 *
 *   node tests/sdk/fidelity.mjs [--only PHASE[,PHASE...]] STATE_DIR/info.json
 *
 * Phases: secret, cert (ClientSecretCredential, ClientCertificateCredential:
 * the full check), collections (SecretClient and KeyClient on the secrets and
 * keys collections: listings across pages, values, JWKs, versions, disabled,
 * certificate-backed ones, the reader app refused), workload
 * (WorkloadIdentityCredential), rbac (the reader and nolist apps get RBAC
 * 403s), imds, appservice (ManagedIdentityCredential).
 * Default: all of them, in that order. Opt-in: foreign (injects a
 * foreign_nextlink fault through the control API and records whether the SDK
 * follows the nextLink to the foreign origin, and with its token).
 *
 * The SDK's retries are switched off (maxRetries 0): a fake that needs a
 * retry to answer a plain request is not faithful, and a broken fake then
 * fails in seconds rather than minutes.
 *
 * The fake's CA must be trusted through NODE_EXTRA_CA_CERTS, which Node reads
 * only at start-up; when it does not name info.ca_file the script re-runs
 * itself with it set. MSAL keeps the managed identity source and its token
 * cache in static fields, so each managed identity phase runs in a child
 * process with its own environment.
 *
 * Every check prints one line, "PASS <check>" or "FAIL <check>: <why>".
 * Exit status: 0 all passed, 1 a check failed, 2 usage or set-up error.
 * FIDELITY_DEBUG=1 adds stack traces on stderr; AZURE_LOG_LEVEL=info shows
 * the SDK's own request log.
 */

import { spawnSync } from "node:child_process";
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import {
	ClientCertificateCredential,
	ClientSecretCredential,
	ManagedIdentityCredential,
	WorkloadIdentityCredential,
} from "@azure/identity";
import { CertificateClient } from "@azure/keyvault-certificates";
import { KeyClient } from "@azure/keyvault-keys";
import { SecretClient } from "@azure/keyvault-secrets";

const ALL_PHASES = ["secret", "cert", "collections", "workload", "rbac", "imds", "appservice"];
const NO_RETRY = { maxRetries: 0 };
const OPT_IN_PHASES = ["foreign"];
const CHILD_PHASES = new Set(["imds", "appservice"]);
const MISSING_NAME = "kvfs-fidelity-no-such-certificate";
const SELF = fileURLToPath(import.meta.url);
const CHILD_MARK = "KVFS_FIDELITY_CHILD";

/* Environment variables that select an identity source or a credential; the
 * managed identity children start from an environment without any of them. */
const IDENTITY_ENV = [
	"AZURE_POD_IDENTITY_AUTHORITY_HOST", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
	"IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET",
	"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
	"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE",
	"AZURE_AUTHORITY_HOST", "DEFAULT_IDENTITY_CLIENT_ID",
];

let failures = 0;
let lastError;

function pass(name, detail) {
	console.log(`PASS ${name}${detail ? ` (${detail})` : ""}`);
}

function fail(name, why) {
	failures++;
	console.log(`FAIL ${name}: ${why}`);
}

/* A CheckError carries the reason of a failed expectation. */
class CheckError extends Error {}

function expect(cond, why) {
	if (!cond)
		throw new CheckError(why);
}

function describeError(err) {
	if (err instanceof CheckError)
		return err.message;
	const parts = [];
	if (err?.name)
		parts.push(err.name);
	if (err?.statusCode !== undefined)
		parts.push(`HTTP ${err.statusCode}`);
	if (err?.code !== undefined)
		parts.push(`code ${err.code}`);
	const inner = innerCode(err);
	if (inner)
		parts.push(`innererror ${inner}`);
	if (err?.request?.url)
		parts.push(`${err.request.method ?? "GET"} ${err.request.url}`);
	let msg = String(err?.message ?? err).replace(/\s+/g, " ").trim();
	if (msg.length > 600)
		msg = msg.slice(0, 600) + "...";
	parts.push(`"${msg}"`);
	if (err?.cause && !(err instanceof CheckError))
		parts.push(`cause: ${String(err.cause?.message ?? err.cause).replace(/\s+/g, " ").slice(0, 300)}`);
	return parts.join(", ");
}

function isAuthError(err) {
	return /Authentication|CredentialUnavailable/.test(err?.name ?? "");
}

function innerCode(err) {
	return err?.details?.error?.innerError?.code ??
		err?.details?.error?.innererror?.code;
}

/* Runs one check; returns its value, or undefined when it failed. */
async function check(name, fn) {
	try {
		const result = await fn();
		pass(name, typeof result === "string" ? result : result?.detail);
		return result ?? true;
	} catch (err) {
		lastError = err;
		fail(name, describeError(err));
		if (process.env.FIDELITY_DEBUG && !(err instanceof CheckError))
			console.error(err);
		return undefined;
	}
}

/* Collects several mismatches and fails once, listing the first few. */
class Mismatches {
	constructor() { this.items = []; }
	add(what) { this.items.push(what); }
	throwIfAny(total, noun) {
		if (this.items.length === 0)
			return;
		const shown = this.items.slice(0, 8).join("; ");
		const more = this.items.length > 8 ? `; and ${this.items.length - 8} more` : "";
		throw new CheckError(`${this.items.length} of ${total} ${noun} differ: ${shown}${more}`);
	}
}

/* ---------------------------------------------------------------- state --- */

async function controlCall(info, method, path, body) {
	const url = new URL(path, info.control_url.replace(/\/?$/, "/"));
	const res = await fetch(url, {
		method,
		headers: body === undefined ? {} : { "Content-Type": "application/json" },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	if (!res.ok)
		throw new Error(`control API ${method} ${url}: HTTP ${res.status} ${await res.text()}`);
	return res.json();
}

function controlGet(info, path) {
	return controlCall(info, "GET", path);
}

function latestVersion(sc) {
	const versions = sc.versions ?? [];
	if (typeof sc.latest === "string") {
		const v = versions.find((x) => x.version.toLowerCase() === sc.latest.toLowerCase());
		if (v)
			return v;
	} else if (typeof sc.latest === "number" && versions[sc.latest]) {
		return versions[sc.latest];
	} else if (sc.latest && typeof sc.latest === "object" && sc.latest.version) {
		return versions.find((x) => x.version === sc.latest.version) ?? sc.latest;
	}
	return versions[versions.length - 1];
}

function b64(s) {
	return Buffer.from(s, "base64");
}

function x5tOf(der) {
	return createHash("sha1").update(der).digest("base64url");
}

function unixOf(date) {
	return date instanceof Date ? Math.round(date.getTime() / 1000) : date;
}

function sameTags(a, b) {
	const norm = (t) => JSON.stringify(Object.entries(t ?? {}).sort());
	return norm(a) === norm(b);
}

function fmtTags(t) {
	return JSON.stringify(t ?? {});
}

/* Compares what the SDK made of a list item or bundle with the fake's state. */
function compareProperties(props, sc, ver, mm, where) {
	const tag = `${sc.name}${where}`;
	if (props.name !== sc.name)
		mm.add(`${tag}: name ${props.name}`);
	if (props.enabled !== sc.enabled)
		mm.add(`${tag}: enabled ${props.enabled}, state ${sc.enabled}`);
	const thumb = props.x509Thumbprint ? Buffer.from(props.x509Thumbprint).toString("base64url") : undefined;
	if (thumb !== ver.x5t)
		mm.add(`${tag}: x5t ${thumb}, state ${ver.x5t}`);
	if (!sameTags(props.tags, sc.tags))
		mm.add(`${tag}: tags ${fmtTags(props.tags)}, state ${fmtTags(sc.tags)}`);
	for (const [sdk, st] of [["notBefore", "nbf"], ["expiresOn", "exp"],
		["createdOn", "created"], ["updatedOn", "updated"]]) {
		const want = ver[st] ?? sc[st];
		if (want !== undefined && unixOf(props[sdk]) !== want)
			mm.add(`${tag}: ${st} ${unixOf(props[sdk])}, state ${want}`);
	}
}

/* ------------------------------------------------------- PEM and PKCS#12 --- */

function pemBlocks(text) {
	const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
	const out = [];
	for (const m of text.matchAll(re))
		out.push({ type: m[1], pem: m[0] + "\n", index: m.index });
	return out;
}

function spkiOf(keyObject) {
	return keyObject.export({ type: "spki", format: "der" });
}

/* Checks a private key against a certificate two ways. */
function keyMatches(keyPem, cert) {
	const key = createPrivateKey(keyPem);
	return cert.checkPrivateKey(key) &&
		spkiOf(createPublicKey(key)).equals(spkiOf(cert.publicKey));
}

/* Opens a PFX with OpenSSL, as kvfs will, and returns the PEM it prints. */
function pkcs12ToPem(der) {
	const r = spawnSync("openssl", ["pkcs12", "-passin", "pass:", "-nodes"], {
		input: der, maxBuffer: 16 << 20,
	});
	if (r.error)
		throw new CheckError(`cannot run openssl: ${r.error.message}`);
	if (r.status !== 0)
		throw new CheckError(`openssl pkcs12 -passin pass: failed: ${r.stderr.toString().trim().split("\n")[0]}`);
	return r.stdout.toString();
}

/*
 * Parses a certificate's secret as its content type says and checks it
 * against the fake's state: the leaf equals the certificate's cer, and the
 * private key is there and matches it (or is absent for a non-exportable key).
 * Returns { key, certs } for further checks.
 */
function checkSecretValue(secret, sc, ver) {
	const value = secret.value;
	expect(typeof value === "string" && value.length > 0, "secret has no value");
	let pem;
	if (sc.content_type === "application/x-pkcs12") {
		expect(/^[A-Za-z0-9+/]+={0,2}$/.test(value),
			"PKCS#12 value is not standard base64 on one line");
		pem = pkcs12ToPem(b64(value));
	} else {
		pem = value;
	}
	const blocks = pemBlocks(pem);
	const keys = blocks.filter((b) => b.type.endsWith("PRIVATE KEY"));
	const certs = blocks.filter((b) => b.type === "CERTIFICATE").map((b) => new X509Certificate(b.pem));
	const leafDer = b64(ver.cer);
	expect(certs.length > 0, "secret holds no certificate");
	const leaf = certs.find((c) => c.raw.equals(leafDer));
	expect(leaf, `no certificate in the secret equals the bundle's cer (x5t ${ver.x5t})`);
	if (sc.exportable === false) {
		expect(keys.length === 0, "non-exportable certificate's secret contains a private key");
		return { key: null, certs, blocks, leaf };
	}
	expect(keys.length === 1, `expected 1 private key in the secret, found ${keys.length}`);
	expect(keyMatches(keys[0].pem, leaf), "private key does not match the certificate");
	return { key: keys[0], certs, blocks, leaf };
}

/* ------------------------------------------------------------- helpers --- */

async function expectRestError(promise, status, code, inner) {
	let result;
	try {
		result = await promise;
	} catch (err) {
		expect(err?.statusCode === status,
			`expected HTTP ${status}, got ${describeError(err)}`);
		if (code)
			expect(err.code === code, `expected code ${code}, got ${err.code}`);
		if (inner)
			expect(innerCode(err) === inner,
				`expected innererror ${inner}, got ${innerCode(err)} (details ${JSON.stringify(err.details)})`);
		return `HTTP ${status} ${err.code}${inner ? `/${innerCode(err)}` : ""}`;
	}
	throw new CheckError(`expected HTTP ${status}, but the call succeeded (${JSON.stringify(result).slice(0, 120)})`);
}

function clientOptions(serviceVersion) {
	const o = { disableChallengeResourceVerification: true, retryOptions: NO_RETRY };
	if (serviceVersion)
		o.serviceVersion = serviceVersion;
	return o;
}

function credentialOptions(info) {
	return { authorityHost: info.authority, disableInstanceDiscovery: true, retryOptions: NO_RETRY };
}

/* ------------------------------------------------------------- phases --- */

/*
 * The full check, run once per confidential-client credential. The first
 * vault request of each client is the unauthenticated one answered by the
 * 401 challenge.
 */
async function fullPhase(label, credential, info, state, serviceVersion) {
	const apiv = serviceVersion ?? "SDK default api-version";
	const certClient = new CertificateClient(info.vault_url, credential, clientOptions(serviceVersion));
	const secretClient = new SecretClient(info.vault_url, credential, clientOptions(serviceVersion));
	const byName = new Map(state.certificates.map((c) => [c.name, c]));
	const P = (what) => `${label}: ${what}`;

	const listed = await check(P(`list certificates, all pages (${apiv})`), async () => {
		const items = [];
		let pages = 0;
		for await (const page of certClient.listPropertiesOfCertificates().byPage()) {
			pages++;
			expect(page.length <= 25, `page ${pages} has ${page.length} items, more than 25`);
			items.push(...page);
		}
		const got = items.map((p) => p.name).sort();
		const want = [...byName.keys()].sort();
		const dup = got.filter((n, i) => got[i - 1] === n);
		expect(dup.length === 0, `names listed twice: ${dup.slice(0, 5).join(", ")}`);
		const missing = want.filter((n) => !got.includes(n));
		const extra = got.filter((n) => !byName.has(n));
		expect(missing.length === 0 && extra.length === 0,
			`listing differs from /state: missing [${missing.slice(0, 8).join(", ")}] extra [${extra.slice(0, 8).join(", ")}]`);
		expect(pages >= Math.ceil(want.length / 25),
			`${want.length} certificates came in ${pages} pages; with at most 25 a page that needs ${Math.ceil(want.length / 25)}`);
		expect(pages > 1, "the listing did not span several pages");
		return { items, pages, detail: `${items.length} certificates in ${pages} pages` };
	});
	if (!listed && isAuthError(lastError)) {
		fail(label, "no token, so the remaining checks of this credential were skipped");
		return;
	}
	if (listed) {
		await check(P("list items match /state (enabled, x5t, tags, nbf, exp, created, updated)"), () => {
			const mm = new Mismatches();
			for (const props of listed.items) {
				const sc = byName.get(props.name);
				expect(props.version === undefined,
					`list item ${props.name} has a version in its id (${props.id})`);
				compareProperties(props, sc, latestVersion(sc), mm, " (list)");
			}
			mm.throwIfAny(listed.items.length, "list items");
		});
	}

	await check(P("list with maxresults=7 follows nextLink to the end"), async () => {
		const names = [];
		let pages = 0;
		for await (const page of certClient.listPropertiesOfCertificates({ maxresults: 7 }).byPage()) {
			pages++;
			expect(page.length <= 7, `page ${pages} has ${page.length} items with maxresults=7`);
			names.push(...page.map((p) => p.name));
		}
		expect(names.length === byName.size,
			`got ${names.length} certificates, /state has ${byName.size}`);
		expect(pages >= Math.ceil(byName.size / 7), `only ${pages} pages`);
		return `${pages} pages`;
	});

	await check(P("get every certificate (latest): cer, x5t, enabled, tags, version, policy"), async () => {
		const mm = new Mismatches();
		for (const sc of state.certificates) {
			const ver = latestVersion(sc);
			let cert;
			try {
				cert = await certClient.getCertificate(sc.name);
			} catch (err) {
				mm.add(`${sc.name}: ${describeError(err)}`);
				continue;
			}
			const der = Buffer.from(cert.cer ?? []);
			if (!der.equals(b64(ver.cer)))
				mm.add(`${sc.name}: cer differs from state's latest version`);
			else if (x5tOf(der) !== ver.x5t)
				mm.add(`${sc.name}: state x5t ${ver.x5t} is not SHA-1 of cer (${x5tOf(der)})`);
			if (cert.properties.version !== ver.version)
				mm.add(`${sc.name}: version ${cert.properties.version}, state latest ${ver.version}`);
			compareProperties(cert.properties, sc, ver, mm, "");
			const x = der.length ? new X509Certificate(der) : null;
			if (x) {
				const nbf = Math.round(Date.parse(x.validFrom) / 1000);
				const exp = Math.round(Date.parse(x.validTo) / 1000);
				if (unixOf(cert.properties.notBefore) !== nbf || unixOf(cert.properties.expiresOn) !== exp)
					mm.add(`${sc.name}: attributes nbf/exp ${unixOf(cert.properties.notBefore)}/${unixOf(cert.properties.expiresOn)} are not the X.509 validity ${nbf}/${exp}`);
			}
			const idTail = `/certificates/${sc.name}/${ver.version}`;
			if (!cert.properties.id?.toLowerCase().endsWith(idTail.toLowerCase()))
				mm.add(`${sc.name}: id ${cert.properties.id} does not end in ${idTail}`);
			const sidTail = `/secrets/${sc.name}/${ver.version}`;
			if (!cert.secretId?.toLowerCase().endsWith(sidTail.toLowerCase()))
				mm.add(`${sc.name}: sid ${cert.secretId} does not end in ${sidTail}`);
			const pol = cert.policy ?? {};
			if (sc.content_type && pol.contentType !== sc.content_type)
				mm.add(`${sc.name}: policy contentType ${pol.contentType}, state ${sc.content_type}`);
			if (sc.exportable !== undefined && pol.exportable !== sc.exportable)
				mm.add(`${sc.name}: policy exportable ${pol.exportable}, state ${sc.exportable}`);
			if (sc.kty && pol.keyType !== sc.kty)
				mm.add(`${sc.name}: policy keyType ${pol.keyType}, state ${sc.kty}`);
		}
		mm.throwIfAny(state.certificates.length, "certificates");
		return `${state.certificates.length} certificates`;
	});

	await check(P("get certificate by explicit version (www)"), async () => {
		const sc = byName.get("www");
		expect(sc, "no 'www' in /state");
		const ver = latestVersion(sc);
		const cert = await certClient.getCertificateVersion("www", ver.version);
		expect(Buffer.from(cert.cer).equals(b64(ver.cer)), "cer differs from state");
		expect(cert.properties.version === ver.version, `version ${cert.properties.version}`);
	});

	await check(P("certificate names are case-insensitive (WWW)"), async () => {
		const sc = byName.get("www");
		expect(sc, "no 'www' in /state");
		const cert = await certClient.getCertificate("WWW");
		expect(Buffer.from(cert.cer).equals(b64(latestVersion(sc).cer)), "cer of 'WWW' differs from 'www'");
	});

	await check(P("list versions of mail: 3 versions equal /state"), async () => {
		const sc = byName.get("mail");
		expect(sc, "no 'mail' in /state");
		expect(sc.versions.length === 3, `/state has ${sc.versions.length} versions of mail, not 3`);
		const items = [];
		for await (const props of certClient.listPropertiesOfCertificateVersions("mail"))
			items.push(props);
		const got = items.map((p) => p.version?.toLowerCase()).sort();
		const want = sc.versions.map((v) => v.version.toLowerCase()).sort();
		expect(JSON.stringify(got) === JSON.stringify(want),
			`versions [${got.join(", ")}], state [${want.join(", ")}]`);
		const mm = new Mismatches();
		for (const props of items) {
			const ver = sc.versions.find((v) => v.version.toLowerCase() === props.version.toLowerCase());
			const thumb = props.x509Thumbprint ? Buffer.from(props.x509Thumbprint).toString("base64url") : undefined;
			if (thumb !== ver.x5t)
				mm.add(`${props.version}: x5t ${thumb}, state ${ver.x5t}`);
			if (props.name !== "mail")
				mm.add(`${props.version}: name ${props.name}`);
			const cert = await certClient.getCertificateVersion("mail", props.version);
			if (!Buffer.from(cert.cer).equals(b64(ver.cer)))
				mm.add(`${props.version}: cer of this version differs from state`);
		}
		mm.throwIfAny(items.length, "versions");
		return `${items.length} versions`;
	});

	await check(P("list versions of mail with maxresults=1 follows nextLink"), async () => {
		const sc = byName.get("mail");
		expect(sc, "no 'mail' in /state");
		const got = [];
		let pages = 0;
		for await (const page of certClient.listPropertiesOfCertificateVersions("mail", { maxresults: 1 }).byPage()) {
			pages++;
			expect(page.length <= 1, `page ${pages} has ${page.length} items with maxresults=1`);
			got.push(...page.map((p) => p.version.toLowerCase()));
		}
		const want = sc.versions.map((v) => v.version.toLowerCase());
		expect(JSON.stringify(got.sort()) === JSON.stringify(want.sort()),
			`versions [${got.join(", ")}], state [${want.join(", ")}]`);
		expect(pages >= want.length, `${want.length} versions in only ${pages} pages`);
		return `${pages} pages`;
	});

	await check(P("www secret is PEM: key first, then leaf, then issuers; key matches"), async () => {
		const sc = byName.get("www");
		expect(sc, "no 'www' in /state");
		expect(sc.content_type === "application/x-pem-file", `/state says www is ${sc.content_type}`);
		const ver = latestVersion(sc);
		const secret = await secretClient.getSecret("www");
		expect(secret.properties.contentType === "application/x-pem-file",
			`contentType ${secret.properties.contentType}`);
		expect(secret.properties.version === ver.version,
			`secret version ${secret.properties.version}, certificate ${ver.version}`);
		expect(secret.properties.managed === true, `managed is ${secret.properties.managed}, not true`);
		expect(secret.properties.certificateKeyId, "secret has no kid");
		const { blocks, certs } = checkSecretValue(secret, sc, ver);
		expect(blocks[0].type === "PRIVATE KEY", `first PEM block is ${blocks[0].type}, not PRIVATE KEY (PKCS#8)`);
		expect(certs[0].raw.equals(b64(ver.cer)), "first certificate is not the leaf");
		for (let i = 1; i < certs.length; i++)
			expect(certs[i - 1].checkIssued(certs[i]),
				`certificate ${i + 1} (${certs[i].subject.replace(/\n/g, ",")}) did not issue certificate ${i}`);
		expect(!secret.value.includes("\r"), "PEM has CR line endings");
		expect(secret.value.endsWith("\n"), "PEM does not end with a newline");
		return `key + ${certs.length} certificates`;
	});

	await check(P("api secret is PKCS#12 (empty password): key matches"), async () => {
		const sc = byName.get("api");
		expect(sc, "no 'api' in /state");
		expect(sc.content_type === "application/x-pkcs12", `/state says api is ${sc.content_type}`);
		const ver = latestVersion(sc);
		const secret = await secretClient.getSecret("api");
		expect(secret.properties.contentType === "application/x-pkcs12",
			`contentType ${secret.properties.contentType}`);
		const { certs, key } = checkSecretValue(secret, sc, ver);
		const kt = createPrivateKey(key.pem).asymmetricKeyType;
		if (sc.kty)
			expect(sc.kty.startsWith("EC") === (kt === "ec"), `key type ${kt}, state kty ${sc.kty}`);
		return `${kt} key + ${certs.length} certificates`;
	});

	await check(P("secrets of all enabled certificates: leaf equals cer, key matches (none if non-exportable)"), async () => {
		const mm = new Mismatches();
		let n = 0;
		for (const sc of state.certificates) {
			if (!sc.enabled)
				continue;
			n++;
			const ver = latestVersion(sc);
			try {
				const secret = await secretClient.getSecret(sc.name);
				if (secret.properties.contentType !== sc.content_type)
					throw new CheckError(`contentType ${secret.properties.contentType}, state ${sc.content_type}`);
				checkSecretValue(secret, sc, ver);
			} catch (err) {
				mm.add(`${sc.name}: ${describeError(err)}`);
			}
		}
		mm.throwIfAny(n, "secrets");
		return `${n} secrets`;
	});

	await check(P("disabled-cert: certificate is 200 with enabled=false"), async () => {
		const cert = await certClient.getCertificate("disabled-cert");
		expect(cert.properties.enabled === false, `enabled is ${cert.properties.enabled}`);
	});

	await check(P("disabled-cert: secret is 403 Forbidden/SecretDisabled"), () =>
		expectRestError(secretClient.getSecret("disabled-cert"), 403, "Forbidden", "SecretDisabled"));

	await check(P("missing certificate is 404 CertificateNotFound"), () =>
		expectRestError(certClient.getCertificate(MISSING_NAME), 404, "CertificateNotFound"));

	await check(P("missing secret is 404 SecretNotFound"), () =>
		expectRestError(secretClient.getSecret(MISSING_NAME), 404, "SecretNotFound"));
}

/* Every item of a listing, page by page: { items, pages }. */
async function allPages(iter, maxPageSize) {
	const items = [];
	let pages = 0;
	for await (const page of iter.byPage({ maxPageSize })) {
		pages++;
		expect(page.length <= maxPageSize, `page ${pages} has ${page.length} items, more than ${maxPageSize}`);
		items.push(...page);
	}
	return { items, pages };
}

/*
 * Checks a listing of the secrets or keys collection against /state: the
 * objects of their own, then the certificates' (managed: true), each once,
 * across several pages. compare(props, stateObject, mm) checks one item of
 * an object of its own.
 */
function checkCollectionListing(listed, own, certNames, pageSize, compare) {
	const got = listed.items.map((p) => p.name).sort();
	const want = [...own.keys(), ...certNames].sort();
	expect(JSON.stringify(got) === JSON.stringify(want),
		`listing [${got.length} names] differs from /state [${want.length} names]: ` +
		`missing [${want.filter((n) => !got.includes(n)).slice(0, 8).join(", ")}] ` +
		`extra [${got.filter((n) => !want.includes(n)).slice(0, 8).join(", ")}]`);
	expect(listed.pages >= Math.ceil(want.length / pageSize) && listed.pages > 1,
		`${want.length} items in ${listed.pages} pages of at most ${pageSize}`);
	const mm = new Mismatches();
	for (const props of listed.items) {
		const so = own.get(props.name);
		if (!so) {
			if (props.managed !== true)
				mm.add(`${props.name}: certificate-backed but managed is ${props.managed}`);
			continue;
		}
		if (props.managed !== undefined)
			mm.add(`${props.name}: managed is ${props.managed}`);
		if (props.version !== undefined)
			mm.add(`${props.name}: list item has a version (${props.id})`);
		if (props.enabled !== so.enabled)
			mm.add(`${props.name}: enabled ${props.enabled}, state ${so.enabled}`);
		if (!sameTags(props.tags, so.tags))
			mm.add(`${props.name}: tags ${fmtTags(props.tags)}, state ${fmtTags(so.tags)}`);
		for (const [sdk, st] of [["notBefore", "nbf"], ["expiresOn", "exp"],
			["createdOn", "created"], ["updatedOn", "updated"]])
			if ((unixOf(props[sdk]) ?? null) !== so[st])
				mm.add(`${props.name}: ${st} ${unixOf(props[sdk])}, state ${so[st]}`);
		compare(props, so, mm);
	}
	mm.throwIfAny(listed.items.length, "items");
	return `${listed.items.length} items in ${listed.pages} pages`;
}

/* Checks the versions listing of /state's object obj (three versions or
 * more), pageSize a page, then each version with checkOne(name, version). */
async function checkVersionListing(obj, pageSize, list, checkOne) {
	expect(obj && obj.versions.length >= 3, "/state has no object with 3 versions");
	const { items, pages } = await allPages(list(obj.name), pageSize);
	const got = items.map((p) => p.version).sort();
	const want = obj.versions.map((v) => v.version).sort();
	expect(JSON.stringify(got) === JSON.stringify(want), `versions [${got}], state [${want}]`);
	for (const v of obj.versions)
		await checkOne(obj.name, v);
	return `${items.length} versions in ${pages} pages`;
}

/* Runs check(object, latest version, mismatches) on each enabled object of
 * /state's map, then fails once on the mismatches; returns how many ran. */
async function checkEachEnabled(objs, noun, check) {
	const mm = new Mismatches();
	let n = 0;
	for (const o of objs.values()) {
		if (!o.enabled)
			continue;
		n++;
		await check(o, latestVersion(o), mm);
	}
	mm.throwIfAny(n, noun);
	return n;
}

/* The SubjectPublicKeyInfo (DER) of a JsonWebKey as the SDK returns it. */
function spkiOfJwk(key) {
	const b64u = (bytes) => Buffer.from(bytes).toString("base64url");
	const kty = key.kty.replace(/-HSM$/, "");
	const jwk = kty === "EC"
		? { kty, crv: key.crv, x: b64u(key.x), y: b64u(key.y) }
		: { kty, n: b64u(key.n), e: b64u(key.e) };
	return spkiOf(createPublicKey({ key: jwk, format: "jwk" }));
}

/*
 * SecretClient and KeyClient on the secrets and keys collections, with the
 * secret app (api-version 7.4, kvfs's), then the reader app's refusals.
 */
async function collectionsPhase(info, state) {
	const apps = info.apps;
	const credential = new ClientSecretCredential(info.tenant, apps.secret.client_id,
		apps.secret.secret, credentialOptions(info));
	const secretClient = new SecretClient(info.vault_url, credential, clientOptions("7.4"));
	const keyClient = new KeyClient(info.vault_url, credential, clientOptions("7.4"));
	const certNames = state.certificates.map((c) => c.name);
	const secrets = new Map((state.secrets ?? []).map((s) => [s.name, s]));
	const keys = new Map((state.keys ?? []).map((k) => [k.name, k]));
	const P = (what) => `secrets and keys: ${what}`;
	if (secrets.size === 0 || keys.size === 0) {
		fail(P("state"), "/state lists no secrets or no keys");
		return;
	}

	await check(P("list secrets across pages (listPropertiesOfSecrets, 7 a page)"), async () =>
		checkCollectionListing(await allPages(secretClient.listPropertiesOfSecrets(), 7),
			secrets, certNames, 7, (props, so, mm) => {
				if ((props.contentType ?? null) !== so.content_type)
					mm.add(`${props.name}: contentType ${props.contentType}, state ${so.content_type}`);
			}));

	await check(P("getSecret of every enabled secret: value, version, contentType, tags"), async () => {
		const n = await checkEachEnabled(secrets, "secrets", async (so, ver, mm) => {
			const secret = await secretClient.getSecret(so.name);
			if (secret.value !== ver.value)
				mm.add(`${so.name}: value of ${secret.value?.length} characters differs from state's`);
			if (secret.properties.version !== ver.version)
				mm.add(`${so.name}: version ${secret.properties.version}, state ${ver.version}`);
			if ((secret.properties.contentType ?? null) !== ver.content_type)
				mm.add(`${so.name}: contentType ${secret.properties.contentType}, state ${ver.content_type}`);
			if (!sameTags(secret.properties.tags, ver.tags))
				mm.add(`${so.name}: tags ${fmtTags(secret.properties.tags)}`);
			if (secret.properties.managed !== undefined || secret.properties.certificateKeyId !== undefined)
				mm.add(`${so.name}: managed ${secret.properties.managed}, kid ${secret.properties.certificateKeyId}`);
		});
		const big = await secretClient.getSecret("big-secret");
		expect(Buffer.byteLength(big.value) === 25600, `big-secret has ${Buffer.byteLength(big.value)} bytes`);
		const nl = await secretClient.getSecret("newline-secret");
		expect(nl.value.endsWith("\n"), "newline-secret lost its trailing newline");
		return `${n} secrets`;
	});

	await check(P("listPropertiesOfSecretVersions and getSecret by version (rotated-secret)"), async () => {
		return checkVersionListing(secrets.get("rotated-secret"), 1,
			(name) => secretClient.listPropertiesOfSecretVersions(name), async (name, v) => {
				const secret = await secretClient.getSecret(name, { version: v.version });
				expect(secret.value === v.value, `version ${v.version}: value ${secret.value}`);
			});
	});

	await check(P("certificate-backed secret www: managed, with its key id"), async () => {
		const secret = await secretClient.getSecret("www");
		expect(secret.properties.managed === true, `managed is ${secret.properties.managed}`);
		expect(secret.properties.certificateKeyId?.includes("/keys/www/"), `kid ${secret.properties.certificateKeyId}`);
	});

	await check(P("disabled-secret is 403 Forbidden/SecretDisabled"), () =>
		expectRestError(secretClient.getSecret("disabled-secret"), 403, "Forbidden", "SecretDisabled"));

	await check(P("missing secret is 404 SecretNotFound"), () =>
		expectRestError(secretClient.getSecret(MISSING_NAME), 404, "SecretNotFound"));

	await check(P("list keys across pages (listPropertiesOfKeys, 9 a page)"), async () =>
		checkCollectionListing(await allPages(keyClient.listPropertiesOfKeys(), 9),
			keys, certNames, 9, () => {}));

	await check(P("getKey of RSA, EC P-256/P-384/P-521 and HSM keys: JWK and public key equal state's"), async () => {
		const n = await checkEachEnabled(keys, "keys", async (ko, ver, mm) => {
			const key = await keyClient.getKey(ko.name);
			if (key.keyType !== ver.kty)
				mm.add(`${ko.name}: keyType ${key.keyType}, state ${ver.kty}`);
			if (key.key?.kid !== ver.jwk.kid)
				mm.add(`${ko.name}: kid ${key.key?.kid}, state ${ver.jwk.kid}`);
			if (JSON.stringify(key.keyOperations) !== JSON.stringify(ver.key_ops))
				mm.add(`${ko.name}: key_ops ${key.keyOperations}, state ${ver.key_ops}`);
			if (key.key?.crv !== ver.jwk.crv)
				mm.add(`${ko.name}: crv ${key.key?.crv}, state ${ver.jwk.crv}`);
			if (!spkiOfJwk(key.key).equals(spkiOf(createPublicKey(ver.public_pem))))
				mm.add(`${ko.name}: the JWK is not the state's public key`);
			if (key.properties.managed !== undefined)
				mm.add(`${ko.name}: managed ${key.properties.managed}`);
		});
		const types = [...new Set([...keys.values()].map((k) => latestVersion(k).jwk.crv ?? latestVersion(k).kty))];
		return `${n} keys: ${types.sort().join(", ")}`;
	});

	await check(P("listPropertiesOfKeyVersions and getKey by version (rotated-key)"), async () => {
		return checkVersionListing(keys.get("rotated-key"), 2,
			(name) => keyClient.listPropertiesOfKeyVersions(name), async (name, v) => {
				const key = await keyClient.getKey(name, { version: v.version });
				expect(spkiOfJwk(key.key).equals(spkiOf(createPublicKey(v.public_pem))),
					`version ${v.version}: not the state's public key`);
			});
	});

	await check(P("certificate-backed key www: managed, the certificate's public key"), async () => {
		const sc = state.certificates.find((c) => c.name === "www");
		expect(sc, "no 'www' in /state");
		const key = await keyClient.getKey("www");
		expect(key.properties.managed === true, `managed is ${key.properties.managed}`);
		const cert = new X509Certificate(b64(latestVersion(sc).cer));
		expect(spkiOfJwk(key.key).equals(spkiOf(cert.publicKey)), "the key is not the certificate's");
	});

	await check(P("disabled-key is served with enabled false"), async () => {
		const key = await keyClient.getKey("disabled-key");
		expect(key.properties.enabled === false, `enabled is ${key.properties.enabled}`);
		expect(key.key && key.key.kty === "EC", "no public half");
	});

	await check(P("missing key is 404 KeyNotFound"), () =>
		expectRestError(keyClient.getKey(MISSING_NAME), 404, "KeyNotFound"));

	const reader = new ClientSecretCredential(info.tenant, apps.reader.client_id, apps.reader.secret,
		credentialOptions(info));
	const readerSecrets = new SecretClient(info.vault_url, reader, clientOptions("7.4"));
	const readerKeys = new KeyClient(info.vault_url, reader, clientOptions("7.4"));
	await check(P("RBAC (reader): list secrets is 403 Forbidden"), () =>
		expectRestError(allPages(readerSecrets.listPropertiesOfSecrets(), 25), 403, "Forbidden"));
	await check(P("RBAC (reader): get key rsa-key is 403 Forbidden/ForbiddenByRbac"), () =>
		expectRestError(readerKeys.getKey("rsa-key"), 403, "Forbidden", "ForbiddenByRbac"));
}

/*
 * A shorter check for the other credentials: the token works for listing,
 * for a certificate and for its secret.
 */
async function lightPhase(label, credential, info, state) {
	const certClient = new CertificateClient(info.vault_url, credential, clientOptions());
	const secretClient = new SecretClient(info.vault_url, credential, clientOptions());
	const sc = state.certificates.find((c) => c.name === "www");
	const listed = await check(`${label}: list certificates (first page)`, async () => {
		const it = certClient.listPropertiesOfCertificates().byPage();
		const first = await it.next();
		expect(!first.done && first.value.length > 0, "first page is empty");
		return `${first.value.length} items`;
	});
	if (!listed && isAuthError(lastError))
		return;
	await check(`${label}: get certificate www and its PEM secret`, async () => {
		expect(sc, "no 'www' in /state");
		const ver = latestVersion(sc);
		const cert = await certClient.getCertificate("www");
		expect(Buffer.from(cert.cer).equals(b64(ver.cer)), "cer differs from state");
		checkSecretValue(await secretClient.getSecret("www"), sc, ver);
	});
}

/*
 * What the SDK does with a nextLink to another origin (FACTS.md: it follows
 * it and sends its token there; kvfs must not). This checks that the fake's
 * trap works with a real client: the foreign origin sees the request.
 */
async function foreignPhase(info) {
	const cred = new ClientSecretCredential(info.tenant, info.apps.secret.client_id,
		info.apps.secret.secret, credentialOptions(info));
	const certClient = new CertificateClient(info.vault_url, cred, clientOptions());
	await check("foreign nextLink: the foreign origin records the SDK's request", async () => {
		await controlCall(info, "POST", "foreign/reset", {});
		await controlCall(info, "POST", "faults", { server: "vault", kind: "foreign_nextlink", count: 1 });
		const names = [];
		for await (const props of certClient.listPropertiesOfCertificates())
			names.push(props.name);
		const seen = (await controlGet(info, "foreign")).requests ?? [];
		expect(seen.length > 0, "the foreign origin recorded no request");
		expect(names.includes("foreign-injected"), "the listing has no item from the foreign page");
		return `the SDK followed it ${seen.some((r) => r.bearer) ? "WITH" : "without"} its bearer token`;
	});
}

/* The reader app may read certificates but not secrets; nolist may do
 * nothing. Both refusals are RBAC 403s the SDK must surface with their codes. */
async function rbacPhase(info) {
	const apps = info.apps;
	for (const app of ["reader", "nolist"])
		if (!apps[app]?.secret) {
			fail(`RBAC (${app})`, `info.json has no apps.${app}.secret`);
			return;
		}
	const reader = new ClientSecretCredential(info.tenant, apps.reader.client_id, apps.reader.secret,
		credentialOptions(info));
	const readerCerts = new CertificateClient(info.vault_url, reader, clientOptions());
	const readerSecrets = new SecretClient(info.vault_url, reader, clientOptions());
	await check("RBAC (reader): get certificate www is allowed", async () => {
		const cert = await readerCerts.getCertificate("www");
		expect(cert.cer?.length > 0, "no cer");
	});
	await check("RBAC (reader): get secret www is 403 Forbidden/ForbiddenByRbac", () =>
		expectRestError(readerSecrets.getSecret("www"), 403, "Forbidden", "ForbiddenByRbac"));
	const nolist = new ClientSecretCredential(info.tenant, apps.nolist.client_id, apps.nolist.secret,
		credentialOptions(info));
	const nolistCerts = new CertificateClient(info.vault_url, nolist, clientOptions());
	/* The SDK's pager builds its RestError without the body's innererror. */
	await check("RBAC (nolist): list certificates is 403 Forbidden", () =>
		expectRestError((async () => {
			for await (const page of nolistCerts.listPropertiesOfCertificates().byPage())
				return page;
		})(), 403, "Forbidden"));
}

function identityClientIds(info, kind) {
	/* info.identities maps a name to { client_id, ... }; a user-assigned
	 * identity is any entry with a client id that is not "system". */
	const ids = info.identities ?? {};
	const out = [];
	for (const [name, v] of Object.entries(ids)) {
		if (!v || typeof v !== "object" || !v.client_id)
			continue;
		if (/system/i.test(name) || v.type === "system" || v.system === true)
			continue;
		if (v.hosts && !v.hosts.includes(kind))
			continue;
		out.push({ name, clientId: v.client_id });
	}
	return out;
}

async function managedIdentityPhase(kind, info, state) {
	const label = kind === "imds" ? "managed identity (IMDS)" : "managed identity (App Service)";
	const system = new ManagedIdentityCredential({ retryOptions: NO_RETRY });
	await check(`${label}: system-assigned token`, async () => {
		const t = await system.getToken("https://vault.azure.net/.default");
		expect(t?.token, "no token");
		expect(t.expiresOnTimestamp > Date.now(), `token already expired (${t.expiresOnTimestamp})`);
		return `expires in ${Math.round((t.expiresOnTimestamp - Date.now()) / 1000)} s`;
	});
	await lightPhase(`${label} system-assigned`, system, info, state);
	const users = identityClientIds(info, kind);
	if (users.length === 0) {
		console.log(`     ${label}: info.json lists no user-assigned identity`);
		return;
	}
	const u = users[0];
	const user = new ManagedIdentityCredential({ clientId: u.clientId, retryOptions: NO_RETRY });
	await check(`${label}: user-assigned token (${u.name})`, async () => {
		const t = await user.getToken("https://vault.azure.net/.default");
		expect(t?.token, "no token");
	});
	await lightPhase(`${label} user-assigned`, user, info, state);
	await check(`${label}: unknown user-assigned identity is refused`, async () => {
		const bad = new ManagedIdentityCredential({
			clientId: "00000000-0000-0000-0000-00000000dead", retryOptions: NO_RETRY,
		});
		try {
			await bad.getToken("https://vault.azure.net/.default");
		} catch (err) {
			return `refused: ${String(err.message).replace(/\s+/g, " ").slice(0, 100)}`;
		}
		throw new CheckError("a token was issued for an identity the fake does not know");
	});
}

/* Runs a managed identity phase in a child with only that source's variables. */
function runChild(phase, info, infoPath) {
	const env = { ...process.env };
	for (const k of IDENTITY_ENV)
		delete env[k];
	if (phase === "imds") {
		if (!info.imds_url) {
			fail("managed identity (IMDS)", "info.json has no imds_url");
			return;
		}
		/* the base URL: the SDK appends /metadata/identity/oauth2/token */
		env.AZURE_POD_IDENTITY_AUTHORITY_HOST = info.imds_base ?? new URL(info.imds_url).origin;
	} else {
		if (!info.identity_endpoint || !info.identity_header) {
			fail("managed identity (App Service)", "info.json has no identity_endpoint/identity_header");
			return;
		}
		env.IDENTITY_ENDPOINT = info.identity_endpoint;
		env.IDENTITY_HEADER = info.identity_header;
	}
	env[CHILD_MARK] = phase;
	const r = spawnSync(process.execPath, [SELF, "--only", phase, infoPath], {
		env, stdio: "inherit", timeout: 180_000,
	});
	if (r.status === 0)
		return;
	failures++;
	if (r.status !== 1)
		console.log(`FAIL ${phase} phase: child ${r.error ? r.error.message : `exited with status ${r.status} signal ${r.signal}`}`);
}

/* --------------------------------------------------------------- main --- */

function usage(msg) {
	console.error(`fidelity.mjs: ${msg}`);
	console.error(`usage: node fidelity.mjs [--only ${ALL_PHASES.concat(OPT_IN_PHASES).join(",")}] INFO_JSON`);
	process.exit(2);
}

async function main() {
	const argv = process.argv.slice(2);
	let phases = ALL_PHASES;
	let infoPath;
	for (let i = 0; i < argv.length; i++) {
		if (argv[i] === "--only") {
			phases = (argv[++i] ?? "").split(",").filter(Boolean);
			const bad = phases.filter((p) => !ALL_PHASES.includes(p) && !OPT_IN_PHASES.includes(p));
			if (bad.length || phases.length === 0)
				usage(`unknown phase '${bad.join(",")}'`);
		} else if (argv[i].startsWith("-")) {
			usage(`unknown option '${argv[i]}'`);
		} else if (infoPath === undefined) {
			infoPath = argv[i];
		} else {
			usage("too many arguments");
		}
	}
	if (!infoPath)
		usage("missing INFO_JSON");

	let info;
	try {
		info = JSON.parse(readFileSync(infoPath, "utf8"));
	} catch (err) {
		usage(`cannot read '${infoPath}': ${err.message}`);
	}
	for (const k of ["ca_file", "vault_url", "authority", "control_url", "tenant", "apps"])
		if (!info[k])
			usage(`'${infoPath}' has no '${k}'`);

	if (process.env.NODE_EXTRA_CA_CERTS !== info.ca_file) {
		/* Node reads NODE_EXTRA_CA_CERTS only at start-up. */
		const r = spawnSync(process.execPath, process.argv.slice(1), {
			env: { ...process.env, NODE_EXTRA_CA_CERTS: info.ca_file }, stdio: "inherit",
		});
		process.exit(r.status ?? 2);
	}

	let state;
	try {
		state = await controlGet(info, "state");
	} catch (err) {
		console.error(`fidelity.mjs: cannot read the fake's state: ${err.message}`);
		process.exit(2);
	}
	if (!Array.isArray(state.certificates) || state.certificates.length === 0) {
		console.error("fidelity.mjs: /state lists no certificates");
		process.exit(2);
	}

	const apps = info.apps;
	for (const phase of phases) {
		if (CHILD_PHASES.has(phase) && process.env[CHILD_MARK] !== phase) {
			runChild(phase, info, infoPath);
			continue;
		}
		switch (phase) {
		case "secret":
			await fullPhase("ClientSecretCredential",
				new ClientSecretCredential(info.tenant, apps.secret.client_id, apps.secret.secret,
					credentialOptions(info)),
				info, state, undefined);
			break;
		case "cert":
			await fullPhase("ClientCertificateCredential",
				new ClientCertificateCredential(info.tenant, apps.cert.client_id,
					{ certificatePath: apps.cert.cert_file }, credentialOptions(info)),
				info, state, "7.4");
			break;
		case "collections":
			await collectionsPhase(info, state);
			break;
		case "workload":
			if (!apps.workload?.token_file) {
				fail("WorkloadIdentityCredential", "info.json has no apps.workload.token_file");
				break;
			}
			await lightPhase("WorkloadIdentityCredential",
				new WorkloadIdentityCredential({
					tenantId: info.tenant, clientId: apps.workload.client_id,
					tokenFilePath: apps.workload.token_file, ...credentialOptions(info),
				}),
				info, state);
			break;
		case "rbac":
			await rbacPhase(info);
			break;
		case "foreign":
			await foreignPhase(info);
			break;
		case "imds":
		case "appservice":
			await managedIdentityPhase(phase, info, state);
			break;
		}
	}

	if (!process.env[CHILD_MARK])
		console.log(failures ? `FAILED: ${failures} failure(s)` : "all checks passed");
	process.exit(failures ? 1 : 0);
}

main().catch((err) => {
	console.error(`fidelity.mjs: unexpected error: ${err?.stack ?? err}`);
	process.exit(2);
});
