#!/usr/bin/env bash
# Bulk Data $export smoke test against a locally running server (loopback only).
set -u
B=${BASE:-http://localhost:8080/fhir}
echo "== POST transaction"; curl -sS -o tx-response.json -w '%{http_code}\n' -X POST "$B" -H 'Content-Type: application/fhir+json' --data-binary @bundle.json
echo "== kick-off system \$export"
curl -sS -D kickoff.headers -o kickoff.body -w '%{http_code}\n' "$B/\$export" -H 'Accept: application/fhir+json' -H 'Prefer: respond-async'
cat kickoff.headers; cat kickoff.body; echo
LOC=$(grep -i '^content-location:' kickoff.headers | sed 's/^[^:]*: *//' | tr -d '\r')
echo "poll URL: $LOC"
for i in $(seq 1 120); do
  code=$(curl -sS -D poll.headers -o poll.body -w '%{http_code}' "$LOC" -H 'Accept: application/json')
  echo "poll $i: $code $(grep -i -E '^(x-progress|retry-after):' poll.headers | tr -d '\r' | tr '\n' ' ')"
  [ "$code" != 202 ] && break
  sleep 3
done
cat poll.headers; python3 -m json.tool poll.body || cat poll.body
URL=$(python3 -c 'import json;print(json.load(open("poll.body"))["output"][0]["url"])')
echo "== fetch $URL"
curl -sS -D out.headers -o out.ndjson -w '%{http_code}\n' "$URL" -H 'Accept: application/fhir+ndjson'
cat out.headers; cat out.ndjson
