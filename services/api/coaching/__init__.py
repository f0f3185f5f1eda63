"""Coaching: scorecards with findings, the sales funnel, KPIs per campaign and the best time to
call, from the same call facts the reports sum (one truth), plus scheduled digests."""
