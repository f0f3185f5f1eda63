"""What `callpulse run` prints: where things are and a signed example that works as printed."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from services.standalone import datadir


def ensure_webhook_secret(data_dir: Path) -> str:
    """The embedded mode's Standard Webhooks secret, made once and kept in the data dir."""
    path = data_dir / datadir.SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret


def banner(base: str, secret: str, secret_source: str) -> str:
    """The start-up text: URLs, where the key and secret are, and copy-paste examples."""
    # The example computes its signature when it runs, so it still works after 5 minutes.
    hexkey = base64.b64decode(secret.removeprefix("whsec_")).hex()
    body = (
        '{\\"event_id\\":\\"demo-$TS\\",\\"type\\":\\"call.started\\",\\"call_id\\":\\"demo-call-$TS\\",'
        '\\"rep_id\\":\\"alice\\",\\"team_id\\":\\"team-1\\",\\"direction\\":\\"outbound\\",'
        '\\"occurred_at\\":\\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\\"}'
    )
    return f"""
callpulse is running (embedded mode: one process, SQLite, no Kafka)

  API and wallboard   {base}/
  OpenAPI docs        {base}/docs
  Metrics             {base}/metrics
  Webhook secret      {secret_source}

Send a signed event (copy-paste into a shell; needs curl and openssl):

  TS=$(date +%s); ID=msg_$TS; BODY="{body}"
  SIG=$(printf '%s' "$ID.$TS.$BODY" | openssl dgst -sha256 -mac HMAC \\
    -macopt hexkey:{hexkey} -binary | base64)
  curl -sS -X POST {base}/v1/events -H 'content-type: application/json' \\
    -H "webhook-id: $ID" -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG" -d "$BODY"

or let callpulse sign it:

  .venv/bin/callpulse send --url {base} --rep alice --type call.started

Then read the rep's KPIs with an admin key (the one printed below on first start,
or CALLPULSE_BOOTSTRAP_ADMIN_KEY):

  KEY=<the admin key>
  curl -sS {base}/v1/reps/alice/kpis?window=today -H "authorization: Bearer $KEY"

"""
