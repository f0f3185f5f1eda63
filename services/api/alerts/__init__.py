"""Alert history and delivery: transitions stored once, one notification per transition and
channel (webhook, Slack, WeCom, DingTalk, Feishu, Alertmanager), retried with backoff."""
