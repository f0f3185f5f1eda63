"""Pure KPI domain: call assembly, rep windows, targets and alerts. No framework imports."""
