/*
 * The scale job's yardstick: the token and the certificate listing, and
 * nothing else, by a plain client -- Node's fetch on one kept-alive
 * connection, each list page requested as soon as the previous one's
 * nextLink is known.  What any client must wait for before it can show the
 * vault's names; kvfs's mount time (token + listing, and its start-up) is
 * set against it.
 *
 *   NODE_EXTRA_CA_CERTS=<fake ca_file> node list-baseline.mjs INFO_JSON
 *
 * The secret app's credentials are used.  Prints one JSON object:
 * {"token_s", "list_s", "total_s", "pages", "items"}, the times from the
 * first request on (Node's own start-up left out).
 */
import { readFileSync } from "node:fs";

const [infoPath] = process.argv.slice(2);
if (!infoPath) {
	console.error("usage: node list-baseline.mjs INFO_JSON");
	process.exit(2);
}
const info = JSON.parse(readFileSync(infoPath, "utf8"));
const app = info.apps.secret;

async function json(url, init) {
	const r = await fetch(url, init);
	if (!r.ok)
		throw new Error(`${url}: ${r.status} ${await r.text()}`);
	return r.json();
}

const t0 = performance.now();
const token = (await json(info.token_endpoint, {
	method: "POST",
	body: new URLSearchParams({
		grant_type: "client_credentials",
		client_id: app.client_id,
		client_secret: readFileSync(app.secret_file, "utf8").trim(),
		scope: `${info.resource}/.default`,
	}),
})).access_token;
const t1 = performance.now();
let url = `${info.vault_url}/certificates?api-version=7.4`;
let pages = 0, items = 0;
while (url) {
	const page = await json(url, { headers: { Authorization: `Bearer ${token}` } });
	pages++;
	items += page.value.length;
	url = page.nextLink;
}
const t2 = performance.now();
console.log(JSON.stringify({
	token_s: (t1 - t0) / 1000, list_s: (t2 - t1) / 1000, total_s: (t2 - t0) / 1000,
	pages, items,
}));
