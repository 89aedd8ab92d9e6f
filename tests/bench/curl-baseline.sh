#!/bin/bash
# Baseline (a): what an administrator writes after Microsoft's REST
# walkthroughs -- curl for every call, jq to pick the JSON apart: a client
# credentials token, the certificate list page by page following nextLink,
# then one GET per certificate, each written out as a PEM file.
#
#   curl-baseline.sh INFO_JSON OUTDIR
#
# INFO_JSON is the fake Azure's info.json; the secret app's credentials are
# used.  Prints the number of certificates written.
set -euo pipefail

info=$1
out=$2
api=7.4

ca=$(jq -r .ca_file "$info")
vault=$(jq -r .vault_url "$info")
token_endpoint=$(jq -r .token_endpoint "$info")
client_id=$(jq -r .apps.secret.client_id "$info")
secret_file=$(jq -r .apps.secret.secret_file "$info")
resource=$(jq -r .resource "$info")

token=$(curl -sS --fail --cacert "$ca" -X POST "$token_endpoint" \
	-d grant_type=client_credentials \
	--data-urlencode "client_id=$client_id" \
	--data-urlencode "client_secret@$secret_file" \
	--data-urlencode "scope=$resource/.default" | jq -r .access_token)

mkdir -p "$out"
ids=$out/.ids
: >"$ids"
url="$vault/certificates?api-version=$api"
while [ -n "$url" ] && [ "$url" != null ]; do
	page=$(curl -sS --fail --cacert "$ca" \
		-H "Authorization: Bearer $token" "$url")
	jq -r '.value[].id' <<<"$page" >>"$ids"
	url=$(jq -r '.nextLink // empty' <<<"$page")
done

n=0
while read -r id; do
	name=${id##*/}
	curl -sS --fail --cacert "$ca" -H "Authorization: Bearer $token" \
		"$id?api-version=$api" |
		jq -r '"-----BEGIN CERTIFICATE-----\n"
			+ (.cer | [scan(".{1,64}")] | join("\n"))
			+ "\n-----END CERTIFICATE-----"' >"$out/$name.pem"
	n=$((n + 1))
done <"$ids"
rm -f "$ids"
echo "$n"
